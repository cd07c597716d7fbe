"""The chips of one training epoch: positive chips, sampled negative chips and box validity.

Every process (each rank, each data-loader worker) derives the same epoch plan from the shared seed:
per image, chips are generated with a generator seeded by ``(seed, epoch, image index)``, so the
plan does not depend on which process computes it or in which order. The plan is stored in flat
arrays (one row per chip, valid box ids in CSR layout) and shuffled with ``(seed, epoch)``.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np

from ..chips import Chip, ChipGenerator, assign_valid_boxes, sample_negative_chips
from .annotation_table import AnnotationTable

__all__ = ["ChipPlanner", "EpochChipPlan", "decode_chip_key", "encode_chip_key"]

_POSITION_BITS = 32


def encode_chip_key(epoch: int, position: int) -> int:
    """The integer a sampler yields for chip ``position`` of ``epoch``'s shuffled chip list."""
    return (epoch << _POSITION_BITS) | position


def decode_chip_key(key: int):
    """Inverse of :func:`encode_chip_key`: ``(epoch, position)``."""
    key = int(key)
    return key >> _POSITION_BITS, key & ((1 << _POSITION_BITS) - 1)


@dataclass
class EpochChipPlan:
    """All chips of one epoch, in training order. Geometry in chip px of the scaled image."""

    epoch: int
    image_index: np.ndarray  # (n,) int64, row of the AnnotationTable
    scale_index: np.ndarray  # (n,) int64
    scale: np.ndarray  # (n,) float64, chip px per original px
    origin: np.ndarray  # (n, 2) int64, (x0, y0) in the scaled image
    size: np.ndarray  # (n, 2) int64, (width, height)
    negative: np.ndarray  # (n,) bool
    focus: np.ndarray  # (n,) bool, AutoFocus training chip (ChipGenerator.focus_chips)
    valid_offsets: np.ndarray  # (n + 1,) int64
    valid_ids: np.ndarray  # int64: box indices (within the image) valid in each chip
    stride: int  # grid stride used this epoch, chip px
    stats: Dict[str, float]

    def __len__(self) -> int:
        return len(self.image_index)

    def chip(self, position: int, image_id=None) -> Chip:
        """The chip at ``position`` (``box_ids`` holds the boxes valid in it)."""
        v0, v1 = self.valid_offsets[position], self.valid_offsets[position + 1]
        return Chip(
            image_id=image_id,
            scale_index=int(self.scale_index[position]),
            scale=float(self.scale[position]),
            origin=(int(self.origin[position, 0]), int(self.origin[position, 1])),
            size=(int(self.size[position, 0]), int(self.size[position, 1])),
            box_ids=self.valid_ids[v0:v1],
            negative=bool(self.negative[position]),
            focus=bool(self.focus[position]),
        )


