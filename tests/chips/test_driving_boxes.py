"""The authors' size rules (SNIPER_SPEC section 1), checked at their boundaries.

COCO settings: scales (3.0, 1.667, longest side 512), ranges (-1,80), (32,150), (120,-1), chip 512,
stride 32. A box fits a chip at scale s when max(w, h) < (512 - 32 - 1) / s: 159.67 px at 3.0,
287.34 px at 1.667.
"""
import numpy as np
import pytest

from sniper_d2.chips import ValidRange, box_shapes, driving_rules, parse_valid_ranges, proposal_rules

COCO = parse_valid_ranges(((-1, 80), (32, 150), (120, -1)), 3)
FACTORS = (3.0, 1.667, 512 / 640)


def masks(rules, sizes, stride=32):
    """Per scale, which (w, h) boxes the rules accept."""
    boxes = np.array([[10, 10, 10 + w, 10 + h] for w, h in sizes], dtype=float)
    shapes = box_shapes(boxes)
    return [rule.mask(shapes, f, 512, stride).tolist() for rule, f in zip(rules, FACTORS)]


def test_finest_scale_upper_bound_and_min_side():
    sizes = [(79, 79), (80, 80), (2, 2), (1.99, 50), (50, 1.99), (0.5, 0.5)]
    assert masks(driving_rules(COCO), sizes)[0] == [True, False, True, False, False, False]


def test_finest_scale_box_must_fit_a_chip():
    # sqrt(area) well inside the range; only the longest side decides.
    assert masks(driving_rules(COCO), [(159, 10), (160, 10)])[0] == [True, False]
    # A larger stride leaves less room: (512 - 64 - 1) / 3 = 149
    assert masks(driving_rules(COCO), [(148.9, 10), (149, 10)], stride=64)[0] == [True, False]


def test_middle_scale_half_open_range_and_fit():
    sizes = [(32, 32), (31.9, 31.9), (149.9, 149.9), (150, 150), (287, 40), (288, 40), (1, 1100)]
    assert masks(driving_rules(COCO), sizes)[1] == [True, False, True, False, True, False, False]


def test_coarsest_scale_lower_bound_only():
    sizes = [(120, 120), (119.9, 119.9), (640, 480), (1, 20000)]
    assert masks(driving_rules(COCO), sizes)[2] == [True, False, True, True]


def test_proposals_have_no_lower_bound_at_middle_scales():
    sizes = [(10, 10), (0.5, 0.5), (149.9, 149.9), (150, 150)]
    assert masks(proposal_rules(COCO), sizes)[1] == [True, True, True, False]
    assert masks(driving_rules(COCO), sizes)[1] == [False, False, True, False]
    # finest and coarsest rules are the same as for ground truth
    assert masks(proposal_rules(COCO), [(1, 5), (119, 119), (120, 120)])[2] == [False, False, True]
    assert masks(proposal_rules(COCO), [(1, 5), (79, 79)])[0] == [False, True]


def test_single_scale_follows_the_coarsest_rule():
    rules = driving_rules((ValidRange(10, 20),))
    boxes = np.array([[0, 0, 5, 5], [0, 0, 10, 10], [0, 0, 5000, 3000], [0, 0, 1, 500]], dtype=float)
    assert rules[0].mask(box_shapes(boxes), 1.0, 512, 32).tolist() == [False, True, True, True]


@pytest.mark.parametrize("rules", [driving_rules(COCO), proposal_rules(COCO)])
def test_only_the_coarsest_scale_skips_the_fit_test(rules):
    assert [r.fit_in_chip for r in rules] == [True, True, False]
