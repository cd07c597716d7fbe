"""Greedy set cover: choose candidate chips until every box that fits in one is fully inside one.

Each box is fully inside exactly the candidates whose origins lie in a contiguous index range per
axis (:func:`~sniper_d2.chips.candidates.containing_ranges`), i.e. a rectangle of cells of the
candidate grid. The score of a candidate is the number of uncovered boxes it contains plus a random
priority in [0, 1) that breaks ties; choosing a candidate subtracts the boxes it covers. Three
bookkeeping regimes give identical results (subtracting whole counts from a float64 score is
exact) and are picked for speed only:

* a few boxes: per-box work in plain Python lists;
* small problems (candidates x boxes below a bound): per-axis containment masks, counts by matrix
  products;
* large problems: cell-rectangle ranges, counts by 2-D difference arrays, updates in a window
  around the chosen chip, boxes found through a sorted index. Memory and work grow with the
  candidates plus the boxes' cell rectangles, never with candidates x boxes.
"""
from typing import List, Tuple

import numpy as np

from .candidates import containing_masks, containing_ranges, containing_rects

__all__ = ["greedy_cover"]

# Up to this many boxes, per-box work in plain Python beats vectorised numpy.
_FEW_BOXES = 10
# Up to this many candidate x box pairs, matrix products beat sparse bookkeeping.
_DENSE_PAIRS = 1 << 17
# Up to this many rectangles, adding them slice by slice beats a difference array.
_FEW_RECTS = 8


def _rect_counts(x0, x1, y0, y1, origin, shape) -> np.ndarray:
    """float64 counts, per cell of a window (``origin`` = its first cell, ``shape`` cells), of the
    inclusive cell rectangles ``[x0, x1] x [y0, y1]`` (int arrays) that cover it."""
    ox, oy = origin
    if len(x0) <= _FEW_RECTS:
        counts = np.zeros(shape)
        for a, b, c, d in zip(x0.tolist(), x1.tolist(), y0.tolist(), y1.tolist()):
            counts[a - ox : b + 1 - ox, c - oy : d + 1 - oy] += 1.0
        return counts
    # 2-D difference array: +1 at each rectangle's first corner and just past its last one, -1 at
    # the two mixed corners; cumulative sums along both axes turn it into counts.
    nx, ny = shape
    cols = ny + 1
    top, bottom = (x0 - ox) * cols, (x1 + 1 - ox) * cols
    left, right = y0 - oy, y1 + 1 - oy
    corners = np.concatenate((top + left, bottom + right, top + right, bottom + left))
    signs = np.repeat((1.0, -1.0), 2 * len(x0))
    diff = np.bincount(corners, weights=signs, minlength=(nx + 1) * cols).reshape(nx + 1, cols)
    return diff.cumsum(0).cumsum(1)[:nx, :ny]


def _initial_score(counts: np.ndarray, min_covered: int, rng: np.random.Generator):
    """counts + priorities, or None when no candidate contains ``min_covered`` boxes."""
    if min_covered > 1 and counts.max() < min_covered:
        return None
    return counts + rng.random(counts.shape)


def _cover_few(grid, boxes, rng, min_covered) -> List[Tuple[int, int, np.ndarray]]:
    rects = containing_rects(grid, boxes)
    if len(rects) < min_covered:
        return []
    nx, ny = grid.shape
    if nx * ny == 1:
        return [(0, 0, np.array([rect[4] for rect in rects], dtype=np.int64))]
    counts = np.zeros((nx, ny))
    for a, b, c, d, _ in rects:
        counts[a : b + 1, c : d + 1] += 1.0
    score = _initial_score(counts, min_covered, rng)
    if score is None:
        return []
    flat = score.reshape(-1)
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
        chosen.append((ci, cj, np.array([rect[4] for rect in hit], dtype=np.int64)))
    return chosen


