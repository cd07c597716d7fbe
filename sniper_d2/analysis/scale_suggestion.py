"""Suggested training scales and valid ranges for a dataset (``tools/analyze_dataset.py --suggest``).

The authors' guidance: at every scale, the objects a chip trains on should measure roughly
32-500 chip px. The tool takes this band ``[A, B]`` from the model's smallest and largest anchor
(32-512 with Detectron2's defaults) and caps ``B`` at ``chip_size - stride - 1``, the longest box
side a chip can hold. Heuristic, sizes = sqrt(area) of the non-crowd boxes, original px:

1. Finest scale: the factor that brings the 5th-percentile object to ``A`` chip px, at most
   ``max_factor`` (default 3, the authors' finest COCO scale: upsampling further adds cost, not
   detail).
2. Coarsest scale: ``"longest:<chip_size>"``, the whole image in one chip (factor taken at the
   90th percentile of the images' longest sides: most images are at least that coarse).
3. In between: the fewest scales, evenly spaced in log(factor), such that every range below maps
   into ``[A, B]`` chip px while consecutive ranges overlap by the factor ``overlap``; this
   bounds the ratio of consecutive factors by ``(B / A) / overlap``.
4. Ranges: the boundary between scales i and i+1 is the size whose chip size at the two scales
   is equally far (in log) from the band's centre ``sqrt(A * B)``; ``hi_i = boundary *
   sqrt(overlap)``, ``lo_{i+1} = boundary / sqrt(overlap)``. The finest range has no lower and
   the coarsest no upper bound, so every object size is in some range.

Test scales are the training scales; test ranges are the training ranges widened by
``TEST_RANGE_MARGIN`` at both ends (the authors' COCO test ranges are wider than the training
ones: a detection near a boundary must survive at one of the scales).
"""
import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

__all__ = ["ScaleSuggestion", "TEST_RANGE_MARGIN", "anchor_size_band", "suggest_scales"]

SMALL_OBJECT_PERCENTILE = 5
LONGEST_SIDE_PERCENTILE = 90
TEST_RANGE_MARGIN = 1.2


def anchor_size_band(cfg) -> Tuple[float, float]:
    """(smallest, largest) anchor size of ``cfg.MODEL.ANCHOR_GENERATOR.SIZES``, chip px: the object
    sizes the detector's anchors match best, used as the default target band."""
    sizes = [float(v) for level in cfg.MODEL.ANCHOR_GENERATOR.SIZES for v in level]
    return min(sizes), max(sizes)


def _round_factor(factor: float) -> float:
    return float(f"{factor:.3g}")


def _config_ranges(bounds: Sequence[Tuple[float, float]]) -> Tuple[Tuple[int, int], ...]:
    """Integer config pairs, widened outward by the rounding, -1 for unbounded ends."""
    return tuple(
        (-1 if lo <= 0 else int(math.floor(lo)), -1 if math.isinf(hi) else int(math.ceil(hi))) for lo, hi in bounds
    )


@dataclass(frozen=True)
class ScaleSuggestion:
    """Suggested ``SNIPER.*`` values (config forms: -1 = unbounded, sqrt(area) in original px).

    ``typical_factors``: chip px per original px per scale (the coarsest at the 90th-percentile
    longest image side); ``target_chip_px``: the band ``(A, B)`` the ranges were fitted to.
    """

    scales: Tuple
    valid_ranges: Tuple[Tuple[int, int], ...]
    test_valid_ranges: Tuple[Tuple[int, int], ...]
    neg_min_proposals: Tuple[int, ...]
    typical_factors: Tuple[float, ...]
    target_chip_px: Tuple[float, float]

    def config_items(self) -> List[Tuple[str, tuple]]:
        """``[(full key, value), ...]`` for ``cfg.merge_from_list``-style use."""
        return [
            ("SNIPER.TRAIN.SCALES", self.scales),
            ("SNIPER.TRAIN.VALID_RANGES", self.valid_ranges),
            ("SNIPER.NEG.MIN_PROPOSALS", self.neg_min_proposals),
            ("SNIPER.TEST.SCALES", self.scales),
            ("SNIPER.TEST.VALID_RANGES", self.test_valid_ranges),
        ]

    def overrides(self) -> List[str]:
        """Trailing ``KEY VALUE`` tokens for train_net.py / the tools (values as Python literals)."""
        return [token for key, value in self.config_items() for token in (key, repr(value))]

    def override_line(self) -> str:
        """:meth:`overrides` as one shell-ready line (values double-quoted)."""
        return " ".join(f'{key} "{value!r}"' for key, value in self.config_items())

    def yaml(self) -> str:
        """The values as a YAML block to paste into a config file."""
        return "\n".join([
            "SNIPER:",
            "  TRAIN:",
            f"    SCALES: {self.scales!r}",
            f"    VALID_RANGES: {self.valid_ranges!r}",
            "  NEG:",
            f"    MIN_PROPOSALS: {self.neg_min_proposals!r}",
            "  TEST:",
            f"    SCALES: {self.scales!r}",
            f"    VALID_RANGES: {self.test_valid_ranges!r}",
        ])


