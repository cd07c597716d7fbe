"""Shared helpers for the chip-engine tests: brute-force geometry the fast code must agree with."""
import numpy as np
import pytest


def brute_contains(grid, boxes):
    """(candidates, N) bool, candidates row-major over xs x ys: candidate fully contains the box.

    Boxes are in the scaled image (chip px); a box reaching past the far edges counts as ending there.
    """
    x_far = grid.xs[-1] + grid.chip_width
    y_far = grid.ys[-1] + grid.chip_height
    x0 = np.repeat(grid.xs, len(grid.ys))[:, None].astype(float)
    y0 = np.tile(grid.ys, len(grid.xs))[:, None].astype(float)
    return (
        (x0 <= boxes[:, 0]) & (x0 + grid.chip_width >= np.minimum(boxes[:, 2], x_far))
        & (y0 <= boxes[:, 1]) & (y0 + grid.chip_height >= np.minimum(boxes[:, 3], y_far))
    )


@pytest.fixture(scope="session")
def contains():
    return brute_contains
