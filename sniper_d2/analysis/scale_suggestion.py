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
   into ``[A, B]`` chip px while consecutive ranges overlap by the factor ``overlap`` (this
   bounds the ratio of consecutive factors by ``(B / A) / overlap``) and consecutive factors differ
   by at most ``MAX_SCALE_STEP`` (2: the authors' COCO scales 3 -> 1.667 -> ~0.8 step by 1.8-2.1x).
   The step bound keeps each scale's objects near the band's centre instead of at its ends: with
   128 px chips and 16-111 px anchors the band alone allows 3.5x steps, which put the large
   objects of ``sniper_shapes_rescaled`` at the coarsest scale only, at a third of single-scale
   training's resolution (README, Results: the 2-scale and 3-scale rows).
4. Ranges: the boundary between scales i and i+1 is the size whose chip size at the two scales
   is equally far (in log) from the band's centre ``sqrt(A * B)``; ``hi_i = boundary *
   sqrt(overlap)``, ``lo_{i+1} = boundary / sqrt(overlap)``. The finest range has no lower and
   the coarsest no upper bound, so every object size is in some range.

Test scales are the training scales; test ranges are the training ranges widened by
``TEST_RANGE_MARGIN`` at both ends (the authors' COCO test ranges are wider than the training
ones: a detection near a boundary must survive at one of the scales).

Datasets whose object size follows image size (:func:`size_dependence`: resizing every image to
one reference resolution shrinks the spread of log object sizes by at least
``1 - FOLLOWS_SPREAD_RATIO``) get resolution scales instead (:func:`suggest_for_dataset`): sizes
are measured in px of the image resized to the reference (short side: the median image's; long
side cap: the 90th-percentile aspect ratio), the factors above are found in that frame and
become ``(short, max_long)`` pairs, and ``SNIPER.RANGE_REFERENCE`` puts the ranges in that frame.
Factor scales would keep the images' size differences, which single-scale training removes.
"""
import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

__all__ = [
    "FOLLOWS_SPREAD_RATIO", "MAX_SCALE_STEP", "ScaleSuggestion", "SizeDependence", "TEST_RANGE_MARGIN", "anchor_size_band",
    "size_dependence", "suggest_for_dataset", "suggest_scales",
]

SMALL_OBJECT_PERCENTILE = 5
LONGEST_SIDE_PERCENTILE = 90
MAX_SCALE_STEP = 2.0
TEST_RANGE_MARGIN = 1.2
FOLLOWS_SPREAD_RATIO = 0.9


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

    ``range_reference``: ``()`` (ranges in original px) or the ``(short, max_long)`` frame of the
    ranges (``SNIPER.RANGE_REFERENCE``). ``typical_factors``: chip px per original px (per
    reference px when ``range_reference`` is set) per scale (the coarsest at the 90th-percentile
    longest image side); ``target_chip_px``: the band ``(A, B)`` the ranges were fitted to.
    """

    scales: Tuple
    valid_ranges: Tuple[Tuple[int, int], ...]
    test_valid_ranges: Tuple[Tuple[int, int], ...]
    neg_min_proposals: Tuple[int, ...]
    typical_factors: Tuple[float, ...]
    target_chip_px: Tuple[float, float]
    range_reference: Tuple = ()

    def config_items(self) -> List[Tuple[str, tuple]]:
        """``[(full key, value), ...]`` for ``cfg.merge_from_list``-style use."""
        return [
            ("SNIPER.RANGE_REFERENCE", self.range_reference),
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
            f"  RANGE_REFERENCE: {self.range_reference!r}",
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
    max_step: float = MAX_SCALE_STEP,
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
        max_step: largest ratio of consecutive factors, > 1.
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
    if not max_step > 1:
        raise ValueError(f"max_step must be above 1, got {max_step}.")
    finest = min(max_factor, low / max(float(np.percentile(sizes, SMALL_OBJECT_PERCENTILE)), 1e-6))
    coarsest = chip_size / float(np.percentile(longest_sides, LONGEST_SIDE_PERCENTILE))
    longest = f"longest:{int(chip_size)}"
    first_neg, other_neg = int(neg_min_proposals[0]), int(neg_min_proposals[-1])
    if finest <= coarsest:  # the whole image in one chip already makes small objects big enough
        return ScaleSuggestion((longest,), ((-1, -1),), ((-1, -1),), (first_neg,), (coarsest,), (low, high))

    max_ratio = min(high / (low * overlap), max_step)
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


@dataclass(frozen=True)
class SizeDependence:
    """How much object size follows image size in a dataset.

    ``reference``: ``(short, max_long)`` px, the resolution every image is compared at;
    ``spread_original`` / ``spread_normalised``: standard deviation of log sqrt(area) of the
    boxes in original px / in px of their image resized to ``reference``; ``slope``:
    least-squares slope of log sqrt(area) on log(image short side) (1: size proportional to image
    size, 0: independent).
    """

    reference: Tuple[int, int]
    spread_original: float
    spread_normalised: float
    slope: float

    @property
    def follows(self) -> bool:
        """True when one resolution for all images removes a real part of the size spread."""
        return self.spread_normalised <= FOLLOWS_SPREAD_RATIO * self.spread_original

    def as_dict(self) -> dict:
        return {
            "reference": list(self.reference), "spread_original": self.spread_original,
            "spread_normalised": self.spread_normalised, "slope": self.slope, "follows": self.follows,
        }


def _reference_factors(image_sizes: np.ndarray, reference: Tuple[int, int]) -> np.ndarray:
    """Per image (width, height), the Detectron2-style factor that resizes it to ``reference``."""
    short, max_long = reference
    return np.minimum(short / image_sizes.min(axis=1), max_long / image_sizes.max(axis=1))


def size_dependence(sizes: np.ndarray, box_image: np.ndarray, image_sizes: np.ndarray) -> SizeDependence:
    """Measure whether object size follows image size.

    Args:
        sizes: (N,) sqrt(area) of the non-crowd boxes, original px.
        box_image: (N,) index of each box's image in ``image_sizes``.
        image_sizes: (I, 2) (width, height) of the images, original px.
    """
    image_sizes = np.asarray(image_sizes, np.float64).reshape(-1, 2)
    sizes = np.asarray(sizes, np.float64)
    if len(sizes) == 0:
        raise ValueError("The training set has no (non-crowd) boxes: there are no object sizes to measure.")
    shorts, longs = image_sizes.min(axis=1), image_sizes.max(axis=1)
    short = int(round(float(np.median(shorts))))
    reference = (short, int(math.ceil(short * float(np.percentile(longs / shorts, LONGEST_SIDE_PERCENTILE)))))
    log_sizes = np.log(np.maximum(sizes, 1e-6))
    normalised = log_sizes + np.log(_reference_factors(image_sizes, reference))[box_image]
    log_short = np.log(shorts[box_image])
    variance = float(np.var(log_short))
    slope = float(np.cov(log_sizes, log_short, bias=True)[0, 1] / variance) if variance > 1e-12 else 0.0
    return SizeDependence(reference, float(np.std(log_sizes)), float(np.std(normalised)), slope)


def _resolution(factor: float, reference: Tuple[int, int]) -> Tuple[int, int]:
    return (int(round(factor * reference[0])), int(round(factor * reference[1])))


def suggest_for_dataset(
    sizes: np.ndarray, box_image: np.ndarray, image_sizes: np.ndarray, chip_size: int, stride: int, **kwargs
) -> Tuple[ScaleSuggestion, SizeDependence]:
    """:func:`suggest_scales` for a dataset, in original px or, when object size follows image
    size (:func:`size_dependence`), as resolution scales with ranges in the reference frame.

    Args:
        sizes, box_image, image_sizes: as :func:`size_dependence`.
        chip_size, stride, kwargs: as :func:`suggest_scales`.
    """
    image_sizes = np.asarray(image_sizes, np.float64).reshape(-1, 2)
    dependence = size_dependence(sizes, box_image, image_sizes)
    if not dependence.follows:
        return suggest_scales(sizes, image_sizes.max(axis=1), chip_size, stride, **kwargs), dependence
    factors = _reference_factors(image_sizes, dependence.reference)
    framed = suggest_scales(
        np.asarray(sizes, np.float64) * factors[box_image], image_sizes.max(axis=1) * factors, chip_size, stride,
        **kwargs,
    )
    scales = tuple(_resolution(f, dependence.reference) for f in framed.typical_factors[:-1]) + framed.scales[-1:]
    suggestion = ScaleSuggestion(
        scales=scales,
        valid_ranges=framed.valid_ranges,
        test_valid_ranges=framed.test_valid_ranges,
        neg_min_proposals=framed.neg_min_proposals,
        typical_factors=framed.typical_factors,
        target_chip_px=framed.target_chip_px,
        range_reference=dependence.reference,
    )
    return suggestion, dependence
