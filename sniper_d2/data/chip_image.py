"""Reading the pixels of one chip from an image file.

The image is decoded by OpenCV from the file's bytes, after checking that a JPEG is not cut short
(libjpeg would fill the missing part with grey and only warn). For JPEGs whose chip is coarser
than the stored image, the decoder itself downsamples by 2, 4 or 8 (DCT scaling), which is much
cheaper than a full decode. Only the chip's source window is then resized (never the whole image),
with ``cv2.resize`` at exactly the chip scale (bilinear, or area averaging when shrinking more
than 2x).

A :class:`DecodedImageCache` (one per process: each data-loader worker has its own) keeps decoded
images that the process will read again, so that an image with hundreds of chips per epoch is
decoded once instead of once per chip; cached and uncached reads give identical pixels.

Pixel grid: chip pixel ``u`` samples original point ``(u + 0.5 + x0 + r) / scale`` where ``x0`` is
the planned (integer) chip origin and ``r`` in [-0.5, 0.5] a residual that keeps the resize on
whole source pixels. :func:`read_chip_image` returns ``r`` so that boxes are moved into the chip
with the same offset (``x * scale - (x0 + r)``) and stay aligned with the pixels exactly.
"""
import io
import math
from collections import OrderedDict
from typing import Optional, Tuple

import cv2
import numpy as np
from detectron2.data.detection_utils import convert_PIL_to_numpy
from PIL import Image, ImageOps

from .image_files import ImageSizeMismatchError, image_file_size, jpeg_is_complete

__all__ = ["DecodedImageCache", "ImageSizeMismatchError", "decode_reduction", "read_chip_image"]

_REDUCED_JPEG_READ = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def _is_jpeg(file_name: str, ref: str) -> bool:
    try:
        with open(file_name, "rb") as f:
            return f.read(3) == b"\xff\xd8\xff"
    except OSError as e:
        raise OSError(f"Cannot read {ref}: {e}. Fix the path or remove the image from the dataset.") from e


def _stored_size(file_name: str):
    """(upright width, upright height) from the file header (used only to word size errors)."""
    try:
        return image_file_size(file_name)
    except OSError:
        return None


def decode_reduction(scale: float, is_jpeg: bool) -> int:
    """Factor k in {1, 2, 4, 8} by which a chip of ``scale`` is decoded (JPEG DCT scaling), 1 if not JPEG."""
    k = 1
    if is_jpeg:
        while k < 8 and scale * k * 2 <= 1.0:
            k *= 2
    return k


def _decode(file_name: str, k: int, image_format: str, ref: str):
    """The upright image in ``image_format`` (HxWxC uint8), decoded at 1/k of its size (k > 1: JPEG only)."""
    try:
        with open(file_name, "rb") as f:
            data = f.read()
    except OSError as e:
        raise OSError(f"Cannot read {ref}: {e}. Fix the path or remove the image from the dataset.") from e
    if data[:3] == b"\xff\xd8\xff" and not jpeg_is_complete(data):
        raise OSError(
            f"Cannot decode {ref}: the JPEG file is truncated ({len(data)} bytes, no end-of-image marker after its "
            "image data), it would decode partly grey. Re-create the file or remove the image from the dataset "
            "(SNIPER.TRAIN.SKIP_UNREADABLE_IMAGES True skips such files when training starts)."
        )
    if image_format in ("BGR", "RGB"):
        # applies the EXIF orientation, as cv2.imread does
        image = cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED_JPEG_READ.get(k, cv2.IMREAD_COLOR))
        if image is not None and image_format == "RGB":
            image = image[:, :, ::-1]
    else:  # other Detectron2 formats ("L", "YUV-BT.601", ...): PIL, full resolution
        try:
            with Image.open(io.BytesIO(data)) as im:
                image = convert_PIL_to_numpy(ImageOps.exif_transpose(im), image_format)
        except OSError:
            image = None
    if image is None:
        raise OSError(f"Cannot decode {ref}: the file is corrupt or not an image. Fix or remove it.")
    if image.ndim == 2:
        image = image[:, :, None]
    return image


