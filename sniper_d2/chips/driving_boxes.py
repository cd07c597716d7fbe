"""Size rules: which boxes drive positive chips, and which proposals count for negative chips, at a scale.

The authors' rules (SNIPER_SPEC section 1), with ``size = sqrt(w * h)`` in original px and the
scale's valid range ``[lo, hi)`` (``ValidRange.contains_train``):

* coarsest scale: ``size >= lo`` (no upper bound: it takes every large object);
* finest scale, unless it is also the coarsest: ``size < hi`` and ``w, h >= 2`` (no lower
  bound: it takes every small object);
* middle scales: ``lo <= size < hi``;
* every scale but the coarsest: the longest side fits in a chip with room for one grid step,
  ``max(w, h) < (chip_size - stride - 1) / factor``, so some grid chip fully contains the box.

A single scale is the coarsest (``size >= lo``), as in the authors' code. Proposals for negative
chips follow the same rules without the lower bound at middle scales.

Which boxes are *valid* (RPN positives) in their chip at a scale is the authors' assignment rule
(:func:`validity_rules`): no lower bound below the coarsest scale, ``w, h >= 2`` and fits in a
chip at every scale but the coarsest, ``size >= lo`` at the coarsest (SNIPER_SPEC section 4).
"""
import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence, Tuple

import numpy as np

from .valid_range import ValidRange

__all__ = ["BoxShapes", "SizeRule", "box_shapes", "box_sizes", "driving_rules", "proposal_rules", "validity_rules"]


def box_sizes(boxes: np.ndarray) -> np.ndarray:
    """sqrt(area) of (N, 4) XYXY boxes, in the boxes' own px."""
    return np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))


class BoxShapes(NamedTuple):
    """Per box, original px: ``sizes`` = sqrt(area), ``min_sides``/``max_sides`` = min/max of w, h."""

    sizes: np.ndarray
    min_sides: np.ndarray
    max_sides: np.ndarray


def box_shapes(boxes: np.ndarray) -> BoxShapes:
    """The measures the size rules test, computed once per image for all scales."""
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    return BoxShapes(np.sqrt(widths * heights), np.minimum(widths, heights), np.maximum(widths, heights))


@dataclass(frozen=True)
class SizeRule:
    """The boxes that count at one scale.

    ``size_range``: sqrt(area) bounds, original px; ``min_side``: both sides at least this,
    original px; ``fit_in_chip``: the longest side must be below ``(chip_size - stride - 1) / factor``.
    """

    size_range: ValidRange
    min_side: float
    fit_in_chip: bool

    def mask(self, shapes: BoxShapes, factor, chip_size: int, stride: int, range_factor=1.0) -> np.ndarray:
        """Bool (N,) over the boxes measured by ``shapes``; ``factor`` chip px per original px,
        ``chip_size`` and ``stride`` chip px; ``range_factor``: px of the valid ranges' frame per
        original px (:meth:`ChipGenerator.range_factor`; 1 = original px)."""
        mask = self.size_range.contains_train(shapes.sizes * range_factor)
        if self.min_side > 0:
            mask &= shapes.min_sides >= self.min_side
        if self.fit_in_chip:
            mask &= shapes.max_sides < (chip_size - stride - 1) / factor
        return mask


def _rules(valid_ranges: Sequence[ValidRange], lower_bound_at_middle: bool, min_side_at_middle: float = 0.0):
    last = len(valid_ranges) - 1
    rules = []
    for index, valid_range in enumerate(valid_ranges):
        if index == last:
            rules.append(SizeRule(ValidRange(valid_range.lo, math.inf), 0.0, False))
        elif index == 0:
            rules.append(SizeRule(ValidRange(0.0, valid_range.hi), 2.0, True))
        else:
            lo = valid_range.lo if lower_bound_at_middle else 0.0
            rules.append(SizeRule(ValidRange(lo, valid_range.hi), min_side_at_middle, True))
    return tuple(rules)


def driving_rules(valid_ranges: Sequence[ValidRange]) -> Tuple[SizeRule, ...]:
    """Per scale (finest first), the rule for ground-truth boxes that drive positive chips."""
    return _rules(valid_ranges, lower_bound_at_middle=True)


def proposal_rules(valid_ranges: Sequence[ValidRange]) -> Tuple[SizeRule, ...]:
    """Per scale (finest first), the rule for proposals that count for negative chips."""
    return _rules(valid_ranges, lower_bound_at_middle=False)


def validity_rules(valid_ranges: Sequence[ValidRange]) -> Tuple[SizeRule, ...]:
    """Per scale (finest first), the rule for ground-truth boxes that may be valid (RPN
    positives) in a chip of that scale; the part inside the chip is checked apart
    (:func:`sniper_d2.chips.assignment.assign_valid_boxes`)."""
    return _rules(valid_ranges, lower_bound_at_middle=False, min_side_at_middle=2.0)
