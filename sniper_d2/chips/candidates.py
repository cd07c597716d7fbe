"""Candidate chip positions in a scaled image (a regular grid plus edge- and corner-flush chips),
and which candidates fully contain a box."""
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import List, Tuple

import numpy as np

__all__ = ["CandidateGrid", "candidate_grid", "containing_masks", "containing_ranges", "containing_rects"]


@dataclass(frozen=True)
class CandidateGrid:
    """All candidate chips of one scaled image: every (x0, y0) in ``xs`` x ``ys``.

    ``xs``/``ys`` are sorted, read-only int64 chip origins, chip px; every candidate is
    ``chip_width`` x ``chip_height`` chip px and lies inside the scaled image, whose far edges are
    ``xs[-1] + chip_width`` and ``ys[-1] + chip_height``.
    """

    xs: np.ndarray
    ys: np.ndarray
    chip_width: int
    chip_height: int

    @property
    def shape(self) -> Tuple[int, int]:
        """(number of x positions, number of y positions)."""
        return len(self.xs), len(self.ys)

    @cached_property
    def x_list(self) -> List[int]:
        """``xs`` as a Python list (for per-box work on a few boxes)."""
        return self.xs.tolist()

    @cached_property
    def y_list(self) -> List[int]:
        """``ys`` as a Python list."""
        return self.ys.tolist()


def _positions(image_side: int, chip_side: int, stride: int) -> np.ndarray:
    last = image_side - chip_side
    if last <= 0:
        positions = np.zeros(1, dtype=np.int64)
    else:
        positions = np.arange(0, last + 1, stride, dtype=np.int64)
        if positions[-1] != last:
            positions = np.append(positions, last)
    positions.flags.writeable = False  # grids are cached and shared
    return positions


@lru_cache(maxsize=4096)
def candidate_grid(width: int, height: int, chip_size: int, stride: int) -> CandidateGrid:
    """Candidates for a ``width`` x ``height`` scaled image (chip px).

    Origins ``{0, stride, 2*stride, ... <= width - chip_size} U {width - chip_size}`` (same for y),
    so chips flush with the right and bottom edges and all four corners are included. Where the
    image is smaller than ``chip_size`` the single position 0 is used and the chip spans the image.
    Grids are cached (images of one dataset share a few sizes) and must not be modified.
    """
    if chip_size < 1 or stride < 1:
        raise ValueError(f"chip_size and stride must be positive chip px, got {chip_size} and {stride}.")
    return CandidateGrid(
        xs=_positions(width, chip_size, stride),
        ys=_positions(height, chip_size, stride),
        chip_width=min(chip_size, width),
        chip_height=min(chip_size, height),
    )


def containing_ranges(grid: CandidateGrid, boxes: np.ndarray):
    """Which candidates fully contain each box (vectorised; see :func:`containing_rects`).

    Args:
        grid: the candidates.
        boxes: (N, 4) XYXY in the grid's scaled image, chip px. A box reaching past the right or
            bottom edge counts as ending there (scaling by a factor and rounding the image size to
            whole pixels can leave a box up to 0.5 px beyond the edge).

    Returns:
        ``(x_first, x_last, y_first, y_last)``, int64 (N,) each: box i is inside candidate
        ``(xs[a], ys[b])`` iff ``x_first[i] <= a <= x_last[i]`` and ``y_first[i] <= b <= y_last[i]``;
        an empty range (first > last) means no candidate contains it.
    """
    x_far = int(grid.xs[-1]) + grid.chip_width
    y_far = int(grid.ys[-1]) + grid.chip_height
    x_first = grid.xs.searchsorted(np.minimum(boxes[:, 2], x_far) - grid.chip_width, side="left")
    x_last = grid.xs.searchsorted(boxes[:, 0], side="right") - 1
    y_first = grid.ys.searchsorted(np.minimum(boxes[:, 3], y_far) - grid.chip_height, side="left")
    y_last = grid.ys.searchsorted(boxes[:, 1], side="right") - 1
    return x_first, x_last, y_first, y_last


def containing_rects(grid: CandidateGrid, boxes: np.ndarray) -> List[Tuple[int, int, int, int, int]]:
    """:func:`containing_ranges` in plain Python, faster for a few boxes: one
    ``(x_first, x_last, y_first, y_last, box_index)`` per box that some candidate contains."""
    xs, ys, cw, ch = grid.x_list, grid.y_list, grid.chip_width, grid.chip_height
    x_far, y_far = xs[-1] + cw, ys[-1] + ch
    rects = []
    for index, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        a, b = bisect_left(xs, min(x2, x_far) - cw), bisect_right(xs, x1) - 1
        c, d = bisect_left(ys, min(y2, y_far) - ch), bisect_right(ys, y1) - 1
        if a <= b and c <= d:
            rects.append((a, b, c, d, index))
    return rects


def containing_masks(grid: CandidateGrid, boxes: np.ndarray):
    """:func:`containing_ranges` as per-axis masks: ``(in_x, in_y)``, bool (nx, N) and (ny, N);
    box i is inside candidate ``(xs[a], ys[b])`` iff ``in_x[a, i] and in_y[b, i]``."""
    x_far = int(grid.xs[-1]) + grid.chip_width
    y_far = int(grid.ys[-1]) + grid.chip_height
    xs, ys = grid.xs[:, None], grid.ys[:, None]
    in_x = (xs <= boxes[:, 0]) & (xs >= np.minimum(boxes[:, 2], x_far) - grid.chip_width)
    in_y = (ys <= boxes[:, 1]) & (ys >= np.minimum(boxes[:, 3], y_far) - grid.chip_height)
    return in_x, in_y
