"""assign_valid_boxes by hand: the chip holding the largest part of a box, ties, the authors'
validity rule clause by clause (SNIPER_SPEC section 4), crowd."""
import numpy as np
import pytest

from sniper_d2.chips import Chip, ValidRange, assign_valid_boxes

RANGES = ((-1, 50), (40, -1))  # sqrt(area), original px
GRID = {"chip_size": 100, "stride": 8}  # a box fits a chip of factor f iff max(w, h) < 91 / f


def chip(scale_index, scale, origin, size=(100, 100), negative=False):
    return Chip("img", scale_index, scale, origin, size, np.zeros(0, np.int64), negative)


def assigned(chips, boxes, **kwargs):
    ranges = kwargs.pop("ranges", RANGES)
    return [v.tolist() for v in assign_valid_boxes(chips, np.array(boxes, float), 400, 300, ranges, **GRID, **kwargs)]


def test_box_is_valid_in_the_chip_holding_most_of_it():
    chips = [chip(0, 1.0, (0, 0)), chip(0, 1.0, (60, 0))]  # windows x 0-100 and 60-160
    boxes = [[70, 10, 90, 40],  # inside both -> tie -> first chip
             [90, 10, 120, 40],  # 10 px in the first, 30 px in the second
             [10, 10, 40, 40]]  # only in the first
    assert assigned(chips, boxes) == [[0, 2], [1]]
    assert assigned(chips[::-1], boxes) == [[0, 1], [2]]  # the tie follows the list order


def test_intersection_is_measured_in_original_px():
    # scale 0.5: the chip window (0, 0)-(100, 100) chip px is (0, 0)-(200, 200) original px
    chips = [chip(0, 0.5, (0, 0)), chip(0, 1.0, (150, 0))]
    boxes = [[160, 20, 190, 50]]
    assert assigned(chips, boxes) == [[0], []]


def test_each_scale_assigns_separately_and_by_its_valid_range():
    chips = [chip(0, 1.0, (0, 0)), chip(1, 0.5, (0, 0)), chip(1, 0.5, (50, 0))]
    boxes = [[10, 10, 40, 40],  # 30 px: scale 0 only
             [10, 10, 55, 55],  # 45 px: both scales
             [10, 10, 60, 60],  # 50 px: hi of scale 0 is exclusive -> scale 1 only
             [10, 10, 49.9, 50]]  # 39.9 px: below lo of scale 1 -> scale 0 only
    assert assigned(chips, boxes) == [[0, 1, 3], [1, 2], []]


def test_crowd_and_unmatched_boxes_are_valid_nowhere():
    chips = [chip(0, 1.0, (0, 0)), chip(1, 0.5, (0, 0), negative=True)]
    boxes = [[10, 10, 55, 55], [20, 20, 60, 60], [150, 150, 190, 190]]  # last: outside the scale-0 chip
    assert assigned(chips, boxes, assignable_mask=[True, False, True]) == [[0], [0, 2]]
    assert assigned([], boxes) == []
    assert assigned(chips, np.zeros((0, 4))) == [[], []]


def test_touching_is_not_overlapping():
    chips = [chip(0, 1.0, (0, 0))]
    assert assigned(chips, [[100, 10, 120, 30]]) == [[]]  # shares the chip's right edge only


def test_valid_ranges_accept_pairs_and_objects():
    chips = [chip(0, 1.0, (0, 0)), chip(1, 0.5, (0, 0))]
    boxes = np.array([[10, 10, 55, 55]], float)
    as_objects = [ValidRange(0, 50), ValidRange(40, np.inf)]
    got = assign_valid_boxes(chips, boxes, 400, 300, as_objects, **GRID)
    assert [v.tolist() for v in got] == assigned(chips, boxes) == [[0], [0]]
    assert all(v.dtype == np.int64 for v in got)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="scale_index 2 but only 2 valid ranges"):
        assigned([chip(2, 1.0, (0, 0))], [[0, 0, 10, 10]])
    with pytest.raises(ValueError, match=r"assignable_mask has shape \(1,\), expected \(2,\)"):
        assigned([chip(0, 1.0, (0, 0))], [[0, 0, 10, 10], [5, 5, 20, 20]], assignable_mask=[True])


THREE = ((-1, 50), (40, 100), (80, -1))


def test_no_lower_bound_below_the_coarsest_scale():
    # A 10 px box is valid at the finest and the middle scale (whose lo of 40 does not apply to
    # validity), not at the coarsest (size >= 80 there).
    chips = [chip(0, 1.0, (0, 0)), chip(1, 0.5, (0, 0)), chip(2, 0.25, (0, 0))]
    assert assigned(chips, [[10, 10, 20, 20]], ranges=THREE) == [[0], [0], []]


def test_boxes_thinner_than_2_px_are_valid_only_at_the_coarsest_scale():
    chips = [chip(0, 1.0, (0, 0)), chip(1, 0.5, (0, 0)), chip(2, 0.25, (0, 0))]
    # 1.5 x 60 px: sqrt(area) 9.5 would be in the finest and middle ranges
    assert assigned(chips, [[10, 10, 11.5, 70]], ranges=THREE) == [[], [], []]
    assert assigned(chips, [[10, 10, 12, 70]], ranges=THREE) == [[0], [0], []]  # 2 px wide is enough
    # at the coarsest scale only the range counts: 1.8 x 290 px -> sqrt(area) 22.8 >= 20
    assert assigned([chip(1, 0.25, (0, 0))], [[10, 10, 11.8, 300]], ranges=((-1, 50), (20, -1))) == [[0]]


def test_boxes_that_fit_no_chip_are_valid_only_at_the_coarsest_scale():
    # factor 1.0, chip 100, stride 8: the longest side must be below 91 px
    chips = [chip(0, 1.0, (0, 0)), chip(1, 1.0, (0, 0), size=(300, 300))]
    assert assigned(chips, [[0, 0, 91, 20]]) == [[], [0]]  # sqrt(area) 42.7: in both ranges
    assert assigned(chips, [[0, 0, 90.9, 20]]) == [[0], [0]]


def test_at_the_coarsest_scale_the_part_inside_the_chip_must_reach_lo():
    chips = [chip(1, 1.0, (0, 0))]  # window 0-100 x 0-100, coarsest scale (lo 40)
    assert assigned(chips, [[60, 0, 160, 90]]) == [[0]]  # 40 x 90 inside: sqrt 60
    assert assigned(chips, [[90, 0, 190, 90]]) == [[]]  # 10 x 90 inside: sqrt 30 < 40
