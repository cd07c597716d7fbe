"""Reading the pixels of one chip from an image file.

The image is decoded once; only the chip's source window is resampled to the chip scale (the
whole image is never resized up). For JPEGs whose chip is coarser than the stored image, the
decoder itself downsamples by 2, 4 or 8 (PIL's draft mode), which is much cheaper than decoding
at full size. The sampling grid follows the continuous-coordinate convention of box transforms:
original point ``x`` lands at chip point ``x * scale - x0``.
"""
import math
from typing import Tuple

import cv2
import numpy as np
from detectron2.data.detection_utils import convert_PIL_to_numpy
from PIL import Image, ImageOps

__all__ = ["ImageSizeMismatchError", "read_chip_image"]

_EXIF_ORIENTATION = 274


class ImageSizeMismatchError(ValueError):
    """The image file's size differs from the one in the annotations."""


def _decode(file_name: str, expected_wh: Tuple[int, int], scale: float, image_format: str, ref: str):
    """Decode ``file_name`` (upright, in ``image_format``); returns (array, decode factor k).

    The array is the image downsampled by the integer factor ``k`` (1 unless the decoder could
    downsample for free because ``scale`` <= 1/2).
    """
    try:
        im = Image.open(file_name)
    except OSError as e:
        raise OSError(f"Cannot read {ref}: {e}. Fix or remove the file.") from e
    with im:
        width, height = im.size
        if im.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
            width, height = height, width
        if (width, height) != tuple(expected_wh):
            raise ImageSizeMismatchError(
                f"{ref}: the file is {width}x{height} px but the annotation says "
                f"{expected_wh[0]}x{expected_wh[1]}. Fix the width/height (and boxes) in the annotations."
            )
        stored_width = im.size[0]
        if im.format == "JPEG" and scale <= 0.5:
            # largest power-of-two reduction that keeps at least `scale` of the resolution
            im.draft(im.mode, (math.ceil(im.size[0] * scale), math.ceil(im.size[1] * scale)))
        factor = max(1, round(stored_width / im.size[0]))
        try:
            array = convert_PIL_to_numpy(ImageOps.exif_transpose(im), image_format)
        except OSError as e:
            raise OSError(f"Cannot decode {ref}: {e}. Fix or remove the file.") from e
    return array, factor


def read_chip_image(
    file_name: str,
    expected_wh: Tuple[int, int],
    scale: float,
    origin: Tuple[int, int],
    size: Tuple[int, int],
    image_format: str = "BGR",
    ref: str = "",
) -> np.ndarray:
    """The chip's pixels, HxWxC uint8 (``size`` = (W, H) chip px).

    Args:
        expected_wh: (width, height) of the image per the annotations, original px.
        scale: chip px per original px.
        origin: (x0, y0) of the chip in the scaled image, chip px.
        ref: how error messages name the image (dataset, id, file).
    """
    ref = ref or file_name
    image, k = _decode(file_name, expected_wh, scale, image_format, ref)
    if image.ndim == 2:
        image = image[:, :, None]
    s = scale * k  # chip px per decoded px
    x0, y0 = origin
    w, h = size
    # Integer-factor box averaging first when shrinking more than 2x (bilinear would alias).
    reduce = max(1, int(1.0 / s)) if s < 0.5 else 1
    # decoded-px window the chip samples from (1 px margin for interpolation)
    wx0 = max(0, int(math.floor(x0 / s)) - reduce)
    wy0 = max(0, int(math.floor(y0 / s)) - reduce)
    wx1 = min(image.shape[1], int(math.ceil((x0 + w) / s)) + reduce)
    wy1 = min(image.shape[0], int(math.ceil((y0 + h) / s)) + reduce)
    window = image[wy0:wy1, wx0:wx1]
    if reduce > 1:
        rw, rh = max(1, window.shape[1] // reduce), max(1, window.shape[0] // reduce)
        window = cv2.resize(window[: rh * reduce, : rw * reduce], (rw, rh), interpolation=cv2.INTER_AREA)
        s *= reduce
    if window.ndim == 2:
        window = window[:, :, None]
    # window pixel centre (i + 0.5) * reduce + wx0 (decoded px) -> chip px centre (u + 0.5)
    matrix = np.array(
        [[s, 0.0, 0.5 * s - 0.5 + (wx0 / reduce) * s - x0], [0.0, s, 0.5 * s - 0.5 + (wy0 / reduce) * s - y0]]
    )
    chip = cv2.warpAffine(window, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if chip.ndim == 2:
        chip = chip[:, :, None]
    return chip