class ChipPlanner:
    """Computes (and caches the latest) :class:`EpochChipPlan` of a training set.

    Args:
        table: the training annotations (with proposals for images that have them).
        generator: chip geometry (scales, valid ranges, chip size, stride, negative thresholds).
        seed: shared seed; all processes must use the same one.
        negatives_per_image: negative chips sampled per image and epoch (0: none).
        stride_range: optional (min, max) chip px: draw each epoch's grid stride from it.
        focus_sizes: for a model with a FocusPixel branch, (dc_low, small_thresh) sqrt(area) in chip
            px: add AutoFocus training chips (:meth:`ChipGenerator.focus_chips`); None: none.
    """

    def __init__(
        self,
        table: AnnotationTable,
        generator: ChipGenerator,
        seed: int,
        negatives_per_image: int = 2,
        stride_range: Optional[Sequence[int]] = None,
        focus_sizes: Optional[Sequence[float]] = None,
    ):
        self.table = table
        self.generator = generator
        self.seed = int(seed)
        self.negatives_per_image = int(negatives_per_image)
        self.stride_range = tuple(stride_range) if stride_range else None
        self.focus_sizes = tuple(focus_sizes) if focus_sizes is not None else None
        self._cached: Optional[EpochChipPlan] = None

    def epoch_stride(self, epoch: int) -> int:
        if self.stride_range is None:
            return self.generator.stride
        lo, hi = self.stride_range
        return int(np.random.default_rng([self.seed, epoch, 0]).integers(lo, hi + 1))

    def plan(self, epoch: int) -> EpochChipPlan:
        if self._cached is None or self._cached.epoch != epoch:
            self._cached = self._make_plan(epoch)
        return self._cached

    def image_chips(self, index: int, epoch: int, stride: int):
        """Chips of image ``index`` in ``epoch``: (positive chips, then AutoFocus training chips
        (``focus``) if any; sampled negatives; valid box ids per chip of positives + negatives)."""
        ann = self.table[index]
        rng = np.random.default_rng([self.seed, epoch, 1, index])
        assignable = ~ann.crowd
        positives = self.generator.positive_chips(
            index, ann.width, ann.height, ann.boxes, rng, driving_mask=assignable, stride=stride
        )
        negatives = []
        if self.negatives_per_image > 0 and ann.proposals is not None and len(ann.proposals):
            pool = self.generator.negative_chip_pool(
                index, ann.width, ann.height, ann.proposals, positives, rng, stride=stride
            )
            negatives = sample_negative_chips(pool, self.negatives_per_image, rng)
        if self.focus_sizes is not None:
            positives = positives + self.generator.focus_chips(
                index, ann.width, ann.height, ann.boxes, positives + negatives, self.focus_sizes, rng,
                driving_mask=assignable, stride=stride,
            )
        chips = positives + negatives
        valid = assign_valid_boxes(
            chips, ann.boxes, ann.width, ann.height, self.generator.valid_ranges, assignable_mask=assignable,
            chip_size=self.generator.chip_size, stride=stride,
            range_factor=self.generator.range_factor(ann.width, ann.height),
        )
        return positives, negatives, valid

    def _box_summary(self) -> str:
        boxes = self.table.all_boxes()
        sizes = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        summary = (
            f"box sqrt(area) percentiles 0/5/50/95/100: {np.percentile(sizes, [0, 5, 50, 95, 100]).round(1).tolist()} px"
            if len(sizes) else "no boxes at all"
        )
        return f"{', '.join(self.table.dataset_names)}; {len(self.table)} images, {len(boxes)} boxes: {summary}"

    def _range_rule(self) -> str:
        ranges = [r.as_config() for r in self.generator.valid_ranges]
        return (
            f"A box drives chips only at a scale whose valid range contains its sqrt(area) in original px "
            f"(SNIPER.TRAIN.VALID_RANGES = {ranges}) and, except at the coarsest scale, fits in a chip "
            f"(SNIPER.CHIP_SIZE = {self.generator.chip_size}). "
        )

    def no_chips_message(self) -> str:
        """Why an epoch came out empty, with the numbers a user needs to fix the config."""
        crowd = sum(int(self.table[i].crowd.sum()) for i in range(len(self.table)))
        if crowd and crowd == self.table.num_boxes:
            return (
                f"No image of the training set ({self._box_summary()}) yields any chip: every one of its "
                f"{crowd} boxes is a crowd box (iscrowd=1), and crowd boxes never drive chips or train as "
                "objects (they are ignore regions). Check the annotations' 'iscrowd' field (COCO: 0 for "
                "ordinary objects), or add negative-chip proposals (SNIPER.NEG.PROPOSAL_FILES)."
            )
        return (
            f"No image of the training set ({self._box_summary()}) yields any chip. {self._range_rule()}"
            "Widen the valid ranges so they cover your objects (tools/analyze_dataset.py --suggest "
            "proposes ranges), or give negative-chip proposals (SNIPER.NEG.PROPOSAL_FILES)."
        )

    def check_every_scale_has_chips(self, plan: "EpochChipPlan") -> None:
        """Raise if some training scale gets no positive chip: no box of the training set lies in
        its valid range, so the scale would only cost time (or its range is a mistake)."""
        counts = np.bincount(plan.scale_index[~plan.negative & ~plan.focus], minlength=len(self.generator.scales))
        empty = np.flatnonzero(counts == 0).tolist()
        if not empty:
            return
        names = [f"scale {i} ({self.generator.scales[i]}, range {self.generator.valid_ranges[i].as_config()})" for i in empty]
        raise RuntimeError(
            f"{' and '.join(names)} of SNIPER.TRAIN.SCALES {'gets' if len(empty) == 1 else 'get'} no positive chip: no box of the training set "
            f"({self._box_summary()}) drives chips there. {self._range_rule()}Widen the valid range(s) or drop "
            "the scale from SNIPER.TRAIN.SCALES (with its VALID_RANGES and NEG.MIN_PROPOSALS entries); "
            "tools/analyze_dataset.py --suggest proposes scales and ranges."
        )

    def _make_plan(self, epoch: int) -> EpochChipPlan:
        stride = self.epoch_stride(epoch)
        rows, valid_parts = [], []
        images_with_chips = 0
        for index in range(len(self.table)):
            positives, negatives, valid = self.image_chips(index, epoch, stride)
            chips = positives + negatives
            images_with_chips += bool(chips)
            for chip, ids in zip(chips, valid):
                rows.append((index, chip.scale_index, chip.scale, *chip.origin, *chip.size, chip.negative, chip.focus))
                valid_parts.append(ids)
        n = len(rows)
        order = np.random.default_rng([self.seed, epoch, 2]).permutation(n)
        table = np.array(rows, dtype=np.float64).reshape(n, 9)[order]
        valid_parts = [valid_parts[i] for i in order]
        counts = np.fromiter((len(v) for v in valid_parts), np.int64, n)
        negative = table[:, 7].astype(bool)
        focus = table[:, 8].astype(bool)
        size = table[:, 5:7].astype(np.int64)
        num_images = max(len(self.table), 1)
        stats = {
            "images": float(len(self.table)),
            "images_with_chips": float(images_with_chips),
            "positive_chips": float(n - negative.sum() - focus.sum()),
            "negative_chips": float(negative.sum()),
            "focus_chips": float(focus.sum()),
            "chips_per_image": n / num_images,
            "pixels_per_image": float((size[:, 0] * size[:, 1]).sum()) / num_images,
        }
        return EpochChipPlan(
            epoch=epoch,
            image_index=table[:, 0].astype(np.int64),
            scale_index=table[:, 1].astype(np.int64),
            scale=table[:, 2],
            origin=table[:, 3:5].astype(np.int64),
            size=size,
            negative=negative,
            focus=focus,
            valid_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            valid_ids=np.concatenate(valid_parts).astype(np.int64) if n else np.zeros((0,), np.int64),
            stride=stride,
            stats=stats,
        )
