"""Pixels a detector processes per image without SNIPER: single-scale and whole-pyramid training.

Both are per image in px of the resized image(s), to compare with the chip pixels of an epoch.
"""
import numpy as np
from detectron2.data.transforms import ResizeShortestEdge

from ..chips import ChipGenerator

__all__ = ["pyramid_pixels", "single_scale_pixels"]


def _per_unique_size(sizes: np.ndarray, pixels_of) -> np.ndarray:
    """``pixels_of(width, height)`` for each row of ``sizes`` (I, 2), computed once per distinct size."""
    if len(sizes) == 0:
        return np.zeros((0,), np.int64)
    unique, inverse = np.unique(sizes, axis=0, return_inverse=True)
    values = np.array([pixels_of(int(w), int(h)) for w, h in unique], np.int64)
    return values[inverse.reshape(-1)]


def single_scale_pixels(sizes: np.ndarray, min_size: int, max_size: int) -> np.ndarray:
    """(I,) px per image after Detectron2's shortest-edge resize (``INPUT.MIN_SIZE_TEST`` /
    ``MAX_SIZE_TEST``; ``min_size`` 0 = no resize); ``sizes`` (I, 2) = (width, height) original px."""
    if min_size == 0:
        return _per_unique_size(sizes, lambda w, h: w * h)

    def pixels(w, h):
        new_h, new_w = ResizeShortestEdge.get_output_shape(h, w, min_size, max_size)
        return new_h * new_w

    return _per_unique_size(sizes, pixels)


def pyramid_pixels(sizes: np.ndarray, generator: ChipGenerator) -> np.ndarray:
    """(I,) px per image of the whole image at every training scale of ``generator``."""

    def pixels(w, h):
        return sum(sw * sh for _, (sw, sh) in generator.image_scales(w, h))

    return _per_unique_size(sizes, pixels)
