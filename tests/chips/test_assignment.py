"""assign_valid_boxes by hand: the chip holding the largest part of a box, ties, ranges, crowd."""
import numpy as np
import pytest

from sniper_d2.chips import Chip, ValidRange, assign_valid_boxes

RANGES = ((-1, 50), (40, -1))  # sqrt(area), original px


def chip(scale_index, scale, origin, size=(100, 100), negative=False):
    return Chip("img", scale_index, scale, origin, size, np.zeros(0, np.int64), negative)


def assigned(chips, boxes, **kwargs):
    return [v.tolist() for v in assign_valid_boxes(chips, np.array(boxes, float), 400, 300, RANGES, **kwargs)]


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
    got = assign_valid_boxes(chips, boxes, 400, 300, as_objects)
    assert [v.tolist() for v in got] == assigned(chips, boxes) == [[0], [0]]
    assert all(v.dtype == np.int64 for v in got)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="scale_index 2 but only 2 valid ranges"):
        assigned([chip(2, 1.0, (0, 0))], [[0, 0, 10, 10]])
    with pytest.raises(ValueError, match=r"assignable_mask has shape \(1,\), expected \(2,\)"):
        assigned([chip(0, 1.0, (0, 0))], [[0, 0, 10, 10], [5, 5, 20, 20]], assignable_mask=[True])
