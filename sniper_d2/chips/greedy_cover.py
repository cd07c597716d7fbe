"""Greedy set cover: choose candidate chips until every box that fits in one is fully inside one.

Each box is fully inside exactly the candidates whose origins lie in a contiguous index range per
axis, so a box is a rectangle of cells in the candidate grid. Coverage counts are sums of those
rectangles (2-D difference arrays + cumulative sums); choosing a chip subtracts the rectangles of
the boxes it covers. Work and memory grow with the number of candidates plus the boxes' cell
rectangles, never with candidates x boxes.
"""
from typing import List, Tuple

import numpy as np

from .candidates import containing_ranges

__all__ = ["greedy_cover"]

# Up to this many rectangles, a Python loop over slices beats building a difference array.
_LOOP_MAX_RECTS = 8
# Up to this many boxes, greedy bookkeeping in Python lists beats vectorised numpy.
_FEW_BOXES = 32


def _rect_counts(x0, x1, y0, y1, origin, shape) -> np.ndarray:
    """Per cell of a window (``origin`` = its first cell, ``shape`` cells), how many of the
    inclusive cell rectangles ``[x0, x1] x [y0, y1]`` cover it."""
    nx, ny = shape
    if len(x0) <= _LOOP_MAX_RECTS:
        counts = np.zeros(shape, dtype=np.int64)
        ox, oy = origin
        for a, b, c, d in zip(x0.tolist(), x1.tolist(), y0.tolist(), y1.tolist()):
            counts[a - ox : b + 1 - ox, c - oy : d + 1 - oy] += 1
        return counts
    cols = ny + 1
    top, bottom = (x0 - origin[0]) * cols, (x1 + 1 - origin[0]) * cols
    left, right = y0 - origin[1], y1 + 1 - origin[1]
    size = (nx + 1) * cols
    plus = np.bincount(np.concatenate([top + left, bottom + right]), minlength=size)
    minus = np.bincount(np.concatenate([top + right, bottom + left]), minlength=size)
    diff = (plus - minus).reshape(nx + 1, cols)
    return diff.cumsum(0).cumsum(1)[:nx, :ny]


def _cover_few(x0, x1, y0, y1, score, min_covered) -> List[Tuple[int, int, List[int]]]:
    """Greedy loop for a few boxes (Python lists); see :func:`greedy_cover`. Indices are positions
    in the rectangle lists."""
    ny = score.shape[1]
    flat = score.reshape(-1)
    rects = list(zip(x0, x1, y0, y1, range(len(x0))))
    chosen = []
    while rects:  # an uncovered coverable box leaves some score >= 1
        best = int(flat.argmax())
        if flat[best] < min_covered:
            break
        ci, cj = divmod(best, ny)
        hit, rest = [], []
        for rect in rects:
            (hit if rect[0] <= ci <= rect[1] and rect[2] <= cj <= rect[3] else rest).append(rect)
        rects = rest
        for a, b, c, d, _ in hit:
            score[a : b + 1, c : d + 1] -= 1.0
        chosen.append((ci, cj, [rect[4] for rect in hit]))
    return chosen


def _cover_many(x0, x1, y0, y1, score, min_covered) -> List[Tuple[int, int, np.ndarray]]:
    """Greedy loop for many boxes (vectorised, local updates); see :func:`greedy_cover`. Indices
    are positions in the rectangle arrays."""
    ny = score.shape[1]
    flat = score.reshape(-1)
    # Sorted by x1, the rectangles that contain a cell of column ci form one slice: x1 in [ci, ci + span].
    order = np.argsort(x1, kind="stable")
    x0, x1, y0, y1 = x0[order], x1[order], y0[order], y1[order]
    span = int((x1 - x0).max())
    alive = np.ones(len(order), dtype=bool)
    remaining = len(order)
    chosen = []
    while remaining:  # an uncovered coverable box leaves some score >= 1
        best = int(flat.argmax())
        if flat[best] < min_covered:
            break
        ci, cj = divmod(best, ny)
        lo, hi = x1.searchsorted((ci, ci + span + 1)).tolist()
        window = slice(lo, hi)
        hit = alive[window] & (x0[window] <= ci) & (y0[window] <= cj) & (y1[window] >= cj)
        local = hit.nonzero()[0] + lo
        alive[local] = False
        remaining -= len(local)
        a0, a1, b0, b1 = x0[local], x1[local], y0[local], y1[local]
        wx, wy = int(a0.min()), int(b0.min())
        shape = (int(a1.max()) + 1 - wx, int(b1.max()) + 1 - wy)
        score[wx : wx + shape[0], wy : wy + shape[1]] -= _rect_counts(a0, a1, b0, b1, (wx, wy), shape)
        chosen.append((ci, cj, np.sort(order[local])))
    return chosen


def greedy_cover(
    grid, boxes: np.ndarray, rng: np.random.Generator, min_covered: int = 1
) -> List[Tuple[int, int, np.ndarray]]:
    """Greedy set cover of ``boxes`` by candidates of ``grid``, full containment.

    Repeatedly takes the candidate that fully contains the most not-yet-covered boxes; ties go to
    the candidate with the highest random priority, one ``rng.random(grid.shape)`` draw per call
    (like shuffling the candidates once). Stops when no candidate contains ``min_covered``
    remaining boxes (by default: when no candidate contains a remaining box; boxes that no
    candidate contains are never covered). The chosen counts never increase, so stopping early
    drops exactly the chips that would have covered fewer than ``min_covered`` boxes.

    Args:
        grid: the candidates (:class:`~sniper_d2.chips.candidates.CandidateGrid`).
        boxes: (N, 4) XYXY in the scaled image, chip px.
        rng: source of the tie-break priorities (not used when the grid has a single candidate).
        min_covered: least number of newly covered boxes for a chip to be chosen, >= 1.

    Returns:
        In the order chosen, ``(x_index, y_index, covered)`` per chosen candidate: its position in
        ``grid.xs``/``grid.ys`` and the int64 indices into ``boxes`` (ascending) of the boxes it
        covered first.
    """
    x_first, x_last, y_first, y_last = containing_ranges(grid, boxes)
    coverable = ((x_first <= x_last) & (y_first <= y_last)).nonzero()[0]
    if len(coverable) == 0:
        return []
    nx, ny = grid.shape
    if nx * ny == 1:
        return [(0, 0, coverable)] if len(coverable) >= min_covered else []
    rects = x_first[coverable], x_last[coverable], y_first[coverable], y_last[coverable]
    # score = count of contained uncovered boxes + priority in [0, 1). Subtracting whole counts
    # later is exact in float64, so ties keep being decided by the same priorities.
    score = _rect_counts(*rects, (0, 0), (nx, ny)) + rng.random((nx, ny))
    if len(coverable) <= _FEW_BOXES:
        chosen = _cover_few(*(r.tolist() for r in rects), score, min_covered)
        return [(ci, cj, coverable[covered]) for ci, cj, covered in chosen]
    return [(ci, cj, coverable[covered]) for ci, cj, covered in _cover_many(*rects, score, min_covered)]
