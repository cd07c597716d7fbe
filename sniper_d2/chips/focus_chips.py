"""FocusChips: where AutoFocus runs a finer test scale (AutoFocus, Najibi et al., ICCV 2019).

A coarse test scale predicts a FocusPixel map: per cell of its feature grid (``stride`` px of the
coarse scaled image a side), the probability that a small object lies there. The finer scale then
runs only on FocusChips around the FocusPixels:

1. cells with probability >= ``threshold`` are FocusPixels;
2. they are dilated with a ``dilation`` x ``dilation`` square, so nearby FocusPixels join;
3. each connected region (8-connected) gives its bounding rectangle;
4. each rectangle is widened around its centre to at least ``min_size`` cells a side (the map's
   side where the map is smaller) and shifted to stay inside the map;
5. the widened rectangles are painted on an empty map and 3.-4. repeat until the number of
   rectangles stops changing, so chips that touch or overlap merge into their bounding rectangle.

Chips are in cells of the map (:func:`focus_chips`); :func:`focus_chips_to_original` maps them to
original-image px. Pure numpy and OpenCV.
"""
from numbers import Integral, Real

import cv2
import numpy as np

__all__ = ["focus_chips", "focus_chips_to_original"]


def _check(name: str, value, valid: bool, what: str) -> None:
    if isinstance(value, bool) or not valid:
        raise ValueError(f"FocusChips: {name} must be {what}, got {value!r}.")


def _region_rects(binary: np.ndarray) -> np.ndarray:
    """(K, 4) int64 ``(x0, y0, x1, y1)`` cells, end exclusive: bounding rectangles of the
    8-connected regions of a uint8 0/1 map, in OpenCV's label order (raster order of first cell)."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    x, y, w, h = (stats[1:count, k].astype(np.int64) for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP,
                                                               cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    return np.stack([x, y, x + w, y + h], axis=1).reshape(-1, 4)


def _widen(start: np.ndarray, end: np.ndarray, least: int, length: int):
    """Spans ``[start, end)`` widened around their centre to at least ``least`` cells (``length``
    where that is less) and shifted to lie within ``[0, length)``."""
    side = min(least, length)
    grow = np.maximum(side - (end - start), 0)
    start = start - grow // 2
    end = end + (grow - grow // 2)
    shift = np.maximum(-start, 0) - np.maximum(end - length, 0)
    return start + shift, end + shift


def focus_chips(prob_map: np.ndarray, threshold: float, dilation: int, min_size: int) -> np.ndarray:
    """FocusChips of one FocusPixel map, in cells of the map.

    Args:
        prob_map: ``(rows, cols)`` FocusPixel probabilities in [0, 1]; NaN marks cells with no
            prediction (never FocusPixels).
        threshold: a cell is a FocusPixel iff its probability is >= this.
        dilation: side of the square dilation kernel, cells (1: no dilation).
        min_size: least chip side, cells (capped at the map's side).

    Returns:
        int64 ``(K, 4)`` chips ``(x0, y0, x1, y1)``, cells of the map (x = column, y = row), end
        exclusive, inside the map, pairwise neither touching nor overlapping; ``(0, 4)`` when the
        map has no FocusPixel.
    """
    prob_map = np.asarray(prob_map, dtype=np.float64)
    if prob_map.ndim != 2:
        raise ValueError(f"FocusChips: the FocusPixel map must be 2-D (rows, cols), got shape {prob_map.shape}.")
    _check("threshold", threshold, isinstance(threshold, Real) and 0 <= threshold <= 1,
           "a probability in [0, 1]")
    _check("dilation", dilation, isinstance(dilation, Integral) and dilation >= 1, "an integer >= 1 (cells)")
    _check("min_size", min_size, isinstance(min_size, Integral) and min_size >= 1, "an integer >= 1 (cells)")
    rows, cols = prob_map.shape
    binary = (np.nan_to_num(prob_map, nan=-1.0) >= threshold).astype(np.uint8)
    if not binary.any():
        return np.zeros((0, 4), dtype=np.int64)
    if dilation > 1:
        binary = cv2.dilate(binary, np.ones((dilation, dilation), np.uint8))
    rects = _region_rects(binary)
    while True:
        x0, x1 = _widen(rects[:, 0], rects[:, 2], min_size, cols)
        y0, y1 = _widen(rects[:, 1], rects[:, 3], min_size, rows)
        painted = np.zeros_like(binary)
        for a, b, c, d in zip(x0.tolist(), y0.tolist(), x1.tolist(), y1.tolist()):
            painted[b:d, a:c] = 1
        merged = _region_rects(painted)
        # K rectangles give at most K regions; as many means none touches another, and each
        # region's bounding rectangle is its widened rectangle
        if len(merged) == len(rects):
            return merged
        rects = merged


def focus_chips_to_original(chips: np.ndarray, stride: float, factor: float, image_size) -> np.ndarray:
    """FocusChips from cells of a coarse scale's map to original-image px.

    Args:
        chips: ``(K, 4)`` ``(x0, y0, x1, y1)`` cells, end exclusive (:func:`focus_chips`).
        stride: px of the coarse scaled image per cell side.
        factor: the coarse scale's factor, scaled px per original px.
        image_size: ``(height, width)`` of the image, original px.

    Returns:
        int64 ``(K, 4)`` ``(x0, y0, x1, y1)`` original px, end exclusive: each chip's cells
        (``cells x stride / factor``) widened to whole px, clipped to the image, at least 1 px a side.
    """
    if not (stride > 0 and factor > 0):
        raise ValueError(f"FocusChips: stride and factor must be > 0, got stride {stride!r}, factor {factor!r}.")
    height, width = (int(v) for v in image_size)
    chips = np.asarray(chips, dtype=np.float64).reshape(-1, 4) * (stride / factor)
    x0 = np.clip(np.floor(chips[:, 0] + 1e-6), 0, width - 1)
    y0 = np.clip(np.floor(chips[:, 1] + 1e-6), 0, height - 1)
    x1 = np.clip(np.ceil(chips[:, 2] - 1e-6), x0 + 1, width)
    y1 = np.clip(np.ceil(chips[:, 3] - 1e-6), y0 + 1, height)
    return np.stack([x0, y0, x1, y1], axis=1).astype(np.int64)
