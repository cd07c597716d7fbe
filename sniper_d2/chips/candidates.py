"""Candidate chip positions in a scaled image: a regular grid plus edge- and corner-flush chips."""
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["CandidateGrid", "candidate_grid", "containing_ranges", "scale_boxes"]


@dataclass(frozen=True)
class CandidateGrid:
    """All candidate chips of one scaled image: every (x0, y0) in ``xs`` x ``ys``.

    ``xs``/``ys`` are sorted int64 chip origins, chip px; every candidate is
    ``chip_width`` x ``chip_height`` chip px and lies inside the scaled image.
    """

    xs: np.ndarray
    ys: np.ndarray
    chip_width: int
    chip_height: int

    @property
    def shape(self):
        """(number of x positions, number of y positions)."""
        return len(self.xs), len(self.ys)


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
    Grids are cached (images of one dataset share a few sizes); their arrays are read-only.
    """
    if chip_size < 1 or stride < 1:
        raise ValueError(f"chip_size and stride must be positive chip px, got {chip_size} and {stride}.")
    return CandidateGrid(
        xs=_positions(width, chip_size, stride),
        ys=_positions(height, chip_size, stride),
        chip_width=min(chip_size, width),
        chip_height=min(chip_size, height),
    )


def scale_boxes(boxes: np.ndarray, factor: float, image_size) -> np.ndarray:
    """(N, 4) XYXY boxes from original px to the scaled image (chip px), clipped to it.

    The clip absorbs the <= 0.5 px by which rounding the scaled image size can cut off a box
    that touches the right or bottom edge.
    """
    width, height = image_size
    scaled = np.maximum(boxes * factor, 0.0)
    return np.minimum(scaled, (width, height, width, height), out=scaled)


def containing_ranges(grid, boxes: np.ndarray):
    """Candidates that fully contain each box.

    Args:
        grid: the candidates (:class:`CandidateGrid`).
        boxes: (N, 4) XYXY in the grid's scaled image, chip px.

    Returns:
        ``(x_first, x_last, y_first, y_last)``, int64 (N,) each: box i is inside candidate
        ``(xs[a], ys[b])`` iff ``x_first[i] <= a <= x_last[i]`` and ``y_first[i] <= b <= y_last[i]``;
        an empty range (first > last) means no candidate contains it.
    """
    x_first = grid.xs.searchsorted(boxes[:, 2] - grid.chip_width, side="left")
    x_last = grid.xs.searchsorted(boxes[:, 0], side="right") - 1
    y_first = grid.ys.searchsorted(boxes[:, 3] - grid.chip_height, side="left")
    y_last = grid.ys.searchsorted(boxes[:, 1], side="right") - 1
    return x_first, x_last, y_first, y_last
