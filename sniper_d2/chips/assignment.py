"""Where a ground-truth box is valid: the one chip per scale that holds most of it (SNIPER_SPEC section 4).

The authors' rule (their ``box_assigner``), per scale, sizes = sqrt(area) in the valid ranges'
frame (original px unless ``SNIPER.RANGE_REFERENCE``):

* the box passes the scale's validity rule (:func:`~sniper_d2.chips.driving_boxes.validity_rules`):
  coarsest scale ``size >= lo``; every other scale ``size < hi``, ``w, h >= 2`` original px and
  the box fits in a chip (``max(w, h) < (chip_size - stride - 1) / factor``): **no lower bound**
  below the coarsest scale, so small boxes are RPN positives at the middle scale too;
* among the image's chips of that scale, it belongs to the one containing the largest part of
  it (intersection area, first chip on ties);
* the part of the box inside that chip has ``size <= hi`` (coarsest scale: ``size >= lo``).

Everywhere else the box is invalid: the RPN ignores anchors near it instead of calling them
background or matching it twice. The lower bound of a middle scale acts on the second stage
through the proposal range filter (:mod:`sniper_d2.modeling.rpn`, :mod:`sniper_d2.modeling.roi_heads`).
"""
from collections import defaultdict
from typing import List, Sequence

import numpy as np

from .chip import Chip
from .driving_boxes import box_shapes, validity_rules
from .valid_range import ValidRange

__all__ = ["assign_valid_boxes"]

# Box x chip pairs compared at once (bounds memory for images with thousands of boxes).
_PAIRS_PER_BLOCK = 1 << 20


def _intersection_areas(boxes: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """(N, C) intersection areas of XYXY boxes and windows, same frame."""
    w = np.minimum(boxes[:, None, 2], windows[None, :, 2]) - np.maximum(boxes[:, None, 0], windows[None, :, 0])
    h = np.minimum(boxes[:, None, 3], windows[None, :, 3]) - np.maximum(boxes[:, None, 1], windows[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def _clipped_sizes(boxes: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """sqrt(area) of each box clipped to its own window (row-wise), same frame."""
    w = np.minimum(boxes[:, 2], windows[:, 2]) - np.maximum(boxes[:, 0], windows[:, 0])
    h = np.minimum(boxes[:, 3], windows[:, 3]) - np.maximum(boxes[:, 1], windows[:, 1])
    return np.sqrt(np.clip(w, 0, None) * np.clip(h, 0, None))


def _best_windows(boxes: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Per box, index of the window with the largest intersection (first on ties), -1 if none."""
    best_area = np.zeros(len(boxes))
    best = np.full(len(boxes), -1, dtype=np.int64)
    block = max(1, _PAIRS_PER_BLOCK // max(1, len(boxes)))
    for start in range(0, len(windows), block):
        areas = _intersection_areas(boxes, windows[start : start + block])
        k = areas.argmax(axis=1)
        area = areas[np.arange(len(boxes)), k]
        better = area > best_area
        best_area[better] = area[better]
        best[better] = start + k[better]
    return best


def assign_valid_boxes(
    chips: Sequence[Chip], boxes, width, height, valid_ranges, *, chip_size: int, stride: int,
    assignable_mask=None, range_factor: float = 1.0,
) -> List[np.ndarray]:
    """Per chip, the ground-truth boxes valid in it.

    Args:
        chips: all chips of ONE image in one epoch (positive and negative, all scales).
        boxes: (N, 4) XYXY original px (as returned by :func:`check_boxes`; clipped to the image).
        width, height: image size, original px.
        valid_ranges: one :class:`ValidRange` or ``(lo, hi)`` pair (-1 = unbounded) per scale,
            indexed by ``chip.scale_index``; sqrt(area) in original px. The last is the coarsest.
        chip_size, stride: chip side and this epoch's grid step, chip px (the fits-in-a-chip rule).
        assignable_mask: bool (N,), False = never valid (crowd regions). Default: all assignable.
        range_factor: px of the valid ranges' frame per original px (1: original px).

    Returns:
        One int64 array per chip, in the order of ``chips``: ascending indices into ``boxes``.
        Each box is valid in at most one chip per scale; ties in intersection area go to the chip
        that comes first in ``chips``; a box that no chip of a scale overlaps, or whose part in its
        chip fails the size rule, is valid nowhere there.
    """
    ranges = [r if isinstance(r, ValidRange) else ValidRange.from_config(r) for r in valid_ranges]
    boxes = np.clip(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), 0, [width, height, width, height])
    assignable = np.ones(len(boxes), dtype=bool)
    if assignable_mask is not None:
        assignable = np.asarray(assignable_mask, dtype=bool)
        if assignable.shape != (len(boxes),):
            raise ValueError(f"assignable_mask has shape {assignable.shape}, expected ({len(boxes)},): one flag per box.")
    chips_by_scale = defaultdict(list)
    for position, chip in enumerate(chips):
        if not 0 <= chip.scale_index < len(ranges):
            raise ValueError(
                f"Chip {chip} has scale_index {chip.scale_index} but only {len(ranges)} valid ranges "
                "were given: pass one valid range per training scale."
            )
        chips_by_scale[chip.scale_index].append(position)

    valid = [np.zeros(0, dtype=np.int64) for _ in chips]
    rules = validity_rules(ranges)
    coarsest = len(ranges) - 1
    shapes = box_shapes(boxes)
    for scale_index, positions in chips_by_scale.items():
        factor = chips[positions[0]].scale
        rule = rules[scale_index]
        candidates = np.flatnonzero(assignable & rule.mask(shapes, factor, chip_size, stride, range_factor))
        if len(candidates) == 0:
            continue
        windows = np.stack([chips[p].box for p in positions])
        owner = _best_windows(boxes[candidates], windows)
        assigned = owner >= 0
        owner, ids = owner[assigned], candidates[assigned]
        inside = _clipped_sizes(boxes[ids], windows[owner]) * range_factor
        if scale_index == coarsest:
            keep = inside >= ranges[scale_index].lo
        else:
            keep = inside <= ranges[scale_index].hi
        owner, ids = owner[keep], ids[keep]
        order = np.argsort(owner, kind="stable")
        owner, ids = owner[order], ids[order]
        starts = np.searchsorted(owner, np.arange(len(positions) + 1))
        for k, position in enumerate(positions):
            valid[position] = ids[starts[k] : starts[k + 1]]
    return valid
