"""Instance masks of a training chip (``MODEL.MASK_ON``).

:class:`SegmentationTable` keeps every training image's COCO ``segmentation`` fields (polygons
or RLE), checked once and serialised per image, so data-loader workers share flat bytes instead
of per-annotation Python objects. :func:`chip_instance_masks` turns the segmentations of a chip's
kept boxes into Detectron2 ``PolygonMasks`` or ``BitMasks`` in chip px:

* polygons are moved into the chip frame exactly like the boxes (``x * scale - origin``), cut to
  the chip window (:func:`~sniper_d2.data.polygon_clip.clip_polygon`) and passed through the
  chip's augmentation transforms (``Transform.apply_polygons``); with ``INPUT.MASK_FORMAT
  bitmask`` they are rasterised at chip size. No full-image bitmap is made for a polygon.
* RLE masks (``INPUT.MASK_FORMAT bitmask`` only) are decoded, the chip window is cut out and
  resampled to chip px (nearest), then ``Transform.apply_segmentation``.
* crowd boxes need no mask (they are never foreground, see :mod:`sniper_d2.modeling.roi_heads`):
  they get their chip box as mask, so the per-box fields stay aligned.
"""
import pickle
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import pycocotools.mask as mask_util
import torch
from detectron2.data import transforms as T
from detectron2.structures import BitMasks, PolygonMasks, polygons_to_bitmask

from .image_files import image_ref
from .polygon_clip import clip_polygon, polygon_is_degenerate

__all__ = ["MASK_FORMATS", "SegmentationTable", "chip_instance_masks", "check_segmentation"]

MASK_FORMATS = ("polygon", "bitmask")


def _rle_size_error(rle: dict, width: int, height: int, ref: str, k: int) -> Optional[str]:
    size = rle.get("size")
    if not (isinstance(size, (list, tuple)) and len(size) == 2):
        return f"{ref}: annotation #{k} has an RLE segmentation without a [height, width] 'size'. Fix the annotations."
    if (int(size[0]), int(size[1])) != (int(height), int(width)):
        return (
            f"{ref}: annotation #{k} has an RLE segmentation of size {list(size)} ([height, width]) but the image is "
            f"{height}x{width} px: the mask belongs to another image or the image size is wrong. Fix the annotations."
        )
    return None


def check_segmentation(segmentation, ref: str, k: int, width: Optional[int] = None, height: Optional[int] = None):
    """One annotation's COCO ``segmentation``, checked: a list of float64 ``(N, 2)`` polygons, or
    a compressed RLE dict. ``k`` (its position in the image's annotations) and ``ref`` name it in
    errors; ``width``/``height`` (original px), when given, must equal an RLE's size.

    Raises:
        ValueError: a polygon with an odd number of coordinates, non-finite ones, fewer than 3
            points or no area (all points on a line), no polygon at all, an RLE of the wrong
            size, or something that is neither. A self-intersecting polygon is accepted: it is
            filled with the even-odd rule, as COCO's evaluation does.
    """
    if isinstance(segmentation, dict):
        if "counts" not in segmentation:
            raise ValueError(f"{ref}: annotation #{k} has an RLE segmentation without 'counts'. Fix the annotations.")
        if width is not None and height is not None:
            error = _rle_size_error(segmentation, width, height, ref, k)
            if error:
                raise ValueError(error)
        if isinstance(segmentation["counts"], list):  # uncompressed RLE
            h, w = segmentation["size"]
            segmentation = mask_util.frPyObjects(segmentation, int(h), int(w))
        return segmentation
    if not isinstance(segmentation, (list, tuple)) or len(segmentation) == 0:
        raise ValueError(
            f"{ref}: annotation #{k} has segmentation {segmentation!r:.80}; MODEL.MASK_ON needs a list of polygons "
            "[[x1, y1, x2, y2, ...], ...] or an RLE dict on every non-crowd annotation. Fix or remove the annotation."
        )
    polygons = []
    for j, polygon in enumerate(segmentation):
        coords = np.asarray(polygon, dtype=np.float64).ravel()
        if len(coords) % 2 or not np.isfinite(coords).all():
            raise ValueError(
                f"{ref}: annotation #{k}, polygon #{j} has {len(coords)} coordinates"
                f"{'' if np.isfinite(coords).all() else ' (some not finite)'}: polygons are flat lists "
                "x1, y1, x2, y2, ... of finite numbers. Fix the annotation."
            )
        points = coords.reshape(-1, 2)
        if polygon_is_degenerate(points):
            raise ValueError(
                f"{ref}: annotation #{k}, polygon #{j} is degenerate ({len(points)} points"
                f"{', all on one line' if len(points) >= 3 else ''}): it encloses no area. Fix or remove it."
            )
        polygons.append(points)
    return polygons


