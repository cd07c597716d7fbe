"""Size rules: which boxes drive positive chips, and which proposals count for negative chips, at a scale.

The authors' rules (SNIPER_SPEC section 1), with ``size = sqrt(w * h)`` in original px and the
scale's valid range ``[lo, hi)`` (``ValidRange.contains_train``):

* finest scale: ``size < hi`` and ``w, h >= 2`` (no lower bound: the finest scale takes every
  small object);
* middle scales: ``lo <= size < hi``;
* coarsest scale: ``size >= lo`` (no upper bound: it takes every large object);
* every scale but the coarsest: the longest side fits in a chip with room for one grid step,
  ``max(w, h) < (chip_size - stride - 1) / factor``, so some grid chip fully contains the box.

A single scale is both finest and coarsest. Proposals for negative chips follow the same rules
without the lower bound at middle scales.
"""
import numpy as np

from .valid_range import ValidRange

__all__ = ["box_sizes", "driving_box_mask", "negative_proposal_mask"]


def box_sizes(boxes: np.ndarray) -> np.ndarray:
    """sqrt(area) of (N, 4) XYXY boxes, in the boxes' own px."""
    return np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))


def _size_rule(boxes, factor, valid_range, scale_index, num_scales, chip_size, stride, lower_bound_at_middle):
    finest, coarsest = scale_index == 0, scale_index == num_scales - 1
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    lo = valid_range.lo if coarsest or (lower_bound_at_middle and not finest) else 0.0
    hi = np.inf if coarsest else valid_range.hi
    mask = ValidRange(lo, hi).contains_train(np.sqrt(widths * heights))
    if finest:
        mask &= (widths >= 2) & (heights >= 2)
    if not coarsest:
        mask &= np.maximum(widths, heights) < (chip_size - stride - 1) / factor
    return mask


def driving_box_mask(boxes, factor, valid_range, scale_index, num_scales, chip_size, stride) -> np.ndarray:
    """Bool (N,): the ground-truth boxes (original px XYXY) that drive positive chips at this scale.

    Args:
        factor: the scale's factor for this image, chip px per original px.
        valid_range: the scale's :class:`ValidRange`, sqrt(area) in original px.
        scale_index, num_scales: position of the scale in the list, 0 = finest.
        chip_size, stride: chip side and grid step, chip px.
    """
    return _size_rule(boxes, factor, valid_range, scale_index, num_scales, chip_size, stride, True)


def negative_proposal_mask(proposals, factor, valid_range, scale_index, num_scales, chip_size, stride) -> np.ndarray:
    """Bool (P,): proposals (original px XYXY) of a size that counts for negative chips at this scale.

    Same arguments and rules as :func:`driving_box_mask`, minus the lower bound at middle scales.
    """
    return _size_rule(proposals, factor, valid_range, scale_index, num_scales, chip_size, stride, False)
