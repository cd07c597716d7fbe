"""AutoFocus inference (Najibi et al., ICCV 2019): the bookkeeping of coarse-to-fine test scales.

With ``SNIPER.TEST.AUTOFOCUS.ENABLED``, :class:`~sniper_d2.inference.SniperMultiScaleInference`
runs the test scales coarsest first. The coarsest scale, and any scale whose ``PRUNE`` entry is
False, runs on the whole image; a pruned scale runs only on the FocusChips
(:mod:`sniper_d2.chips.focus_chips`) of the next coarser scale's FocusPixel map. Each run of the
detector (a whole image, a FocusChip or a tile of either) also gives a map of its own input
(``model.inference_with_focus``); :class:`FocusMap` pastes these into one map over the whole
image at that scale, from which the next finer scale's FocusChips come. :class:`PixelCounts`
keeps the pixels run through the detector against those of the full pyramid, in every mode.
"""
import copy
import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import List, Sequence, Tuple

import numpy as np
import torch

from ..chips.focus_chips import focus_chips, focus_chips_to_original
from ..chips.scales import scaled_size
from ..modeling.focus_pixels import FOCUS_POSITIVE, focus_pixel_labels
from .tiling import Tile

__all__ = ["FocusMap", "PixelCounts", "check_autofocus_model", "check_autofocus_settings"]


@dataclass
class PixelCounts:
    """Running totals of one :class:`SniperMultiScaleInference` (reset with its
    ``reset_pixel_counts()``).

    ``processed[s]``: px of the scaled images the detector ran on at scale ``s`` (index of
    ``SNIPER.TEST.SCALES``), summed over its inputs as given, before the model's own padding:
    whole images, FocusChips and tiles (overlapping tiles count their overlaps twice).
    ``full_pyramid[s]``: px of every image resized whole to scale ``s``, what plain multi-scale
    inference without tiles runs. ``images``: images processed.
    """

    processed: List[int]
    full_pyramid: List[int]
    images: int = 0

    @classmethod
    def zeros(cls, num_scales: int) -> "PixelCounts":
        return cls([0] * num_scales, [0] * num_scales)

    def processed_share(self) -> float:
        """Pixels processed over the full pyramid's, all scales (AutoFocus's figure; 0 before any image)."""
        total = sum(self.full_pyramid)
        return sum(self.processed) / total if total else 0.0


def check_autofocus_settings(
    num_scales: int, prune: Sequence, thresholds: Sequence, dilations: Sequence, min_chip_sizes: Sequence
) -> Tuple[Tuple[bool, ...], Tuple[float, ...], Tuple[int, ...], Tuple[int, ...]]:
    """The ``SNIPER.TEST.AUTOFOCUS`` lists as tuples, one entry per test scale (finest first),
    checked: raises ValueError naming the key of a wrong length or value."""
    lists = {"PRUNE": prune, "THRESHOLDS": thresholds, "DILATIONS": dilations, "MIN_CHIP_SIZES": min_chip_sizes}
    for key, values in lists.items():
        if len(values) != num_scales:
            raise ValueError(
                f"SNIPER.TEST.AUTOFOCUS.{key} has {len(values)} values but SNIPER.TEST.SCALES has {num_scales} "
                "scales: give one per test scale, finest first."
            )
    valid = {
        "PRUNE": (lambda v: isinstance(v, (bool, np.bool_)), "True or False"),
        "THRESHOLDS": (lambda v: isinstance(v, Real) and not isinstance(v, bool) and 0 <= v <= 1,
                       "a probability in [0, 1]"),
        "DILATIONS": (lambda v: isinstance(v, Integral) and not isinstance(v, bool) and v >= 1,
                      "an integer >= 1 (cells)"),
        "MIN_CHIP_SIZES": (lambda v: isinstance(v, Integral) and not isinstance(v, bool) and v >= 1,
                           "an integer >= 1 (cells)"),
    }
    for key, (ok, what) in valid.items():
        for value in lists[key]:
            if not ok(value):
                raise ValueError(f"SNIPER.TEST.AUTOFOCUS.{key}: each value must be {what}, got {value!r}.")
    if prune[-1]:
        raise ValueError(
            "SNIPER.TEST.AUTOFOCUS.PRUNE: the coarsest test scale (the last) runs on the whole image and has "
            "no coarser FocusPixel map to prune by; set its entry to False."
        )
    return (tuple(bool(v) for v in prune), tuple(float(v) for v in thresholds), tuple(int(v) for v in dilations),
            tuple(int(v) for v in min_chip_sizes))