class SegmentationTable:
    """Per training image, the ``segmentation`` of each annotation, in annotation order (the order
    of the chip dataset's boxes); crowd annotations' are not needed and kept as None.

    Args:
        datasets: ``[(dataset_name, list_of_dataset_dicts), ...]`` as from ``DatasetCatalog.get``.
    """

    def __init__(self, datasets: Sequence[Tuple[str, List[dict]]]):
        index, parts = {}, []
        for dataset, dicts in datasets:
            for record in dicts:
                file_name = record["file_name"]
                image_id = record.get("image_id", file_name)
                ref = image_ref(dataset, record.get("image_id"), file_name)
                width, height = record.get("width"), record.get("height")
                segmentations = []
                for k, anno in enumerate(record.get("annotations", ())):
                    if anno.get("iscrowd", 0):
                        segmentations.append(None)
                        continue
                    if "segmentation" not in anno:
                        raise ValueError(
                            f"{ref}: annotation #{k} has no 'segmentation'; MODEL.MASK_ON needs one on every "
                            "non-crowd annotation (register COCO json with segmentations, or train boxes only; a "
                            "built-in sniper_shapes dataset generated before it had polygons: delete its directory "
                            "under $SNIPER_D2_DATASETS to regenerate it)."
                        )
                    segmentations.append(check_segmentation(anno["segmentation"], ref, k, width, height))
                index[(file_name, image_id)] = len(parts)
                parts.append(pickle.dumps(segmentations, protocol=pickle.HIGHEST_PROTOCOL))
        self._index = index
        self._offsets = np.cumsum([0] + [len(p) for p in parts], dtype=np.int64)
        self._blob = np.frombuffer(b"".join(parts), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._index)

    def get(self, file_name: str, image_id, num_boxes: int, ref: str) -> list:
        """The segmentations of one image (one entry per box of the chip dataset's arrays)."""
        position = self._index.get((file_name, image_id))
        if position is None:
            raise KeyError(f"{ref}: no segmentations recorded for this image (MODEL.MASK_ON); the mask table "
                           "was built from other datasets than the chips. Build both from DATASETS.TRAIN.")
        start, stop = self._offsets[position], self._offsets[position + 1]
        segmentations = pickle.loads(self._blob[start:stop].tobytes())
        if len(segmentations) != num_boxes:
            raise ValueError(f"{ref}: {len(segmentations)} segmentations but {num_boxes} boxes; the dataset changed "
                             "between building the mask table and the chip plan.")
        return segmentations


def _window_bitmask(rle: dict, scale: float, origin, size) -> np.ndarray:
    """An RLE mask (original px) resampled to the chip window: ``(h, w)`` uint8, chip px."""
    full = mask_util.decode(rle)
    x0, y0 = origin
    w, h = size
    height, width = full.shape
    # the original px that the window covers, one px margin for the nearest-neighbour lookup
    xa = max(0, int(np.floor(x0 / scale)) - 1)
    ya = max(0, int(np.floor(y0 / scale)) - 1)
    xb = min(width, int(np.ceil((x0 + w) / scale)) + 1)
    yb = min(height, int(np.ceil((y0 + h) / scale)) + 1)
    part = np.ascontiguousarray(full[ya:yb, xa:xb])
    del full
    # pixel centres: chip px j + 0.5 <-> original px (j + 0.5 + x0) / scale
    affine = np.array([[scale, 0.0, scale * (xa + 0.5) - 0.5 - x0], [0.0, scale, scale * (ya + 0.5) - 0.5 - y0]])
    return cv2.warpAffine(part, affine, (int(w), int(h)), flags=cv2.INTER_NEAREST, borderValue=0)


def chip_instance_masks(
    segmentations: list,
    keep: np.ndarray,
    crowd: np.ndarray,
    chip_boxes: np.ndarray,
    scale: float,
    origin,
    size,
    transforms: T.TransformList,
    image_size: Tuple[int, int],
    mask_format: str,
    ref: str,
    original_size: Tuple[int, int],
):
    """Masks of a chip's kept boxes, in chip px after the chip's augmentations.

    Args:
        segmentations: the image's, from :meth:`SegmentationTable.get` (one per box).
        keep: indices of the boxes kept in the chip; crowd: their crowd flags.
        chip_boxes: ``(K, 4)`` the kept boxes in chip px XYXY, before augmentation.
        scale, origin, size: the chip's factor, its window's top-left (chip px, may be
            fractional) and its (width, height) in chip px, as the boxes were mapped.
        transforms: the chip augmentations' transforms (applied after the cut and scale).
        image_size: (height, width) of the augmented chip, chip px.
        mask_format: ``"polygon"`` (``PolygonMasks``) or ``"bitmask"`` (``BitMasks``).
        ref: how errors name the image; original_size: its (width, height), original px.

    Returns:
        ``PolygonMasks`` or ``BitMasks`` with one mask per kept box, in the order of ``keep``.
    """
    if mask_format not in MASK_FORMATS:
        raise ValueError(f"INPUT.MASK_FORMAT is {mask_format!r}; use one of {MASK_FORMATS}.")
    x0, y0 = origin
    w, h = size
    shift = np.array([x0, y0], dtype=np.float64)
    masks = []
    for position, box_index in enumerate(keep):
        segmentation = segmentations[box_index]
        if crowd[position] or segmentation is None:
            a, b, c, d = chip_boxes[position]
            segmentation = [np.array([[a, b], [c, b], [c, d], [a, d]]) / scale + shift / scale]
        if isinstance(segmentation, dict):
            if mask_format != "bitmask":
                raise ValueError(
                    f"{ref}: annotation #{box_index} has an RLE segmentation; RLE masks need INPUT.MASK_FORMAT "
                    "'bitmask' (polygons work with either)."
                )
            error = _rle_size_error(segmentation, original_size[0], original_size[1], ref, int(box_index))
            if error:
                raise ValueError(error)
            masks.append(transforms.apply_segmentation(_window_bitmask(segmentation, scale, origin, size)))
            continue
        polygons = []
        for points in segmentation:
            clipped = clip_polygon(points * scale - shift, w, h)
            if len(clipped) >= 3 and not polygon_is_degenerate(clipped):
                polygons.append(clipped)
        polygons = [p.ravel() for p in transforms.apply_polygons(polygons)] if polygons else []
        if mask_format == "bitmask":
            masks.append(polygons_to_bitmask(polygons, *image_size) if polygons else np.zeros(image_size, bool))
        else:
            masks.append(polygons)
    if mask_format == "polygon":
        return PolygonMasks(masks)
    if not masks:
        return BitMasks(torch.zeros((0, *image_size), dtype=torch.bool))
    return BitMasks(torch.from_numpy(np.stack([np.asarray(m, dtype=bool) for m in masks])))
