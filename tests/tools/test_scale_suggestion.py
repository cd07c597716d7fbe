"""suggest_scales: the documented guarantees of the heuristic on varied size distributions."""
import math

import numpy as np
import pytest

from sniper_d2.analysis import suggest_scales
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
