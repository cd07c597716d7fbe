"""Annotations of a training set in flat numpy arrays, checked once, for chip planning.

Detectron2 dataset dicts (lists of dicts of lists) are converted into a few arrays: per-image
metadata plus all boxes concatenated with per-image offsets (CSR layout). This keeps the memory of
large datasets small and free of per-image Python objects, which matters because every
data-loader worker holds a copy.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
from detectron2.structures import BoxMode

from ..chips import check_boxes
from .image_files import image_file_size, image_ref

__all__ = ["AnnotationTable", "ImageAnnotations", "image_ref"]


@dataclass(frozen=True)
class ImageAnnotations:
    """One image's annotations. Boxes are XYXY in original px, clipped to the image."""

    index: int
    dataset: str
    image_id: object
    file_name: str
    width: int
    height: int
    boxes: np.ndarray  # (N, 4) float64
    classes: np.ndarray  # (N,) int64, contiguous Detectron2 class ids
    crowd: np.ndarray  # (N,) bool
    proposals: Optional[np.ndarray]  # (P, 4) float64 original px, or None when none were given

    @property
    def ref(self) -> str:
        return image_ref(self.dataset, self.image_id, self.file_name)


def _image_size(record: dict, dataset: str) -> Tuple[int, int]:
    """(width, height) from the dict, or read from the file header when the dict lacks them."""
    if "width" in record and "height" in record:
        return int(record["width"]), int(record["height"])
    file_name = record["file_name"]
    try:
        return image_file_size(file_name)
    except OSError as e:
        raise FileNotFoundError(
            f"Cannot read {image_ref(dataset, record.get('image_id'), file_name)}: {e}. "
            "Fix the path in the dataset or remove the image."
        ) from e


def _record_boxes(record: dict, dataset: str, width: int, height: int):
    annos = record.get("annotations", [])
    if not annos:
        return np.zeros((0, 4)), np.zeros((0,), np.int64), np.zeros((0,), bool)
    modes = {int(a["bbox_mode"]) for a in annos}
    if modes <= {BoxMode.XYXY_ABS.value, BoxMode.XYWH_ABS.value} and len(modes) == 1:
        # the common case, one mode per image, in numpy (BoxMode.convert per box is ~50x slower)
        lengths = {len(a["bbox"]) for a in annos}
        if lengths != {4}:
            raise ValueError(
                f"{image_ref(dataset, record.get('image_id'), record['file_name'])}: annotation 'bbox' must have "
                f"4 numbers, got lengths {sorted(lengths)}. Fix the annotations."
            )
        boxes = np.array([a["bbox"] for a in annos], np.float64)
        if BoxMode.XYWH_ABS.value in modes:
            boxes[:, 2:] += boxes[:, :2]
    else:
        boxes = np.empty((len(annos), 4), np.float64)
        for i, a in enumerate(annos):
            boxes[i] = BoxMode.convert(list(a["bbox"]), a["bbox_mode"], BoxMode.XYXY_ABS)
    classes = np.fromiter((a["category_id"] for a in annos), np.int64, len(annos))
    crowd = np.fromiter((a.get("iscrowd", 0) for a in annos), bool, len(annos))
    boxes = check_boxes(boxes, width, height, image_ref(dataset, record.get("image_id"), record["file_name"]))
    return boxes, classes, crowd


class AnnotationTable:
    """All training images of one or more datasets, in flat arrays.

    Args:
        datasets: ``[(dataset_name, list_of_dataset_dicts), ...]`` as from ``DatasetCatalog.get``.
        proposals: optional, one entry per dataset: ``{image_id: (P, 4) XYXY original px}`` or None.

    Image files are not read here (:func:`~sniper_d2.data.image_files.check_training_images`
    checks them before training).
    """

    def __init__(self, datasets: Sequence[Tuple[str, List[dict]]], proposals=None):
        names, ids, files, sizes = [], [], [], []
        box_parts, class_parts, crowd_parts, prop_parts = [], [], [], []
        has_props = []
        for d, (dataset, dicts) in enumerate(datasets):
            props = proposals[d] if proposals is not None else None
            for record in dicts:
                file_name = record["file_name"]
                w, h = _image_size(record, dataset)
                b, c, k = _record_boxes(record, dataset, w, h)
                names.append(d)
                ids.append(record.get("image_id", file_name))
                files.append(file_name)
                sizes.append((w, h))
                box_parts.append(b)
                class_parts.append(c)
                crowd_parts.append(k)
                p = None if props is None else props.get(record.get("image_id"))
                has_props.append(p is not None)
                prop_parts.append(np.zeros((0, 4)) if p is None else np.asarray(p, np.float64).reshape(-1, 4))
        self.dataset_names = [name for name, _ in datasets]
        self._dataset_index = np.asarray(names, np.int32)
        self.image_ids = ids
        self._file_names = np.asarray([f.encode("utf-8") for f in files], dtype=bytes)
        self.sizes = np.asarray(sizes, np.int64).reshape(-1, 2)
        self._box_offsets = np.concatenate([[0], np.cumsum([len(b) for b in box_parts])]).astype(np.int64)
        self._boxes = np.concatenate(box_parts) if box_parts else np.zeros((0, 4))
        self._classes = np.concatenate(class_parts) if class_parts else np.zeros((0,), np.int64)
        self._crowd = np.concatenate(crowd_parts) if crowd_parts else np.zeros((0,), bool)
        self._has_proposals = np.asarray(has_props, bool)
        self._prop_offsets = np.concatenate([[0], np.cumsum([len(p) for p in prop_parts])]).astype(np.int64)
        self._proposals = np.concatenate(prop_parts) if prop_parts else np.zeros((0, 4))

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def num_boxes(self) -> int:
        return len(self._boxes)

    @property
    def images_with_proposals(self) -> int:
        return int(self._has_proposals.sum())

    def all_boxes(self) -> np.ndarray:
        """(N, 4) XYXY original px: the boxes of all images, concatenated."""
        return self._boxes

    def __getitem__(self, i: int) -> ImageAnnotations:
        b0, b1 = self._box_offsets[i], self._box_offsets[i + 1]
        p0, p1 = self._prop_offsets[i], self._prop_offsets[i + 1]
        return ImageAnnotations(
            index=i,
            dataset=self.dataset_names[self._dataset_index[i]],
            image_id=self.image_ids[i],
            file_name=self._file_names[i].decode("utf-8"),
            width=int(self.sizes[i, 0]),
            height=int(self.sizes[i, 1]),
            boxes=self._boxes[b0:b1],
            classes=self._classes[b0:b1],
            crowd=self._crowd[b0:b1],
            proposals=self._proposals[p0:p1] if self._has_proposals[i] else None,
        )
