"""Negative chips by hand: uncovered proposals, the minimum, images without ground truth, sampling."""
import numpy as np
import pytest

from sniper_d2.chips import ChipGenerator, negative_chips_at_scale, sample_negative_chips, touches_any


def cluster(x, y, n, side=10.0, spread=30.0):
    """n proposals of ``side`` px, lying within a ``side + spread`` px square at (x, y), original px."""
    offsets = np.linspace(0, spread, n)
    return np.stack([x + offsets, y + offsets[::-1], x + offsets + side, y + offsets[::-1] + side], axis=1)


def single_scale(min_proposals=3, chip_size=64, stride=8):
    return ChipGenerator((1.0,), ((-1, -1),), chip_size=chip_size, stride=stride, neg_min_proposals=(min_proposals,))


def test_touches_any_needs_positive_area():
    windows = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float)
    boxes = np.array([[10, 0, 20, 10],  # shares edges with both windows only
                      [9, 9, 11, 11],  # overlaps the first
                      [29.5, 2, 40, 3]], float)  # overlaps the second
    assert touches_any(boxes, windows).tolist() == [False, True, True]
    assert touches_any(boxes, np.zeros((0, 4))).tolist() == [False, False, False]


@pytest.mark.parametrize("num_windows", [1, 3, 4, 5, 12])
def test_touches_any_matches_pairwise_checks(num_windows):
    rng = np.random.default_rng(num_windows)
    corners = rng.integers(0, 60, (200, 2)).astype(float)
    boxes = np.concatenate([corners, corners + rng.integers(1, 15, (200, 2))], axis=1)
    origins = rng.integers(0, 50, (num_windows, 2)).astype(float)
    windows = np.concatenate([origins, origins + 16], axis=1)
    expected = [
        any(min(b[2], w[2]) > max(b[0], w[0]) and min(b[3], w[3]) > max(b[1], w[1]) for w in windows) for b in boxes
    ]
    assert touches_any(boxes, windows).tolist() == expected


def test_image_without_ground_truth_gives_negative_chips():
    gen = single_scale()
    proposals = np.concatenate([cluster(20, 20, 5), cluster(150, 100, 3)])
    pool = gen.negative_chip_pool("no_gt", 240, 160, proposals, [], np.random.default_rng(0))
    # 5 > 3 proposals near (20, 20): one chip; the 3 near (150, 100) are not more than 3: none
    assert [(c.image_id, c.negative, c.box_ids.tolist()) for c in pool] == [("no_gt", True, [0, 1, 2, 3, 4])]
    x0, y0 = pool[0].origin
    assert x0 <= 20 and y0 <= 20 and x0 + 64 >= 60 and y0 + 64 >= 60


def test_minimum_is_exclusive():
    proposals = cluster(20, 20, 4)
    assert single_scale(min_proposals=4).negative_chip_pool(0, 240, 160, proposals, [], np.random.default_rng(0)) == []
    assert len(single_scale(min_proposals=3).negative_chip_pool(0, 240, 160, proposals, [], np.random.default_rng(0))) == 1


def test_proposals_touching_a_positive_chip_do_not_count():
    gen = single_scale()
    positives = gen.positive_chips(0, 240, 160, np.array([[170, 90, 200, 120]], float), np.random.default_rng(0))
    assert len(positives) == 1
    px0, py0 = positives[0].origin
    proposals = np.concatenate([cluster(20, 20, 5), cluster(px0 + 10, py0 + 10, 8)])  # second: inside it
    pool = gen.negative_chip_pool(0, 240, 160, proposals, positives, np.random.default_rng(0))
    assert [c.box_ids.tolist() for c in pool] == [[0, 1, 2, 3, 4]]
    # without the positive chip, the second cluster makes its own negative chip
    pool = gen.negative_chip_pool(0, 240, 160, proposals, [], np.random.default_rng(0))
    assert sorted(c.box_ids.tolist() for c in pool) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10, 11, 12]]


