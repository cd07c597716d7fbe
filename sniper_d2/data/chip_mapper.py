"""``SniperChipMapper``: one planned chip -> the model's training input.

Input: a dict from :class:`~sniper_d2.data.chip_dataset.ChipDataset` (the image's dataset fields
plus ``sniper_chip`` and the image's boxes as arrays). Output, in Detectron2's format:
``image`` (CxHxW uint8 tensor of the chip, not padded: batching pads to the largest chip) and
``instances``, a :class:`~sniper_d2.chip_instances.ChipInstances` holding every ground-truth box
of the image that, shifted, scaled and clipped to the chip, is at least ``min_box_size`` chip px
wide and high, with its class, its ``gt_valid`` flag (SNIPER_SPEC section 4) and ``gt_crowd``;
and ``sniper_small_boxes``, float32 ``(M, 4)`` XYXY chip px: the non-crowd boxes that overlap the
chip but are narrower or shorter than ``min_box_size`` there (not ground truth of the detector,
but objects all the same: AutoFocus labels FocusPixels by them too). With
``ignore_invalid=False`` (``SNIPER.TRAIN.IGNORE_INVALID``, an ablation) every non-crowd box is
valid and the chip's valid range is unbounded.

Decoded images are cached per process (``SNIPER.TRAIN.DECODE_CACHE_MB``, see
:class:`~sniper_d2.data.chip_image.DecodedImageCache`): an image with many chips in the epoch is
decoded once per data-loader worker instead of once per chip.
"""
from typing import List, Optional

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import DatasetCatalog
from detectron2.data import transforms as T
from detectron2.structures import Boxes
from detectron2.utils import comm
from torch.utils.data import get_worker_info

from ..chip_instances import ChipInstances
from ..chips import ValidRange, parse_scale, parse_valid_ranges
from .chip_augmentations import build_chip_augmentations
from .chip_image import DecodedImageCache, read_chip_image
from .chip_masks import MASK_FORMATS, SegmentationTable, chip_instance_masks

__all__ = ["SniperChipMapper", "chip_ground_truth"]


def chip_ground_truth(boxes: np.ndarray, scale: float, origin, size, min_box_size: float):
    """Image ``boxes`` (original px XYXY) in one chip, clipped once for both uses.

    A box is moved into the chip frame (``x * scale - x0``; ``origin`` may be fractional), clipped
    to the chip, and kept if the clipped box is at least ``min_box_size`` chip px wide and high;
    it is *small* if it overlaps the chip (clipped width and height positive) but is not kept.

    Returns:
        ``keep`` (K,) int64 indices into ``boxes``, their clipped boxes (K, 4) float64 chip px,
        and ``(small, small_boxes)``: the small boxes' indices (M,) int64 and clipped boxes.
    """
    x0, y0 = origin
    w, h = size
    clipped = boxes * scale - np.array([x0, y0, x0, y0], dtype=np.float64)
    np.clip(clipped[:, 0::2], 0, w, out=clipped[:, 0::2])
    np.clip(clipped[:, 1::2], 0, h, out=clipped[:, 1::2])
    widths, heights = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    large_enough = (widths >= min_box_size) & (heights >= min_box_size)
    keep = np.flatnonzero(large_enough)
    small = np.flatnonzero(~large_enough & (widths > 0) & (heights > 0))
    return keep, clipped[keep], (small, clipped[small])


def _training_segmentations(cfg) -> SegmentationTable:
    """The masks of ``cfg.DATASETS.TRAIN`` (read from the ``DatasetCatalog`` a second time: the chip
    plan keeps boxes only)."""
    return SegmentationTable([(name, DatasetCatalog.get(name)) for name in cfg.DATASETS.TRAIN])


