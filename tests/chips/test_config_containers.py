"""Scales and valid ranges written in a LazyConfig arrive as omegaconf ``ListConfig``s: the
parsers take them like lists and tuples, and still reject strings and malformed values."""
import pytest
from omegaconf import ListConfig, OmegaConf

from sniper_d2.chips import ChipGenerator, ScaleSpec, ValidRange, parse_scale, parse_scales, parse_valid_ranges


def test_scales_as_list_config_parse_like_tuples():
    written = [2.0, [800, 1333], "longest:128"]
    assert parse_scales(ListConfig(written)) == parse_scales(tuple(written))
    assert parse_scale(ListConfig([800, 1333])) == ScaleSpec("resolution", (800.0, 1333.0))
    # the form a LazyConfig node holds after OmegaConf.create (nested ListConfigs)
    node = OmegaConf.create({"scales": written})
    assert [s.kind for s in parse_scales(node.scales)] == ["factor", "resolution", "longest"]


def test_valid_ranges_as_list_config_parse_like_tuples():
    pairs = [[-1, 32], [24, 96], [80, -1]]
    node = OmegaConf.create({"ranges": pairs})
    assert parse_valid_ranges(node.ranges, 3) == parse_valid_ranges(tuple(map(tuple, pairs)), 3)
    assert ValidRange.from_config(ListConfig([24, 96])) == ValidRange(24.0, 96.0)


def test_chip_generator_takes_list_configs():
    node = OmegaConf.create({"scales": [2.0, 1.0], "ranges": [[-1, 40], [20, -1]], "neg": [3, 2]})
    generator = ChipGenerator(node.scales, node.ranges, chip_size=64, stride=8, neg_min_proposals=node.neg)
    assert [s.values for s in generator.scales] == [(2.0,), (1.0,)]
    assert generator.valid_ranges[1] == ValidRange(20.0, float("inf"))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: parse_scale(ListConfig([800, -5])), r"Invalid scale \[800, -5\]: -5 is not a positive number"),
        (lambda: parse_scale(ListConfig([800, 1333, 2000])), r"Invalid scale \[800, 1333, 2000\]"),
        (lambda: parse_scales("2.0"), "Expected a non-empty list of scales, got '2.0'"),
        (lambda: parse_scales(ListConfig([])), "Expected a non-empty list of scales"),
        (lambda: parse_scales({"a": 1.0}), "Expected a non-empty list of scales"),
        (lambda: parse_valid_ranges(ListConfig([[-1, 32, 5]]), 1), r"A valid range is a pair .* got \[-1, 32, 5\]"),
        (lambda: parse_valid_ranges("(-1, 32)", 1, "SNIPER.TEST.VALID_RANGES"), "SNIPER.TEST.VALID_RANGES is a list"),
        (lambda: parse_valid_ranges(ListConfig([[-1, 32]]), 2), "1 ranges but there are 2 scales"),
    ],
)
def test_malformed_values_still_fail_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()