def test_a_whole_image_positive_chip_leaves_no_negatives():
    gen = single_scale(chip_size=512)
    positives = gen.positive_chips(0, 240, 160, np.array([[10, 10, 30, 30]], float), np.random.default_rng(0))
    assert positives[0].size == (240, 160)
    assert gen.negative_chip_pool(0, 240, 160, cluster(100, 100, 30), positives, np.random.default_rng(0)) == []


def test_proposal_sizes_follow_the_scale_rules():
    gen = ChipGenerator((2.0, 1.0), ((-1, 20), (15, -1)), chip_size=64, stride=8, neg_min_proposals=(3, 3))
    small = cluster(20, 20, 5, side=8, spread=10)  # 8 px: finest scale only
    large = cluster(120, 20, 5, side=30) - [0, 0, 0, 10]  # 30 x 20 px, sqrt(area) 24.5: coarsest only
    pool = gen.negative_chip_pool(0, 300, 200, np.concatenate([small, large]), [], np.random.default_rng(0))
    assert [(c.scale_index, c.scale, c.box_ids.tolist()) for c in pool] == [
        (0, 2.0, [0, 1, 2, 3, 4]), (1, 1.0, [5, 6, 7, 8, 9])
    ]


def test_proposals_outside_the_rounded_scaled_image_do_not_count():
    # 606 px * 1.667 = 1010.2 px is rounded to 1010: proposals starting past x = 1010 / 1.667 in
    # original px lie wholly outside the scaled image (and inside no chip there).
    slivers = np.array([[605.95, 10 + k, 606, 20 + k] for k in range(12)])
    chips = negative_chips_at_scale(
        0, 0, 1.667, (1010, 300), slivers, np.arange(12), np.zeros((0, 4)), 512, 32, 10, np.random.default_rng(0)
    )
    assert chips == []
    inside = slivers - [1, 0, 1, 0]
    chips = negative_chips_at_scale(
        0, 0, 1.667, (1010, 300), inside, np.arange(12), np.zeros((0, 4)), 512, 32, 10, np.random.default_rng(0)
    )
    assert [c.box_ids.tolist() for c in chips] == [list(range(12))]


def test_empty_proposals_never_count():
    gen = single_scale()
    assert gen.negative_chip_pool(0, 240, 160, np.zeros((0, 4)), [], np.random.default_rng(0)) == []
    flat = cluster(20, 20, 6)
    flat[3, 3] = flat[3, 1]  # zero height
    outside = cluster(20, 20, 6) + [200, 0, 200, 0]  # x1 = 220 ... 250: the last two start past the edge
    for proposals, counted in ((flat, [0, 1, 2, 4, 5]), (outside, [0, 1, 2, 3])):
        pool = gen.negative_chip_pool(0, 240, 160, proposals, [], np.random.default_rng(0))
        assert [c.box_ids.tolist() for c in pool] == [counted]


def test_sampling_negative_chips():
    gen = single_scale(min_proposals=0)
    pool = gen.negative_chip_pool(0, 240, 160, np.concatenate([cluster(x, 20, 2) for x in (0, 80, 160)]),
                                  [], np.random.default_rng(0))
    assert len(pool) == 3
    assert sample_negative_chips(pool, 5, np.random.default_rng(0)) == pool
    assert sample_negative_chips(pool, 0, np.random.default_rng(0)) == []
    draws = [sample_negative_chips(pool, 2, np.random.default_rng(seed)) for seed in range(20)]
    assert all(len(d) == 2 and d[0] != d[1] for d in draws)
    assert all(pool.index(d[0]) < pool.index(d[1]) for d in draws)  # pool order kept
    assert len({tuple(pool.index(c) for c in d) for d in draws}) == 3  # all pairs occur
    assert draws[3] == sample_negative_chips(pool, 2, np.random.default_rng(3))
    with pytest.raises(ValueError, match=">= 0"):
        sample_negative_chips(pool, -1, np.random.default_rng(0))