def check_autofocus_model(model) -> int:
    """``model.focus_stride`` (px of the model's input per FocusPixel cell) of a model that follows
    the AutoFocus contract (``inference_with_focus`` and ``focus_stride``); raises ValueError if not."""
    stride = getattr(model, "focus_stride", None)
    if not callable(getattr(model, "inference_with_focus", None)) or stride is None:
        raise ValueError(
            "SNIPER.TEST.AUTOFOCUS.ENABLED needs a model that predicts FocusPixels (inference_with_focus and "
            f"focus_stride), e.g. MODEL.META_ARCHITECTURE 'SniperAutoFocusRCNN'; got {type(model).__name__}. "
            "Train one, or set SNIPER.TEST.AUTOFOCUS.ENABLED to False."
        )
    if isinstance(stride, bool) or not isinstance(stride, Integral) or stride < 1:
        raise ValueError(f"{type(model).__name__}.focus_stride must be a positive integer (px), got {stride!r}.")
    return int(stride)


class FocusMap:
    """The FocusPixel map of one image at one test scale, over the whole image.

    ``cells``: float ``(ceil(h / stride), ceil(w / stride))`` for the image resized whole to the
    scale (``w x h`` = ``scaled_size``), cell (r, c) covering its px rows ``[r*stride,
    (r+1)*stride)``, cols ``[c*stride, (c+1)*stride)``. NaN where the scale did not run (no
    prediction: never a FocusPixel); where runs overlap, the highest probability.
    """

    def __init__(self, width: int, height: int, factor: float, stride: int):
        """``width`` x ``height`` original px, ``factor`` scaled px per original px, ``stride`` scaled px per cell."""
        self.factor, self.stride = float(factor), int(stride)
        self.scaled_width, self.scaled_height = scaled_size(width, height, factor)
        self.cells = np.full((math.ceil(self.scaled_height / stride), math.ceil(self.scaled_width / stride)), np.nan)

    def ground_truth(self, boxes: np.ndarray, crowd: np.ndarray, label_sizes: Tuple[float, float, float]) -> "FocusMap":
        """The map a perfect FocusPixel branch would have given where this one has predictions:
        probability 1 in the cells that training labels positive for these ground-truth boxes at
        this scale (:func:`~sniper_d2.modeling.focus_pixels.focus_pixel_labels` on the whole
        scaled image), 0 in the others, NaN where this map is NaN (the scale did not run there).

        Args:
            boxes: ``(N, 4)`` XYXY, original px.
            crowd: ``(N,)`` bool, True for crowd boxes (never positive).
            label_sizes: ``(dc_low, small_thresh, dc_high)``, sqrt(area) in scaled px
                (``SNIPER.AUTOFOCUS.DC_LOW / SMALL_THRESH / DC_HIGH``).
        """
        labels = focus_pixel_labels(
            torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * self.factor),
            torch.as_tensor(np.asarray(crowd, dtype=bool).reshape(-1)),
            (self.scaled_height, self.scaled_width),
            self.cells.shape,
            self.stride,
            *label_sizes,
        ).numpy()
        truth = copy.copy(self)
        truth.cells = np.where(np.isnan(self.cells), np.nan, (labels == FOCUS_POSITIVE).astype(np.float64))
        return truth

    def paste(self, region: Tile, region_cells: np.ndarray, region_scaled_size: Tuple[int, int]) -> None:
        """Add the map of one detector run on ``region`` (original px) resized to
        ``region_scaled_size`` = ``(height, width)`` px: each of its cells lands on the cell of
        this map that holds its centre (clamped into the region)."""
        scaled_height, scaled_width = region_scaled_size
        expected = (math.ceil(scaled_height / self.stride), math.ceil(scaled_width / self.stride))
        if tuple(region_cells.shape) != expected:
            raise ValueError(
                f"FocusPixel map of shape {tuple(region_cells.shape)} for a {scaled_height}x{scaled_width} px input: "
                f"inference_with_focus must give (ceil(h / focus_stride), ceil(w / focus_stride)) = {expected} "
                f"cells with focus_stride {self.stride}."
            )

        def targets(count, scaled_length, start, length, limit):
            centre = np.minimum((np.arange(count) + 0.5) * self.stride, scaled_length - 0.5)  # region's scaled px
            original = start + centre * (length / scaled_length)
            return np.clip(np.floor(original * self.factor / self.stride), 0, limit - 1).astype(np.int64)

        rows = targets(expected[0], scaled_height, region.y0, region.height, self.cells.shape[0])
        cols = targets(expected[1], scaled_width, region.x0, region.width, self.cells.shape[1])
        np.fmax.at(self.cells, (rows[:, None], cols[None, :]), region_cells.astype(np.float64))

    def chips(self, threshold: float, dilation: int, min_size: int, image_size) -> np.ndarray:
        """The FocusChips of this map (:func:`~sniper_d2.chips.focus_chips.focus_chips`; threshold
        a probability, dilation and least size in cells) as int64 ``(K, 4)`` ``(x0, y0, x1, y1)``
        original px of an image of ``image_size`` = ``(height, width)``."""
        cells = focus_chips(self.cells, threshold, dilation, min_size)
        return focus_chips_to_original(cells, self.stride, self.factor, image_size)
