"""Greedy set cover: all bookkeeping regimes agree with a brute-force reference, draw by draw."""
import importlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sniper_d2.chips import candidate_grid, greedy_cover

cover_module = importlib.import_module("sniper_d2.chips.greedy_cover")
REGIMES = [cover_module._cover_few, cover_module._cover_dense, cover_module._cover_sparse]


def reference_cover(brute_contains, grid, boxes, rng, min_covered=1):
    """The algorithm spelled out on a dense candidate x box matrix."""
    nx, ny = grid.shape
    contains = brute_contains(grid, boxes)
    coverable = contains.any(axis=0)
    if coverable.sum() < min_covered:
        return []
    if nx * ny == 1:
        return [(0, 0, np.flatnonzero(coverable))]
    counts = contains.sum(axis=1).astype(float)
    if min_covered > 1 and counts.max() < min_covered:
        return []
    score = counts + rng.random((nx, ny)).reshape(-1)
    alive = coverable.copy()
    chosen = []
    while alive.any():
        best = int(score.argmax())
        if score[best] < min_covered:
            break
        hit = contains[best] & alive
        alive &= ~hit
        score -= contains[:, hit].sum(axis=1)
        chosen.append((best // ny, best % ny, np.flatnonzero(hit)))
    return chosen


def as_lists(chosen):
    return [(int(i), int(j), covered.tolist()) for i, j, covered in chosen]


@st.composite
def cover_problems(draw):
    width, height = draw(st.integers(8, 160)), draw(st.integers(8, 160))
    chip = draw(st.sampled_from([16, 24, 48]))
    stride = draw(st.integers(1, 12))
    n = draw(st.integers(0, 45))
    # Integer and half-pixel coordinates hit the containment boundaries exactly; a few boxes reach
    # past the right/bottom edges (as rounding of scaled image sizes makes them do).
    x1 = draw(st.lists(st.integers(0, 2 * width), min_size=n, max_size=n))
    y1 = draw(st.lists(st.integers(0, 2 * height), min_size=n, max_size=n))
    w = draw(st.lists(st.integers(1, 2 * chip + 4), min_size=n, max_size=n))
    h = draw(st.lists(st.integers(1, 2 * chip + 4), min_size=n, max_size=n))
    boxes = np.array([x1, y1, np.add(x1, w), np.add(y1, h)], dtype=float).T / 2
    boxes = np.minimum(boxes, [width, height, width + 1, height + 1]).reshape(-1, 4)
    return candidate_grid(width, height, chip, stride), boxes, draw(st.integers(0, 2**32)), draw(st.sampled_from([1, 1, 2, 4]))


@settings(max_examples=150, deadline=None)
@given(problem=cover_problems())
def test_regimes_match_the_reference(problem, contains):
    grid, boxes, seed, min_covered = problem
    expected_rng = np.random.default_rng(seed)
    expected = as_lists(reference_cover(contains, grid, boxes, expected_rng, min_covered))
    for regime in REGIMES + [greedy_cover]:
        rng = np.random.default_rng(seed)
        assert as_lists(regime(grid, boxes, rng, min_covered)) == expected, regime.__name__
        assert rng.random() == expected_rng.random(), f"{regime.__name__} drew a different amount"
        expected_rng = np.random.default_rng(seed)
        reference_cover(contains, grid, boxes, expected_rng, min_covered)


@settings(max_examples=60, deadline=None)
@given(problem=cover_problems())
def test_cover_properties(problem, contains):
    grid, boxes, seed, _ = problem
    chosen = greedy_cover(grid, boxes, np.random.default_rng(seed))
    contains = contains(grid, boxes).reshape(len(grid.xs), len(grid.ys), -1)
    covered = np.concatenate([c for _, _, c in chosen]) if chosen else np.zeros(0, int)
    # every box some candidate contains is covered exactly once, by a chip that contains it
    assert sorted(covered.tolist()) == np.flatnonzero(contains.any(axis=(0, 1))).tolist()
    for i, j, ids in chosen:
        assert contains[i, j, ids].all()
    # no candidate is chosen twice, and the greedy counts never increase
    assert len({(i, j) for i, j, _ in chosen}) == len(chosen)
    counts = [len(ids) for _, _, ids in chosen]
    assert counts == sorted(counts, reverse=True)


def test_boxes_in_one_chip_give_one_chip_and_far_boxes_two():
    grid = candidate_grid(200, 100, 64, 8)
    rng = np.random.default_rng(0)
    near = np.array([[10, 10, 20, 20], [40, 40, 60, 60]], dtype=float)
    assert [ids.tolist() for _, _, ids in greedy_cover(grid, near, rng)] == [[0, 1]]
    far = np.array([[10, 10, 20, 20], [150, 40, 190, 60]], dtype=float)
    chosen = greedy_cover(grid, far, rng)
    assert sorted(ids.tolist() for _, _, ids in chosen) == [[0], [1]]


def test_min_covered_keeps_only_chips_covering_enough_boxes():
    grid = candidate_grid(300, 64, 64, 16)
    cluster = [[10 + k, 10, 20 + k, 20] for k in range(3)]
    lonely = [[250, 10, 260, 20]]
    boxes = np.array(cluster + lonely, dtype=float)
    chosen = greedy_cover(grid, boxes, np.random.default_rng(0), min_covered=2)
    assert [ids.tolist() for _, _, ids in chosen] == [[0, 1, 2]]
    assert greedy_cover(grid, boxes, np.random.default_rng(0), min_covered=4) == []
    with pytest.raises(ValueError, match="min_covered"):
        greedy_cover(grid, boxes, np.random.default_rng(0), min_covered=0)


def test_tie_break_is_random_but_seeded():
    grid = candidate_grid(400, 400, 64, 8)
    box = np.array([[200, 200, 210, 210]], dtype=float)  # contained by dozens of candidates
    picks = [greedy_cover(grid, box, np.random.default_rng(seed))[0][:2] for seed in range(10)]
    assert len(set(picks)) > 1
    assert picks == [greedy_cover(grid, box, np.random.default_rng(seed))[0][:2] for seed in range(10)]


def test_boxes_too_large_for_any_chip_are_left_alone():
    grid = candidate_grid(300, 300, 64, 8)
    boxes = np.array([[0, 0, 100, 10], [5, 5, 15, 15]], dtype=float)
    assert [ids.tolist() for _, _, ids in greedy_cover(grid, boxes, np.random.default_rng(0))] == [[1]]