class SniperChipMapper:
    """Reads one chip's pixels and ground truth (Detectron2 mapper protocol)."""

    @configurable
    def __init__(
        self,
        *,
        valid_ranges: List[ValidRange],
        image_format: str = "BGR",
        augmentations: List[T.Augmentation] = (),
        min_box_size: float = 10.0,
        ignore_invalid: bool = True,
        range_reference=None,
        decode_cache_mb: float = 0.0,
        segmentations: Optional[SegmentationTable] = None,
        mask_format: str = "polygon",
    ):
        """
        Args:
            valid_ranges: one per training scale, sqrt(area) in original px.
            image_format: as ``cfg.INPUT.FORMAT``.
            augmentations: applied to the chip (after cut and scale) and its boxes.
            min_box_size: chip px; smaller clipped boxes are not part of the chip's ground truth.
            ignore_invalid: False: every non-crowd box is valid and the chip's range unbounded.
            range_reference: frame of ``valid_ranges`` (``SNIPER.RANGE_REFERENCE``): None =
                original px, else a scale whose resized image's px the ranges are in.
            decode_cache_mb: MiB of decoded images each process (each data-loader worker) may
                keep; 0: decode every chip's image anew.
            segmentations: the training images' masks (``MODEL.MASK_ON``); None: boxes only.
            mask_format: ``INPUT.MASK_FORMAT``, ``"polygon"`` or ``"bitmask"`` (``gt_masks`` type).
        """
        self.valid_ranges = list(valid_ranges)
        self.image_format = image_format
        self.augmentations = T.AugmentationList(list(augmentations))
        self.min_box_size = float(min_box_size)
        self.ignore_invalid = bool(ignore_invalid)
        self.range_reference = parse_scale(range_reference) if range_reference else None
        self.decode_cache = DecodedImageCache(decode_cache_mb) if decode_cache_mb > 0 else None
        if mask_format not in MASK_FORMATS:
            raise ValueError(f"INPUT.MASK_FORMAT is {mask_format!r}; use one of {MASK_FORMATS}.")
        self.segmentations = segmentations
        self.mask_format = mask_format

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        return {
            "valid_ranges": parse_valid_ranges(
                cfg.SNIPER.TRAIN.VALID_RANGES, len(cfg.SNIPER.TRAIN.SCALES), "SNIPER.TRAIN.VALID_RANGES"
            ),
            "image_format": cfg.INPUT.FORMAT,
            "augmentations": build_chip_augmentations(cfg, is_train),
            "min_box_size": cfg.SNIPER.TRAIN.MIN_BOX_SIZE,
            "ignore_invalid": cfg.SNIPER.TRAIN.IGNORE_INVALID,
            "range_reference": cfg.SNIPER.RANGE_REFERENCE,
            "decode_cache_mb": cfg.SNIPER.TRAIN.DECODE_CACHE_MB,
            "segmentations": _training_segmentations(cfg) if cfg.MODEL.MASK_ON and is_train else None,
            "mask_format": cfg.INPUT.MASK_FORMAT,
        }

    @staticmethod
    def _expected_reads(dataset_dict: dict) -> float:
        """How often this process reads the chip's image in the epoch: its chips over all readers
        (ranks x data-loader workers, which split the chip sequence evenly)."""
        worker = get_worker_info()
        readers = comm.get_world_size() * (worker.num_workers if worker is not None else 1)
        return dataset_dict.get("sniper_image_chips", 0) / readers

    def __call__(self, dataset_dict: dict) -> dict:
        chip = dataset_dict["sniper_chip"]
        image, (rx, ry) = read_chip_image(
            dataset_dict["file_name"],
            (dataset_dict["width"], dataset_dict["height"]),
            chip.scale,
            chip.origin,
            chip.size,
            self.image_format,
            ref=dataset_dict["sniper_ref"],
            cache=self.decode_cache,
            reads=self._expected_reads(dataset_dict) if self.decode_cache is not None else 0.0,
        )
        # boxes use the pixels' exact offset (planned origin + sub-pixel residual)
        origin = (chip.origin[0] + rx, chip.origin[1] + ry)
        keep, boxes, (small, small_boxes) = chip_ground_truth(
            dataset_dict["sniper_boxes"], chip.scale, origin, chip.size, self.min_box_size
        )
        aug_input = T.AugInput(image, boxes=boxes)
        transforms = self.augmentations(aug_input)
        image = aug_input.image
        height, width = image.shape[:2]
        small_boxes = small_boxes[~dataset_dict["sniper_crowd"][small]]
        if len(small_boxes):
            small_boxes = transforms.apply_box(small_boxes)

        crowd = dataset_dict["sniper_crowd"][keep]
        if self.ignore_invalid:
            range_factor = 1.0
            if self.range_reference is not None:
                range_factor = self.range_reference.factor(dataset_dict["width"], dataset_dict["height"])
            valid_range = self.valid_ranges[chip.scale_index].scaled(chip.scale / range_factor)
            valid = np.isin(keep, chip.box_ids)
        else:
            valid_range, valid = ValidRange(), ~crowd
        instances = ChipInstances((height, width), valid_range=(valid_range.lo, valid_range.hi))
        instances.gt_boxes = Boxes(torch.as_tensor(aug_input.boxes, dtype=torch.float32).reshape(-1, 4))
        instances.gt_classes = torch.as_tensor(dataset_dict["sniper_classes"][keep], dtype=torch.int64)
        instances.gt_valid = torch.as_tensor(valid)
        instances.gt_crowd = torch.as_tensor(crowd)
        if self.segmentations is not None:
            ref = dataset_dict["sniper_ref"]
            segmentations = self.segmentations.get(
                dataset_dict["file_name"], dataset_dict["image_id"], len(dataset_dict["sniper_boxes"]), ref
            )
            instances.gt_masks = chip_instance_masks(
                segmentations, keep, crowd, boxes, chip.scale, origin, chip.size, transforms, (height, width),
                self.mask_format, ref, (dataset_dict["width"], dataset_dict["height"]),
            )
        return {
            "file_name": dataset_dict["file_name"],
            "image_id": dataset_dict["image_id"],
            "height": height,
            "width": width,
            "image": torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "instances": instances,
            "sniper_small_boxes": torch.as_tensor(small_boxes, dtype=torch.float32).reshape(-1, 4),
            "sniper_chip": chip,
            "sniper_epoch": dataset_dict["sniper_epoch"],
            "sniper_epoch_stats": dataset_dict["sniper_epoch_stats"],
        }
