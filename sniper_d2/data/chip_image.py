"""Reading the pixels of one chip from an image file.

The image is decoded once, by OpenCV; for JPEGs whose chip is coarser than the stored image, the
decoder itself downsamples by 2, 4 or 8 (DCT scaling), which is much cheaper than a full decode.
Only the chip's source window is then resized (never the whole image), with ``cv2.resize`` at
exactly the chip scale (bilinear, or area averaging when shrinking more than 2x).

Pixel grid: chip pixel ``u`` samples original point ``(u + 0.5 + x0 + r) / scale`` where ``x0`` is
the planned (integer) chip origin and ``r`` in [-0.5, 0.5] a residual that keeps the resize on
whole source pixels. :func:`read_chip_image` returns ``r`` so that boxes are moved into the chip
with the same offset (``x * scale - (x0 + r)``) and stay aligned with the pixels exactly.
"""
import math
from typing import Tuple

import cv2
import numpy as np
from detectron2.data.detection_utils import convert_PIL_to_numpy
from PIL import Image, ImageOps

__all__ = ["ImageSizeMismatchError", "read_chip_image"]

_EXIF_ORIENTATION = 274
_REDUCED_JPEG_READ = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


class ImageSizeMismatchError(ValueError):
    """The image file's size differs from the one in the annotations."""


def _is_jpeg(file_name: str, ref: str) -> bool:
    try:
        with open(file_name, "rb") as f:
            return f.read(3) == b"\xff\xd8\xff"
    except OSError as e:
        raise OSError(f"Cannot read {ref}: {e}. Fix the path or remove the image from the dataset.") from e


def _stored_size(file_name: str):
    """(upright width, upright height) from the file header (used only to word size errors)."""
    try:
        with Image.open(file_name) as im:
            width, height = im.size
            rotated = im.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
    except OSError:
        return None
    return (height, width) if rotated else (width, height)


def _decode(file_name: str, scale: float, image_format: str, ref: str, is_jpeg: bool):
    """The upright image in ``image_format`` (HxWxC uint8) and the decode reduction k in {1, 2, 4, 8}."""
    k = 1
    if is_jpeg:
        while k < 8 and scale * k * 2 <= 1.0:
            k *= 2
    if image_format in ("BGR", "RGB"):
        image = cv2.imread(file_name, _REDUCED_JPEG_READ.get(k, cv2.IMREAD_COLOR))  # applies EXIF orientation
        if image is not None and image_format == "RGB":
            image = image[:, :, ::-1]
    else:  # other Detectron2 formats ("L", "YUV-BT.601", ...): PIL, full resolution
        k = 1
        try:
            with Image.open(file_name) as im:
                image = convert_PIL_to_numpy(ImageOps.exif_transpose(im), image_format)
        except OSError:
            image = None
    if image is None:
        raise OSError(f"Cannot decode {ref}: the file is corrupt or not an image. Fix or remove it.")
    if image.ndim == 2:
        image = image[:, :, None]
    return image, k


def _chip_window(image, s, origin, size):
    """Resize the decoded-image window under the chip by exactly ``s``; returns (chip, residual)."""
    x0, y0 = origin
    w, h = size
    img_h, img_w = image.shape[:2]
    # decoded-px window [a, b) covering the chip, one px of margin for interpolation
    ax, ay = max(0, math.floor(x0 / s) - 1), max(0, math.floor(y0 / s) - 1)
    bx, by = min(img_w, math.ceil((x0 + w) / s) + 1), min(img_h, math.ceil((y0 + h) / s) + 1)
    window = image[ay:by, ax:bx]
    # area averaging only where bilinear would alias (shrinking more than 2x)
    resized = cv2.resize(window, (0, 0), fx=s, fy=s, interpolation=cv2.INTER_LINEAR if s >= 0.5 else cv2.INTER_AREA)
    if resized.ndim == 2:
        resized = resized[:, :, None]
    # resized pixel d samples s * (decoded x) = d + 0.5 + s * a; the chip wants u + 0.5 + x0
    shift_x, shift_y = round(x0 - s * ax), round(y0 - s * ay)
    residual = (shift_x + s * ax - x0, shift_y + s * ay - y0)
    chip = resized[shift_y:shift_y + h, shift_x:shift_x + w]
    if chip.shape[0] < h or chip.shape[1] < w:  # window clipped at the image border (< 1 px short)
        chip = cv2.copyMakeBorder(chip, 0, h - chip.shape[0], 0, w - chip.shape[1], cv2.BORDER_REPLICATE)
        if chip.ndim == 2:
            chip = chip[:, :, None]
    return chip, residual


def read_chip_image(
    file_name: str,
    expected_wh: Tuple[int, int],
    scale: float,
    origin: Tuple[int, int],
    size: Tuple[int, int],
    image_format: str = "BGR",
    ref: str = "",
):
    """The chip's pixels and their sub-pixel offset.

    Args:
        expected_wh: (width, height) of the image per the annotations, original px.
        scale: chip px per original px.
        origin: (x0, y0) of the chip in the scaled image, chip px.
        size: (width, height) of the chip, chip px.
        ref: how error messages name the image (dataset, id, file).

    Returns:
        (HxWxC uint8 array with (H, W) = size[::-1], (rx, ry) residual offsets in chip px; see the
        module docstring).
    """
    ref = ref or file_name
    image, k = _decode(file_name, scale, image_format, ref, _is_jpeg(file_name, ref))
    width, height = expected_wh
    # a decoder reducing by k returns ceil(size / k) px
    if image.shape[:2] != (-(-height // k), -(-width // k)):
        actual = _stored_size(file_name) or (image.shape[1] * k, image.shape[0] * k)
        raise ImageSizeMismatchError(
            f"{ref}: the file is {actual[0]}x{actual[1]} px but the annotation says "
            f"{width}x{height}. Fix the width/height (and boxes) in the annotations."
        )
    return _chip_window(image, scale * k, origin, size)
