"""Where a ground-truth box is valid: the one chip per scale that holds most of it (SNIPER_SPEC section 4).

A box is valid in a chip iff its size is in the chip's scale's valid range (training rule
``lo <= sqrt(area) < hi``, original px) and, among the image's chips of that scale, this chip
contains the largest part of it (intersection area). Everywhere else the box is invalid: the
heads ignore it instead of treating it as background or as a positive twice.
"""
from collections import defaultdict
from typing import List, Sequence

import numpy as np

from .chip import Chip
from .driving_boxes import box_sizes
from .valid_range import ValidRange

__all__ = ["assign_valid_boxes"]

# Box x chip pairs compared at once (bounds memory for images with thousands of boxes).
_PAIRS_PER_BLOCK = 1 << 20


def _intersection_areas(boxes: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """(N, C) intersection areas of XYXY boxes and windows, same frame."""
    w = np.minimum(boxes[:, None, 2], windows[None, :, 2]) - np.maximum(boxes[:, None, 0], windows[None, :, 0])
    h = np.minimum(boxes[:, None, 3], windows[None, :, 3]) - np.maximum(boxes[:, None, 1], windows[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


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
    chips: Sequence[Chip], boxes, width, height, valid_ranges, *, assignable_mask=None, range_factor: float = 1.0
) -> List[np.ndarray]:
    """Per chip, the ground-truth boxes valid in it.

    Args:
        chips: all chips of ONE image in one epoch (positive and negative, all scales).
        boxes: (N, 4) XYXY original px (as returned by :func:`check_boxes`; clipped to the image).
        width, height: image size, original px.
        valid_ranges: one :class:`ValidRange` or ``(lo, hi)`` pair (-1 = unbounded) per scale,
            indexed by ``chip.scale_index``; sqrt(area) in original px.
        assignable_mask: bool (N,), False = never valid (crowd regions). Default: all assignable.
        range_factor: px of the valid ranges' frame per original px (1: original px).

    Returns:
        One int64 array per chip, in the order of ``chips``: ascending indices into ``boxes``.
        Each box is valid in at most one chip per scale; ties in intersection area go to the chip
        that comes first in ``chips``; a box that no chip of a scale overlaps is valid nowhere there.
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
    sizes = box_sizes(boxes) * range_factor
    for scale_index, positions in chips_by_scale.items():
        candidates = np.flatnonzero(assignable & ranges[scale_index].contains_train(sizes))
        if len(candidates) == 0:
            continue
        windows = np.stack([chips[p].box for p in positions])
        owner = _best_windows(boxes[candidates], windows)
        assigned = owner >= 0
        owner, ids = owner[assigned], candidates[assigned]
        order = np.argsort(owner, kind="stable")
        owner, ids = owner[order], ids[order]
        starts = np.searchsorted(owner, np.arange(len(positions) + 1))
        for k, position in enumerate(positions):
            valid[position] = ids[starts[k] : starts[k + 1]]
    return valid