class DecodedImageCache:
    """Decoded images of one process, bounded by ``budget_mb`` MiB (``SNIPER.TRAIN.DECODE_CACHE_MB``).

    Keys are (file, decode reduction, format). ``reads`` (given by the caller) is how often this
    process expects to read the image in the epoch: the image's chips in the epoch over the
    processes sharing them. An image is kept only if ``reads >= 2``; when the budget is full, the
    entries with the fewest expected reads go first, the least recently used among equals, and
    never for an entry expected to be read fewer times than they are. Each process (rank,
    data-loader worker) has its own cache: pickling (to start a worker) copies the budget, not the
    contents. Cached images are read-only; chips are always new arrays.
    """

    MIN_READS = 2.0

    def __init__(self, budget_mb: float):
        self.budget_bytes = int(float(budget_mb) * 2**20)
        self._entries: "OrderedDict[tuple, list]" = OrderedDict()  # key -> [image, reads]
        self.used_bytes = 0
        self.hits = self.misses = 0

    def __getstate__(self):
        return {"budget_bytes": self.budget_bytes}

    def __setstate__(self, state):
        self.__init__(state["budget_bytes"] / 2**20)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key, reads: float) -> Optional[np.ndarray]:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        entry[1] = reads
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key, image: np.ndarray, reads: float) -> None:
        """Keep ``image`` (made read-only) if it is worth its bytes; see the class docstring."""
        size = image.nbytes
        if reads < self.MIN_READS or size > self.budget_bytes or key in self._entries:
            return
        if self.used_bytes + size > self.budget_bytes:
            # candidates in eviction order: fewest expected reads, then least recently used
            order = sorted(self._entries, key=lambda k: self._entries[k][1])  # stable: LRU first among equals
            freed, victims = 0, []
            for k in order:
                if self.used_bytes - freed + size <= self.budget_bytes or self._entries[k][1] > reads:
                    break
                victims.append(k)
                freed += self._entries[k][0].nbytes
            if self.used_bytes - freed + size > self.budget_bytes:
                return
            for k in victims:
                del self._entries[k]
            self.used_bytes -= freed
        image.flags.writeable = False
        self._entries[key] = [image, reads]
        self.used_bytes += size


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
    cache: Optional[DecodedImageCache] = None,
    reads: float = 0.0,
):
    """The chip's pixels and their sub-pixel offset.

    Args:
        expected_wh: (width, height) of the image per the annotations, original px.
        scale: chip px per original px.
        origin: (x0, y0) of the chip in the scaled image, chip px.
        size: (width, height) of the chip, chip px.
        ref: how error messages name the image (dataset, id, file).
        cache: decoded images of this process to read from and add to (None: decode every time).
        reads: how often this process expects to read the image in the epoch (see the cache).

    Returns:
        (HxWxC uint8 array with (H, W) = size[::-1], (rx, ry) residual offsets in chip px; see the
        module docstring).
    """
    ref = ref or file_name
    k = decode_reduction(scale, image_format in ("BGR", "RGB") and _is_jpeg(file_name, ref))
    key = (file_name, k, image_format)
    image = cache.get(key, reads) if cache is not None else None
    if image is None:
        image = _decode(file_name, k, image_format, ref)
        width, height = expected_wh
        # a decoder reducing by k returns ceil(size / k) px
        if image.shape[:2] != (-(-height // k), -(-width // k)):
            actual = _stored_size(file_name) or (image.shape[1] * k, image.shape[0] * k)
            raise ImageSizeMismatchError(
                f"{ref}: the file is {actual[0]}x{actual[1]} px but the annotation says "
                f"{width}x{height}. Fix the width/height (and boxes) in the annotations."
            )
        if cache is not None:
            cache.put(key, image, reads)
    return _chip_window(image, scale * k, origin, size)
