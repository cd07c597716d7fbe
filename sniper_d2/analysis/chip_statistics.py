"""The chips of one training epoch, counted per image and scale, and where each box ends up valid.

Uses :meth:`ChipPlanner.image_chips`, i.e. exactly the chips (and negative-chip samples) training
draws in that epoch; nothing is shuffled or stored beyond counts. Images are independent (each has
its own seeded generator), so blocks of images can be counted in worker processes with the same
result as one process.
"""
import multiprocessing
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..data import ChipPlanner
from .scale_coverage import DatasetBoxes
from .training_set import progress

__all__ = ["ChipStatistics", "chip_statistics"]

_BLOCK_IMAGES = 256  # images per worker task
_worker_planner: Optional[ChipPlanner] = None


@dataclass(frozen=True)
class ChipStatistics:
    """Counts for one epoch.

    ``positive``/``negative``/``focus``: (I, S) int64 chips per image and scale (``focus``: AutoFocus
    training chips, :meth:`~sniper_d2.chips.ChipGenerator.focus_chips`); ``pixels``: (I,) chip px
    per image (sum of chip width x height, before padding to the chip size); ``valid``: (N, S)
    bool, box valid in some chip of that scale; ``stride``: the epoch's grid step, chip px.
    """

    epoch: int
    stride: int
    positive: np.ndarray
    negative: np.ndarray
    focus: np.ndarray
    pixels: np.ndarray
    valid: np.ndarray


def _count_block(planner: ChipPlanner, epoch: int, stride: int, start: int, stop: int) -> Tuple[np.ndarray, ...]:
    """Chips of images ``start:stop``: (positive, negative, focus (n, S), pixels (n,), and per
    (box, scale) validity the triple image row, box index within the image, scale index)."""
    num_scales = len(planner.generator.scales)
    positive = np.zeros((stop - start, num_scales), np.int64)
    negative = np.zeros((stop - start, num_scales), np.int64)
    focus = np.zeros((stop - start, num_scales), np.int64)
    pixels = np.zeros(stop - start, np.int64)
    rows, box_ids, scales = [], [], []
    for row, index in enumerate(range(start, stop)):
        positives, negatives, valid_ids = planner.image_chips(index, epoch, stride)
        for chip, ids in zip(positives + negatives, valid_ids):
            (negative if chip.negative else focus if chip.focus else positive)[row, chip.scale_index] += 1
            pixels[row] += chip.size[0] * chip.size[1]
            rows.append(np.full(len(ids), index, np.int64))
            box_ids.append(ids)
            scales.append(np.full(len(ids), chip.scale_index, np.int64))
    flat = [
        np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64) for parts in (rows, box_ids, scales)
    ]
    return (positive, negative, focus, pixels, *flat)


def _init_worker(planner: ChipPlanner) -> None:
    global _worker_planner
    _worker_planner = planner


def _count_block_in_worker(task) -> Tuple[np.ndarray, ...]:
    return _count_block(_worker_planner, *task)


def _collect(tasks, blocks, bar) -> list:
    """The blocks' results in task order, advancing the progress ``bar`` by each block's images."""
    results = []
    for task, block in zip(tasks, blocks):
        results.append(block)
        bar.update(task[3] - task[2])
    bar.close()
    return results


def chip_statistics(planner: ChipPlanner, boxes: DatasetBoxes, epoch: int = 0, workers: int = 1) -> ChipStatistics:
    """Chip counts of every image of ``planner.table`` in ``epoch`` (``boxes`` from the same table),
    computed in ``workers`` processes (1: in this process)."""
    num_images, num_scales = len(planner.table), len(planner.generator.scales)
    stride = planner.epoch_stride(epoch)
    tasks = [(epoch, stride, s, min(s + _BLOCK_IMAGES, num_images)) for s in range(0, num_images, _BLOCK_IMAGES)]
    workers = max(1, min(int(workers), len(tasks)))
    bar = progress(None, num_images, f"chips of epoch {epoch}")
    if workers == 1:
        results = _collect(tasks, (_count_block(planner, *task) for task in tasks), bar)
    else:
        with multiprocessing.get_context().Pool(workers, _init_worker, (planner,)) as pool:
            results = _collect(tasks, pool.imap(_count_block_in_worker, tasks), bar)
    empty = (np.zeros((0, num_scales), np.int64),) * 3 + (np.zeros(0, np.int64),) * 4
    positive, negative, focus, pixels, rows, box_ids, scales = (
        np.concatenate(parts) for parts in zip(*results, empty)
    )
    valid = np.zeros((len(boxes), num_scales), bool)
    valid[boxes.first_box[rows] + box_ids, scales] = True
    return ChipStatistics(epoch, stride, positive, negative, focus, pixels, valid)
