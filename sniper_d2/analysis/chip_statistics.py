"""The chips of one training epoch, counted per image and scale, and where each box ends up valid.

Uses :meth:`ChipPlanner.image_chips`, i.e. exactly the chips (and negative-chip samples) training
draws in that epoch; nothing is shuffled or stored beyond counts.
"""
from dataclasses import dataclass

import numpy as np

from ..data import ChipPlanner
from .scale_coverage import DatasetBoxes
from .training_set import progress

__all__ = ["ChipStatistics", "chip_statistics"]


@dataclass(frozen=True)
class ChipStatistics:
    """Counts for one epoch.

    ``positive``/``negative``: (I, S) int64 chips per image and scale; ``pixels``: (I,) chip px
    per image (sum of chip width x height, before padding to the chip size); ``valid``: (N, S)
    bool, box valid in some chip of that scale; ``stride``: the epoch's grid step, chip px.
    """

    epoch: int
    stride: int
    positive: np.ndarray
    negative: np.ndarray
    pixels: np.ndarray
    valid: np.ndarray


def chip_statistics(planner: ChipPlanner, boxes: DatasetBoxes, epoch: int = 0) -> ChipStatistics:
    """Chip counts of every image of ``planner.table`` in ``epoch`` (``boxes`` from the same table)."""
    num_images, num_scales = len(planner.table), len(planner.generator.scales)
    stride = planner.epoch_stride(epoch)
    positive = np.zeros((num_images, num_scales), np.int64)
    negative = np.zeros((num_images, num_scales), np.int64)
    pixels = np.zeros(num_images, np.int64)
    valid = np.zeros((len(boxes), num_scales), bool)
    for index in progress(range(num_images), num_images, f"chips of epoch {epoch}"):
        positives, negatives, valid_ids = planner.image_chips(index, epoch, stride)
        first = boxes.first_box[index]
        for chip, ids in zip(positives + negatives, valid_ids):
            (negative if chip.negative else positive)[index, chip.scale_index] += 1
            pixels[index] += chip.size[0] * chip.size[1]
            valid[first + ids, chip.scale_index] = True
    return ChipStatistics(epoch, stride, positive, negative, pixels, valid)
