"""FocusChips (sniper_d2.chips.focus_chips): threshold, dilation, connected regions, widening to the
least size inside the map, merging until stable, and the mapping to original px."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sniper_d2.chips.focus_chips import focus_chips, focus_chips_to_original


def prob_map(rows, cols, cells, value=0.9):
    """A map of zeros with ``value`` at each ``(row, col)`` of ``cells``."""
    m = np.zeros((rows, cols))
    for r, c in cells:
        m[r, c] = value
    return m


def test_one_blob_gives_one_chip_of_the_least_size_around_its_centre():
    m = prob_map(40, 50, [(10, 20), (10, 21), (11, 20), (11, 21)])  # rows 10-11, cols 20-21
    chips = focus_chips(m, threshold=0.5, dilation=1, min_size=6)
    assert chips.dtype == np.int64
    assert chips.tolist() == [[18, 8, 24, 14]]  # 2 cells widened by 2 each side


def test_dilation_widens_the_blob_before_the_least_size():
    m = prob_map(40, 50, [(10, 20)])
    assert focus_chips(m, 0.5, dilation=3, min_size=1).tolist() == [[19, 9, 22, 12]]
    assert focus_chips(m, 0.5, dilation=1, min_size=1).tolist() == [[20, 10, 21, 11]]


def test_two_far_blobs_give_two_chips():
    m = prob_map(40, 60, [(5, 5), (30, 50)])
    chips = focus_chips(m, 0.5, dilation=3, min_size=8)
    assert sorted(chips.tolist()) == [[2, 2, 10, 10], [47, 27, 55, 35]]


def test_blobs_whose_widened_chips_overlap_merge_into_one():
    # 6 cells apart: alone they stay apart, widened to 8 cells their chips overlap
    m = prob_map(40, 60, [(20, 20), (20, 26)])
    assert len(focus_chips(m, 0.5, dilation=1, min_size=2)) == 2
    chips = focus_chips(m, 0.5, dilation=1, min_size=8)
    assert chips.tolist() == [[17, 17, 31, 25]]  # the bounding rectangle of both widened chips


def test_merging_repeats_until_stable():
    # the widened chips of a and b overlap, that of c touches neither; the bounding rectangle
    # of a and b does reach c's chip: a second round merges all three
    m = prob_map(30, 30, [(10, 10), (14, 15), (17, 7)])
    chips = focus_chips(m, 0.5, dilation=1, min_size=6)
    assert chips.tolist() == [[5, 8, 19, 21]]


def test_blob_at_the_border_gives_a_chip_shifted_inside_the_map():
    m = prob_map(30, 40, [(0, 39)])
    chips = focus_chips(m, 0.5, dilation=3, min_size=10)
    assert chips.tolist() == [[30, 0, 40, 10]]


def test_threshold_is_inclusive():
    m = prob_map(10, 10, [(5, 5)], value=0.2)
    assert len(focus_chips(m, threshold=0.2, dilation=1, min_size=1)) == 1
    assert len(focus_chips(m, threshold=0.2000001, dilation=1, min_size=1)) == 0


def test_dilation_joins_near_blobs():
    m = prob_map(30, 30, [(10, 10), (10, 12)])  # one empty cell between them
    assert len(focus_chips(m, 0.5, dilation=1, min_size=1)) == 2
    assert focus_chips(m, 0.5, dilation=3, min_size=1).tolist() == [[9, 9, 14, 12]]


def test_empty_map_and_unpredicted_cells_give_no_chips():
    assert focus_chips(np.zeros((12, 9)), 0.5, 3, 4).shape == (0, 4)
    assert focus_chips(np.full((12, 9), np.nan), 0.0, 3, 4).shape == (0, 4)  # NaN: no prediction
    m = np.full((12, 9), np.nan)
    m[3, 4] = 0.0
    assert focus_chips(m, 0.0, 1, 1).tolist() == [[4, 3, 5, 4]]


def test_least_size_larger_than_the_map_gives_the_map_side():
    m = prob_map(5, 30, [(2, 3)])
    assert focus_chips(m, 0.5, dilation=1, min_size=20).tolist() == [[0, 0, 20, 5]]
    assert focus_chips(prob_map(4, 4, [(0, 0)]), 0.5, 1, 20).tolist() == [[0, 0, 4, 4]]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="threshold"):
        focus_chips(np.zeros((3, 3)), 1.5, 1, 1)
    with pytest.raises(ValueError, match="dilation"):
        focus_chips(np.zeros((3, 3)), 0.5, 0, 1)
    with pytest.raises(ValueError, match="min_size"):
        focus_chips(np.zeros((3, 3)), 0.5, 1, 2.5)
    with pytest.raises(ValueError, match="2-D"):
        focus_chips(np.zeros(3), 0.5, 1, 1)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.integers(1, 25),
    cols=st.integers(1, 25),
    seed=st.integers(0, 10**6),
    density=st.floats(0.0, 0.1),
    dilation=st.integers(1, 4),
    min_size=st.integers(1, 12),
)
def test_chips_cover_every_focus_pixel_inside_the_map_apart_and_large_enough(rows, cols, seed, density,
                                                                             dilation, min_size):
    m = np.random.default_rng(seed).random((rows, cols))
    threshold = 1 - density
    chips = focus_chips(m, threshold, dilation, min_size)
    assert (len(chips) == 0) == (not (m >= threshold).any())
    for x0, y0, x1, y1 in chips.tolist():
        assert 0 <= x0 < x1 <= cols and 0 <= y0 < y1 <= rows
        assert x1 - x0 >= min(min_size, cols) and y1 - y0 >= min(min_size, rows)
    covered = np.zeros((rows, cols), dtype=int)
    for x0, y0, x1, y1 in chips.tolist():
        covered[y0:y1, x0:x1] += 1
    assert (covered[m >= threshold] == 1).all()  # every FocusPixel in exactly one chip
    for i, a in enumerate(chips.tolist()):  # no two chips touch (not even at a corner)
        for b in chips.tolist()[i + 1 :]:
            assert a[0] > b[2] or b[0] > a[2] or a[1] > b[3] or b[1] > a[3]


def test_chips_to_original_px_scale_clip_and_stay_non_empty():
    chips = np.array([[0, 0, 2, 3], [10, 4, 14, 9], [13, 8, 14, 9]])
    # stride 16 px of a 0.5x coarse scale: a cell is 32 original px; image 250 x 440 px (h x w)
    px = focus_chips_to_original(chips, stride=16, factor=0.5, image_size=(250, 440))
    assert px.dtype == np.int64
    assert px.tolist() == [[0, 0, 64, 96], [320, 128, 440, 250], [416, 249, 440, 250]]
    # a factor that does not divide evenly: whole px, widened outwards
    assert focus_chips_to_original(np.array([[1, 1, 2, 2]]), 16, 0.3, (1000, 1000)).tolist() == [[53, 53, 107, 107]]
    assert focus_chips_to_original(np.zeros((0, 4)), 16, 0.5, (10, 10)).shape == (0, 4)
