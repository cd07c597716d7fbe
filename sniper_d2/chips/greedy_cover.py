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

# Below this many rectangles a Python loop over slices beats building a difference array.
_LOOP_MAX_RECTS = 8


def _rect_counts(x0, x1, y0, y1, origin, shape) -> np.ndarray:
    """Per cell of a window (``origin`` = its first cell, ``shape`` cells), how many of the
    inclusive cell rectangles ``[x0, x1] x [y0, y1]`` cover it."""
    nx, ny = shape
    counts = np.zeros(shape, dtype=np.int64)
    if len(x0) <= _LOOP_MAX_RECTS:
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


def greedy_cover(grid, boxes: np.ndarray, rng: np.random.Generator) -> List[Tuple[int, int, np.ndarray]]:
    """Greedy set cover of ``boxes`` by candidates of ``grid``, full containment.

    Repeatedly takes the candidate that fully contains the most not-yet-covered boxes; ties are
    broken by a random ranking of all candidates drawn from ``rng`` (``rng.permutation`` of the
    candidate count, row-major over ``xs`` x ``ys``; the highest rank wins). Stops when no
    candidate contains a remaining box; boxes no candidate contains are never covered.

    Args:
        grid: a :class:`~sniper_d2.chips.candidates.CandidateGrid`.
        boxes: (N, 4) XYXY in the scaled image, chip px.
        rng: source of the tie-break ranking.

    Returns:
        In the order chosen, ``(x_index, y_index, covered)`` per chosen candidate: its position in
        ``grid.xs``/``grid.ys`` and the int64 indices into ``boxes`` (ascending) of the boxes it
        covered first.
    """
    x_first, x_last, y_first, y_last = containing_ranges(grid, boxes)
    coverable = np.flatnonzero((x_first <= x_last) & (y_first <= y_last))
    if len(coverable) == 0:
        return []
    nx, ny = grid.shape
    rank = rng.permutation(nx * ny).reshape(nx, ny)
    if nx * ny == 1:
        return [(0, 0, coverable)]

    # Boxes sorted by x_last: the boxes a candidate column can contain form one contiguous slice.
    order = coverable[np.argsort(x_last[coverable], kind="stable")]
    x0, x1, y0, y1 = x_first[order], x_last[order], y_first[order], y_last[order]
    span = int((x1 - x0).max())
    alive = np.ones(len(order), dtype=bool)

    unit = nx * ny  # score = count * unit + rank: argmax is the best count, ties to the top rank
    score = _rect_counts(x0, x1, y0, y1, (0, 0), (nx, ny)) * unit + rank
    flat = score.reshape(-1)
    chosen = []
    while True:
        best = int(flat.argmax())
        if flat[best] < unit:
            return chosen
        ci, cj = divmod(best, ny)
        lo, hi = np.searchsorted(x1, (ci, ci + span + 1)).tolist()  # x1 in [ci, ci + span]
        window = slice(lo, hi)
        hit = alive[window] & (x0[window] <= ci) & (y0[window] <= cj) & (y1[window] >= cj)
        local = np.flatnonzero(hit) + lo
        alive[local] = False
        a0, a1, b0, b1 = x0[local], x1[local], y0[local], y1[local]
        wx, wy = int(a0.min()), int(b0.min())
        shape = (int(a1.max()) + 1 - wx, int(b1.max()) + 1 - wy)
        score[wx : wx + shape[0], wy : wy + shape[1]] -= _rect_counts(a0, a1, b0, b1, (wx, wy), shape) * unit
        chosen.append((ci, cj, np.sort(order[local])))
