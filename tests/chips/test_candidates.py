import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sniper_d2.chips import candidate_grid, containing_ranges, containing_rects
from sniper_d2.chips.candidates import containing_masks


def test_grid_adds_edge_and_corner_chips():
    grid = candidate_grid(100, 80, 64, 16)
    assert grid.xs.tolist() == [0, 16, 32, 36]  # 36 = 100 - 64: flush with the right edge
    assert grid.ys.tolist() == [0, 16]  # 16 = 80 - 64 is on the grid already: not repeated
    assert (grid.chip_width, grid.chip_height) == (64, 64)
    assert grid.shape == (4, 2)


def test_grid_when_stride_overshoots_the_last_position():
    grid = candidate_grid(70, 64, 64, 32)
    assert grid.xs.tolist() == [0, 6]
    assert grid.ys.tolist() == [0]


def test_small_image_gets_one_chip_spanning_it():
    grid = candidate_grid(50, 200, 64, 16)
    assert grid.xs.tolist() == [0] and grid.chip_width == 50
    assert grid.ys.tolist() == [0, 16, 32, 48, 64, 80, 96, 112, 128, 136] and grid.chip_height == 64
    tiny = candidate_grid(30, 20, 512, 32)
    assert (tiny.xs.tolist(), tiny.ys.tolist(), tiny.chip_width, tiny.chip_height) == ([0], [0], 30, 20)


def test_grid_is_cached_and_read_only():
    grid = candidate_grid(300, 200, 64, 16)
    assert candidate_grid(300, 200, 64, 16) is grid
    with pytest.raises(ValueError):
        grid.xs[0] = 5


def test_grid_rejects_bad_stride():
    with pytest.raises(ValueError, match="stride"):
        candidate_grid(100, 100, 64, 0)


def test_containing_ranges_by_hand():
    grid = candidate_grid(100, 80, 64, 16)  # xs 0, 16, 32, 36; ys 0, 16
    boxes = np.array([
        [20, 10, 60, 50],  # x: origins 0 and 16; y: origin 0 only (y2 = 50 needs y0 >= -14, y1 = 10 < 16)
        [0, 0, 64, 64],  # exactly the first chip
        [36, 16, 100, 80],  # exactly the bottom-right corner chip
        [35.9, 0, 100, 10],  # 64.1 px wide: fits nowhere
        [40, 20, 100.4, 79],  # reaches 0.4 px past the right edge: counts as ending at it
    ])
    x_first, x_last, y_first, y_last = containing_ranges(grid, boxes)
    assert list(zip(x_first, x_last)) == [(0, 1), (0, 0), (3, 3), (3, 2), (3, 3)]
    assert list(zip(y_first, y_last)) == [(0, 0), (0, 0), (1, 1), (0, 0), (1, 1)]


boxes_strategy = st.lists(
    st.tuples(*[st.integers(0, 60)] * 2, *[st.integers(1, 60)] * 2).map(
        lambda t: (t[0] / 2, t[1] / 2, t[0] / 2 + t[2] * 1.5, t[1] / 2 + t[3] * 1.5)
    ),
    min_size=0, max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(10, 120), height=st.integers(10, 120), chip=st.sampled_from([16, 32, 40]),
    stride=st.integers(1, 12), box_list=boxes_strategy,
)
def test_all_containment_forms_agree_with_brute_force(width, height, chip, stride, box_list, contains):
    grid = candidate_grid(width, height, chip, stride)
    boxes = np.array(box_list, dtype=float).reshape(-1, 4)
    truth = contains(grid, boxes).reshape(len(grid.xs), len(grid.ys), -1)

    x_first, x_last, y_first, y_last = containing_ranges(grid, boxes)
    a = np.arange(len(grid.xs))[:, None, None]
    b = np.arange(len(grid.ys))[None, :, None]
    from_ranges = (x_first <= a) & (a <= x_last) & (y_first <= b) & (b <= y_last)
    assert np.array_equal(from_ranges, truth)

    in_x, in_y = containing_masks(grid, boxes)
    assert np.array_equal(in_x[:, None, :] & in_y[None, :, :], truth)

    rects = containing_rects(grid, boxes)
    assert [r[4] for r in rects] == np.flatnonzero(truth.any(axis=(0, 1))).tolist()
    for x0, x1, y0, y1, index in rects:
        assert (x0, x1, y0, y1) == (x_first[index], x_last[index], y_first[index], y_last[index])
