"""Reading SNIPER chip labels out of the training targets the heads receive.

Both SNIPER heads need the same three facts per chip: which boxes are valid, which are crowd,
and the chip's valid range. A :class:`~sniper_d2.chip_instances.ChipInstances` carries them; a
plain ``Instances`` (stock Detectron2 data) reads as "every box valid, no crowd, any size", which
is exactly the rule stock Detectron2 applies.
"""
from typing import Dict, List, Sequence, Tuple

import torch
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import get_event_storage

from ..chip_instances import is_chip_instances
from ..chips.valid_range import ValidRange

__all__ = ["any_chip_targets", "box_flags", "chip_valid_range", "box_sizes", "put_chip_metrics"]


def any_chip_targets(targets: List[Instances]) -> bool:
    """True if any image of the batch carries SNIPER chip labels (else the heads act as stock)."""
    return any(is_chip_instances(t) for t in targets)


def box_flags(targets: Instances, image_index: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(valid, crowd)`` bool masks over the boxes of one image's targets.

    A crowd box is never valid, even if ``gt_valid`` says so: crowd regions are ignore regions.
    ``image_index`` (position in the batch) only serves the error message.
    """
    num_boxes = len(targets)
    device = targets.gt_boxes.device
    if not is_chip_instances(targets):
        none = torch.zeros(num_boxes, dtype=torch.bool, device=device)
        return ~none, none
    missing = [name for name in ("gt_valid", "gt_crowd") if not targets.has(name)]
    if missing:
        raise ValueError(
            f"Training target of image {image_index} in the batch is a ChipInstances without "
            f"field(s) {missing}: SNIPER heads need a bool gt_valid and gt_crowd per box. Build "
            "chip targets with the SNIPER chip mapper, or set both fields (plain Instances train "
            "as stock Detectron2)."
        )
    crowd = targets.gt_crowd.to(torch.bool)
    return targets.gt_valid.to(torch.bool) & ~crowd, crowd


def chip_valid_range(targets: Instances, image_index: int) -> ValidRange:
    """The chip's valid range, sqrt(area) in chip px; unbounded for plain ``Instances``."""
    if not is_chip_instances(targets):
        return ValidRange()
    lo, hi = targets.valid_range
    if not 0 <= lo < hi:
        raise ValueError(
            f"Training target of image {image_index} in the batch has valid_range {(lo, hi)}: "
            "it must be (lo, hi) with 0 <= lo < hi, sqrt(area) in chip px (0 / inf = unbounded)."
        )
    return ValidRange(lo, hi)


def box_sizes(boxes: Boxes) -> torch.Tensor:
    """sqrt(area) of each box, in the boxes' own px (chip px here); degenerate boxes give 0."""
    return boxes.area().clamp(min=0).sqrt()


def put_chip_metrics(per_chip: Dict[str, Sequence[float]]) -> None:
    """Put the batch mean of each per-chip count into the event storage as ``sniper/<name>``
    (metrics.json, TensorBoard); a no-op outside a training loop (no storage)."""
    try:
        storage = get_event_storage()
    except AssertionError:
        return
    for name, values in per_chip.items():
        if len(values):
            storage.put_scalar(f"sniper/{name}", sum(values) / len(values))
