"""Negative chips: where proposals (likely false positives) lie away from every positive chip.

Per scale (SNIPER_SPEC section 3): proposals of a size that counts at the scale and that touch
(positive-area intersection) no positive chip of that scale are *uncovered*; a greedy cover of the
uncovered proposals gives candidate chips, and a chip joins the image's negative pool only if its
greedy step covered more than the scale's minimum of uncovered proposals. Each epoch a few chips
are sampled from the pool.
"""
from typing import List, Sequence

import numpy as np

from .candidates import candidate_grid
from .chip import Chip
from .greedy_cover import greedy_cover

__all__ = ["touches_any", "negative_chips_at_scale", "sample_negative_chips"]

# Up to this many windows, touches_any compares window by window (faster than broadcasting).
_FEW_WINDOWS = 4
# Proposal x window pairs compared at once by touches_any (bounds its memory).
_PAIRS_PER_BLOCK = 1 << 20


def touches_any(boxes: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Bool (N,): non-empty box i overlaps some window with positive area. Both (., 4) XYXY, same frame."""
    touched = np.zeros(len(boxes), dtype=bool)
    if len(windows) <= _FEW_WINDOWS:  # one pass over the boxes per window
        x1, y1, x2, y2 = boxes.T
        for wx1, wy1, wx2, wy2 in windows.tolist():
            touched |= (x1 < wx2) & (x2 > wx1) & (y1 < wy2) & (y2 > wy1)
        return touched
    block = max(1, _PAIRS_PER_BLOCK // max(1, len(boxes)))
    x1, y1, x2, y2 = (boxes[:, k : k + 1] for k in range(4))
    for start in range(0, len(windows), block):
        w = windows[start : start + block].T
        touched |= ((x1 < w[2]) & (x2 > w[0]) & (y1 < w[3]) & (y2 > w[1])).any(axis=1)
    return touched


def negative_chips_at_scale(
    image_id, scale_index: int, factor: float, image_size, proposals: np.ndarray, proposal_ids: np.ndarray,
    positive_windows: np.ndarray, chip_size: int, stride: int, min_proposals: int, rng: np.random.Generator,
) -> List[Chip]:
    """Negative-chip candidates of one image at one scale.

    Args:
        image_id: passed through to the chips.
        scale_index, factor: the scale (0 = finest) and its factor, chip px per original px.
        image_size: (width, height) of the scaled image, chip px.
        proposals: (P, 4) XYXY original px inside the image, only non-empty ones of a size that
            counts at this scale.
        proposal_ids: int64 (P,) their indices in the image's proposal list.
        positive_windows: (C, 4) XYXY chip px, this scale's positive chips (may be empty).
        chip_size, stride: chip side and candidate grid step, chip px.
        min_proposals: a chip is kept only if it holds MORE uncovered proposals than this.
        rng: tie-break source for the greedy cover.

    Returns:
        The kept chips, in greedy order; ``box_ids`` = the uncovered proposals the chip's greedy
        step covered. Each uncovered proposal counts for one chip only (as in the authors' code,
        where it counts for the chip that overlaps it most), so near-duplicate chips that mostly
        re-contain proposals of earlier chips are not kept.
    """
    # Clipped to the scaled image: rounding its size can leave a thin proposal at the right or
    # bottom edge wholly outside it, where it touches nothing and must not count.
    width, height = image_size
    scaled = np.minimum(proposals * factor, (width, height, width, height))
    inside = (scaled[:, 2] > scaled[:, 0]) & (scaled[:, 3] > scaled[:, 1])
    uncovered = (inside & ~touches_any(scaled, positive_windows)).nonzero()[0]
    if len(uncovered) <= min_proposals:
        return []
    grid = candidate_grid(width, height, chip_size, stride)
    chosen = greedy_cover(grid, scaled[uncovered], rng, min_covered=min_proposals + 1)
    if not chosen:
        return []
    xs, ys, size = grid.x_list, grid.y_list, (grid.chip_width, grid.chip_height)
    uncovered_ids = proposal_ids[uncovered]
    return [Chip(image_id, scale_index, factor, (xs[i], ys[j]), size, uncovered_ids[c], True) for i, j, c in chosen]


def sample_negative_chips(pool: Sequence[Chip], num: int, rng: np.random.Generator) -> List[Chip]:
    """``num`` chips drawn without replacement from one image's negative pool (all if fewer), in
    pool order."""
    if num < 0:
        raise ValueError(f"The number of negative chips per image must be >= 0, got {num}.")
    if len(pool) <= num:
        return list(pool)
    return [pool[k] for k in np.sort(rng.permutation(len(pool))[:num]).tolist()]
