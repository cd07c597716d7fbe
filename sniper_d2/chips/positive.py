"""Positive chips of one image at one scale: a greedy cover of the boxes that drive chips there."""
from typing import List

import numpy as np

from .candidates import candidate_grid
from .chip import Chip
from .greedy_cover import greedy_cover

__all__ = ["positive_chips_at_scale"]


def positive_chips_at_scale(
    image_id, scale_index: int, factor: float, image_size, boxes: np.ndarray, box_ids: np.ndarray,
    chip_size: int, stride: int, rng: np.random.Generator,
) -> List[Chip]:
    """Chips that together fully contain every driving box that fits in a chip.

    Args:
        image_id: passed through to the chips.
        scale_index, factor: the scale (0 = finest) and its factor, chip px per original px.
        image_size: (width, height) of the scaled image, chip px.
        boxes: (N, 4) XYXY original px, the driving boxes only.
        box_ids: int64 (N,) the boxes' indices in the image's annotation list.
        chip_size, stride: chip side and candidate grid step, chip px.
        rng: tie-break source for the greedy cover.
    """
    grid = candidate_grid(image_size[0], image_size[1], chip_size, stride)
    xs, ys, size = grid.xs.tolist(), grid.ys.tolist(), (grid.chip_width, grid.chip_height)
    return [
        Chip(image_id, scale_index, factor, (xs[i], ys[j]), size, box_ids[covered], False)
        for i, j, covered in greedy_cover(grid, boxes * factor, rng)
    ]
