"""``ChipInstances``: the ground truth of one training chip, as the SNIPER heads read it.

The chip mapper produces it; :class:`~sniper_d2.modeling.rpn.SniperRPN` and the SNIPER ROI heads
consume it. Besides Detectron2's usual ``gt_boxes`` (chip px, XYXY) and ``gt_classes`` it has

* ``gt_valid`` (bool tensor): the box is valid in this chip (in the scale's valid range and
  assigned to this chip, not crowd). Invalid boxes are ignored regions, never background.
* ``gt_crowd`` (bool tensor): crowd region (always invalid; never a positive in any head).
* ``valid_range`` (image-level, not per box): the chip's valid range in chip px, sqrt(area).

``valid_range`` survives ``.to(device)`` and indexing (plain ``Instances`` would drop it), which is
what lets it reach the heads through Detectron2's unmodified ``GeneralizedRCNN.forward``.
"""
import math
from typing import Any, Tuple

from detectron2.structures import Instances

__all__ = ["ChipInstances", "is_chip_instances"]


class ChipInstances(Instances):
    def __init__(self, image_size: Tuple[int, int], valid_range=(0.0, math.inf), **kwargs: Any):
        """
        Args:
            image_size: (height, width) of the chip content, chip px.
            valid_range: (lo, hi) sqrt(area) in chip px; 0 / inf = unbounded.
        """
        super().__init__(image_size, **kwargs)
        lo, hi = (float(v) for v in valid_range)
        self._valid_range = (lo, hi)

    @property
    def valid_range(self) -> Tuple[float, float]:
        """(lo, hi): sqrt(area) bounds in chip px that boxes and proposals must meet."""
        return self._valid_range

    def _rewrap(self, plain: Instances) -> "ChipInstances":
        out = ChipInstances(plain.image_size, self._valid_range)
        for name, value in plain.get_fields().items():
            out.set(name, value)
        return out

    def to(self, *args: Any, **kwargs: Any) -> "ChipInstances":
        return self._rewrap(super().to(*args, **kwargs))

    def __getitem__(self, item) -> "ChipInstances":
        return self._rewrap(super().__getitem__(item))

    def __str__(self) -> str:
        return super().__str__()[:-1] + f", valid_range={self._valid_range})"

    __repr__ = __str__


def is_chip_instances(instances) -> bool:
    """True if ``instances`` carries SNIPER chip labels (else stock Detectron2 behaviour applies)."""
    return isinstance(instances, ChipInstances)