def suggest_scales(
    sizes: np.ndarray,
    longest_sides: np.ndarray,
    chip_size: int,
    stride: int,
    target_chip_px: Tuple[float, float] = (32.0, 512.0),
    max_factor: float = 3.0,
    neg_min_proposals: Sequence[int] = (25, 10, 10),
    overlap: float = 2.0,
) -> ScaleSuggestion:
    """Scales and valid ranges for objects of ``sizes`` (sqrt(area), original px, non-crowd) in
    images whose longest sides are ``longest_sides`` (original px); see the module docstring.

    Args:
        chip_size, stride: chip side and (largest) grid step, chip px.
        target_chip_px: ``(A, B)``, the object sizes in chip px to aim for.
        max_factor: upper bound of the finest factor.
        neg_min_proposals: the current SNIPER.NEG.MIN_PROPOSALS: the suggestion keeps its first
            value for the finest scale and its last for the others.
        overlap: ``hi_i / lo_{i+1}`` of consecutive ranges, > 1.
    """
    sizes = np.asarray(sizes, np.float64)
    if len(sizes) == 0:
        raise ValueError("The training set has no (non-crowd) boxes: there are no object sizes to base scales on.")
    low, high = (float(v) for v in target_chip_px)
    high = min(high, chip_size - stride - 1)
    if not 0 < low * overlap < high:
        raise ValueError(
            f"Target band {target_chip_px} chip px (upper end capped at CHIP_SIZE - stride - 1 = "
            f"{chip_size - stride - 1}) is too narrow: its upper end must exceed {overlap:g} x its lower end. "
            "Set the band with --target-chip-px MIN MAX (default: the smallest and largest anchor size, "
                "MODEL.ANCHOR_GENERATOR.SIZES) or use larger chips (SNIPER.CHIP_SIZE)."
        )
    if not max_factor > 0:
        raise ValueError(f"max_factor must be positive, got {max_factor}.")
    finest = min(max_factor, low / max(float(np.percentile(sizes, SMALL_OBJECT_PERCENTILE)), 1e-6))
    coarsest = chip_size / float(np.percentile(longest_sides, LONGEST_SIDE_PERCENTILE))
    longest = f"longest:{int(chip_size)}"
    first_neg, other_neg = int(neg_min_proposals[0]), int(neg_min_proposals[-1])
    if finest <= coarsest:  # the whole image in one chip already makes small objects big enough
        return ScaleSuggestion((longest,), ((-1, -1),), ((-1, -1),), (first_neg,), (coarsest,), (low, high))

    max_ratio = high / (low * overlap)
    num_scales = 1 + math.ceil(math.log(finest / coarsest) / math.log(max_ratio) - 1e-9)
    ratio = (finest / coarsest) ** (1.0 / (num_scales - 1))
    factors = [_round_factor(finest / ratio**i) for i in range(num_scales - 1)] + [coarsest]
    centre = math.sqrt(low * high)
    boundaries = [centre / math.sqrt(a * b) for a, b in zip(factors[:-1], factors[1:])]
    his = [b * math.sqrt(overlap) for b in boundaries] + [math.inf]
    los = [0.0] + [b / math.sqrt(overlap) for b in boundaries]
    bounds = list(zip(los, his))
    test_bounds = [(lo / TEST_RANGE_MARGIN, hi * TEST_RANGE_MARGIN) for lo, hi in bounds]
    return ScaleSuggestion(
        scales=tuple(factors[:-1]) + (longest,),
        valid_ranges=_config_ranges(bounds),
        test_valid_ranges=_config_ranges(test_bounds),
        neg_min_proposals=(first_neg,) + (other_neg,) * (num_scales - 1),
        typical_factors=tuple(factors),
        target_chip_px=(low, high),
    )