def _cover_dense(grid, boxes, rng, min_covered) -> List[Tuple[int, int, np.ndarray]]:
    in_x, in_y = containing_masks(grid, boxes)
    if in_x.shape[0] * in_y.shape[0] == 1:
        coverable = (in_x[0] & in_y[0]).nonzero()[0]
        return [(0, 0, coverable)] if len(coverable) >= min_covered else []
    in_x = in_x.astype(np.float64)  # (nx, N) 0/1
    in_y = in_y.astype(np.float64)  # (ny, N) 0/1
    counts = in_x @ in_y.T
    if counts.max() < min_covered:  # also when no candidate contains any box
        return []
    score = counts + rng.random(counts.shape)
    ny = score.shape[1]
    flat = score.reshape(-1)
    alive = np.ones(len(boxes))
    chosen = []
    while True:  # each step covers >= 1 box (score >= 1 means a count >= 1)
        best = int(flat.argmax())
        if flat[best] < min_covered:
            return chosen
        ci, cj = divmod(best, ny)
        rows = (in_x[ci] * in_y[cj] * alive).nonzero()[0]
        alive[rows] = 0.0
        score -= in_x[:, rows] @ in_y[:, rows].T
        chosen.append((ci, cj, rows))


def _cover_sparse(grid, boxes, rng, min_covered) -> List[Tuple[int, int, np.ndarray]]:
    x_first, x_last, y_first, y_last = containing_ranges(grid, boxes)
    coverable = ((x_first <= x_last) & (y_first <= y_last)).nonzero()[0]
    if len(coverable) < min_covered:
        return []
    nx, ny = grid.shape
    if nx * ny == 1:
        return [(0, 0, coverable)]
    # Sorted by x_last, the boxes that a candidate in column ci contains form one slice
    # (x_last in [ci, ci + x_span]); any box it contains lies within x_span / y_span cells of it.
    order = coverable[np.argsort(x_last[coverable], kind="stable")]
    ranges = np.stack((x_first, x_last, y_first, y_last), axis=1)[order]
    score = _initial_score(
        _rect_counts(ranges[:, 0], ranges[:, 1], ranges[:, 2], ranges[:, 3], (0, 0), (nx, ny)), min_covered, rng
    )
    if score is None:
        return []
    flat = score.reshape(-1)
    sorted_x_last = ranges[:, 1].copy()
    x_span = int((ranges[:, 1] - ranges[:, 0]).max())
    y_span = int((ranges[:, 3] - ranges[:, 2]).max())
    alive = np.ones(len(ranges), dtype=bool)
    remaining = len(ranges)
    chosen = []
    while remaining:  # an uncovered coverable box leaves some score >= 1
        best = int(flat.argmax())
        if flat[best] < min_covered:
            break
        ci, cj = divmod(best, ny)
        lo, hi = sorted_x_last.searchsorted((ci, ci + x_span + 1)).tolist()
        near = ranges[lo:hi]
        hit = alive[lo:hi] & (near[:, 0] <= ci) & (near[:, 2] <= cj) & (near[:, 3] >= cj)
        rows = hit.nonzero()[0] + lo
        alive[rows] = False
        remaining -= len(rows)
        x0, y0 = max(ci - x_span, 0), max(cj - y_span, 0)
        x1, y1 = min(ci + x_span + 1, nx), min(cj + y_span + 1, ny)
        covered = ranges[rows]
        score[x0:x1, y0:y1] -= _rect_counts(
            covered[:, 0], covered[:, 1], covered[:, 2], covered[:, 3], (x0, y0), (x1 - x0, y1 - y0)
        )
        chosen.append((ci, cj, np.sort(order[rows])))
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
        rng: source of the tie-break priorities; not drawn from when nothing is left to chance (a
            single candidate, or no candidate containing ``min_covered`` boxes).
        min_covered: least number of newly covered boxes for a chip to be chosen, >= 1.

    Returns:
        In the order chosen, ``(x_index, y_index, covered)`` per chosen candidate: its position in
        ``grid.xs``/``grid.ys`` and the int64 indices into ``boxes`` (ascending) of the boxes it
        covered first.
    """
    if min_covered < 1:
        raise ValueError(f"min_covered must be >= 1, got {min_covered}.")
    if len(boxes) <= _FEW_BOXES:
        return _cover_few(grid, boxes, rng, min_covered)
    if grid.shape[0] * grid.shape[1] * len(boxes) <= _DENSE_PAIRS:
        return _cover_dense(grid, boxes, rng, min_covered)
    return _cover_sparse(grid, boxes, rng, min_covered)
