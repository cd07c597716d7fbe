"""suggest_scales: the documented guarantees of the heuristic on varied size distributions."""
import math

import numpy as np
import pytest

from sniper_d2.analysis import size_dependence, suggest_for_dataset, suggest_scales
from sniper_d2.analysis.scale_suggestion import MAX_SCALE_STEP
from sniper_d2.chips import ValidRange, parse_scales


def _distribution(seed):
    rng = np.random.default_rng(seed)
    low, high = sorted(np.exp(rng.uniform(np.log(2), np.log(600), 2)))
    sizes = np.exp(rng.uniform(np.log(low), np.log(high + 1), int(rng.integers(20, 400))))
    longest = rng.integers(300, 2000, size=50).astype(float)
    return sizes, longest


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("chip_size, stride, band", [(512, 32, (32, 512)), (128, 16, (16, 96))])
def test_every_size_in_a_range_and_ranges_map_into_the_band(seed, chip_size, stride, band):
    sizes, longest = _distribution(seed)
    s = suggest_scales(sizes, longest, chip_size, stride, target_chip_px=band, neg_min_proposals=(25, 10, 10))
    ranges = [ValidRange.from_config(p) for p in s.valid_ranges]
    assert np.stack([r.contains_train(sizes) for r in ranges]).any(axis=0).all()
    assert ranges[0].lo == 0 and math.isinf(ranges[-1].hi)
    for a, b in zip(ranges, ranges[1:]):
        assert b.lo < a.hi  # consecutive ranges overlap
    low, high = band[0], min(band[1], chip_size - stride - 1)
    factors = s.typical_factors
    assert factors == tuple(sorted(factors, reverse=True))  # finest first
    # consecutive factors differ by at most MAX_SCALE_STEP (the authors' COCO steps are 1.8-2.1x)
    assert all(a / b <= MAX_SCALE_STEP * 1.01 for a, b in zip(factors, factors[1:]))
    # Finest scale: the 5th-percentile object reaches the band's low end (unless capped at 3x).
    assert factors[0] == pytest.approx(3.0) or np.percentile(sizes, 5) * factors[0] >= low * 0.99
    # Inner range ends land inside the band at their scale (1 px rounding of the config values).
    for f, r in zip(factors, ranges):
        if r.lo > 0:
            assert (r.lo + 1) * f >= low
        if not math.isinf(r.hi):
            assert (r.hi - 1) * f <= high
    assert parse_scales(s.scales)[-1].kind == "longest"
    assert len(s.scales) == len(s.valid_ranges) == len(s.test_valid_ranges) == len(s.neg_min_proposals)
    assert s.neg_min_proposals[0] == 25 and set(s.neg_min_proposals[1:]) <= {10}


def test_test_ranges_are_wider_than_training_ranges():
    sizes, longest = _distribution(3)
    s = suggest_scales(np.concatenate([sizes, [3.0, 900.0]]), longest, 512, 32)
    for (lo, hi), (tlo, thi) in zip(s.valid_ranges, s.test_valid_ranges):
        assert (tlo == -1) == (lo == -1) and (thi == -1) == (hi == -1)
        assert lo == -1 or tlo < lo
        assert hi == -1 or thi > hi


def test_large_objects_in_small_images_need_one_scale():
    s = suggest_scales(np.array([60.0, 100.0, 200.0]), np.full(5, 400.0), 512, 32)
    assert s.scales == ("longest:512",) and s.valid_ranges == ((-1, -1),)


def test_bad_inputs_raise_with_the_fix():
    with pytest.raises(ValueError, match="no \\(non-crowd\\) boxes"):
        suggest_scales(np.zeros(0), np.full(3, 500.0), 512, 32)
    with pytest.raises(ValueError, match="--target-chip-px"):
        suggest_scales(np.array([10.0]), np.full(3, 500.0), 64, 8, target_chip_px=(32, 512))


def _images_and_boxes(seed, follows):
    """200 images; object sizes log-uniform 12-120 px, then (``follows``) scaled with their image
    by a log-uniform 0.3-1.7, else drawn independently of the image size (which varies as much)."""
    rng = np.random.default_rng(seed)
    k = np.exp(rng.uniform(np.log(0.3), np.log(1.7), 200))
    image_sizes = np.stack([480 * k, 360 * k], axis=1).round()
    box_image = np.repeat(np.arange(200), 4)
    sizes = np.exp(rng.uniform(np.log(12), np.log(120), len(box_image)))
    if follows:
        sizes = sizes * k[box_image]
    return sizes, box_image, image_sizes


@pytest.mark.parametrize("seed", range(3))
def test_size_dependence_tells_the_two_kinds_apart(seed):
    sizes, box_image, image_sizes = _images_and_boxes(seed, follows=True)
    follows = size_dependence(sizes, box_image, image_sizes)
    independent = size_dependence(*_images_and_boxes(seed, follows=False))
    assert follows.follows and not independent.follows
    assert follows.slope == pytest.approx(1.0, abs=0.25) and independent.slope == pytest.approx(0.0, abs=0.25)
    assert follows.reference[0] == pytest.approx(np.median(image_sizes[:, 1]), abs=1)  # the median short side
    assert follows.reference[1] >= follows.reference[0] * 4 / 3 - 1  # all images are 4:3


def test_fixed_size_images_never_follow():
    sizes = np.exp(np.random.default_rng(0).uniform(np.log(5), np.log(300), 500))
    dependence = size_dependence(sizes, np.arange(500) % 50, np.full((50, 2), 512.0))
    assert not dependence.follows and dependence.slope == 0.0


def test_size_following_image_gets_resolution_scales_with_ranges_in_the_reference_frame():
    sizes, box_image, image_sizes = _images_and_boxes(0, follows=True)
    suggestion, dependence = suggest_for_dataset(sizes, box_image, image_sizes, 512, 32)
    assert suggestion.range_reference == dependence.reference
    specs = parse_scales(suggestion.scales)
    assert [s.kind for s in specs[:-1]] == ["resolution"] * (len(specs) - 1) and specs[-1].kind == "longest"
    # In the reference frame the sizes span 12-120 px as in the base images: every one is in a range.
    factors = np.minimum(dependence.reference[0] / image_sizes.min(axis=1),
                         dependence.reference[1] / image_sizes.max(axis=1))
    framed = sizes * factors[box_image]
    assert framed.min() > 9 and framed.max() < 160
    ranges = [ValidRange.from_config(p) for p in suggestion.valid_ranges]
    assert np.stack([r.contains_train(framed) for r in ranges]).any(axis=0).all()
    assert dict(suggestion.config_items())["SNIPER.RANGE_REFERENCE"] == dependence.reference


def test_independent_sizes_keep_factor_scales_in_original_px():
    sizes, box_image, image_sizes = _images_and_boxes(0, follows=False)
    suggestion, _ = suggest_for_dataset(sizes, box_image, image_sizes, 512, 32)
    assert suggestion.range_reference == ()
    assert all(s.kind in ("factor", "longest") for s in parse_scales(suggestion.scales))
    assert suggestion == suggest_scales(sizes, image_sizes.max(axis=1), 512, 32)
