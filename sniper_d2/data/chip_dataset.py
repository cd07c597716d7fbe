"""``ChipDataset``: map-style dataset whose keys are chip keys from :class:`ChipSampler`."""
import numpy as np
from torch.utils.data import Dataset

from .chip_plan import ChipPlanner, decode_chip_key

__all__ = ["ChipDataset"]


class ChipDataset(Dataset):
    """``dataset[key]`` -> the input dict of one chip for :class:`SniperChipMapper`.

    ``key`` encodes (epoch, position in that epoch's chip list). The dict carries the image's
    ``file_name``, ``image_id``, ``width``, ``height`` (original px), its boxes as arrays
    (``sniper_boxes`` original px XYXY, ``sniper_classes``, ``sniper_crowd``), the chip
    (``sniper_chip``, whose ``box_ids`` are the boxes valid in it), ``sniper_ref`` (how errors name
    the image), ``sniper_image_chips`` (the image's chips in the epoch: how often it is read, for
    the mapper's decode cache) and the epoch's number and statistics.
    """

    def __init__(self, planner: ChipPlanner):
        self.planner = planner
        self._chips_per_image = (-1, None)  # (epoch, counts)

    def _image_chips(self, plan) -> np.ndarray:
        if self._chips_per_image[0] != plan.epoch:
            self._chips_per_image = (plan.epoch, np.bincount(plan.image_index, minlength=len(self.planner.table)))
        return self._chips_per_image[1]

    def __len__(self) -> int:
        """Number of training images (the chip count changes every epoch)."""
        return len(self.planner.table)

    def __getitem__(self, key) -> dict:
        epoch, position = decode_chip_key(key)
        plan = self.planner.plan(epoch)
        index = int(plan.image_index[position])
        ann = self.planner.table[index]
        return {
            "file_name": ann.file_name,
            "image_id": ann.image_id,
            "width": ann.width,
            "height": ann.height,
            "sniper_ref": ann.ref,
            "sniper_boxes": ann.boxes,
            "sniper_classes": ann.classes,
            "sniper_crowd": ann.crowd,
            "sniper_chip": plan.chip(position, image_id=ann.image_id),
            "sniper_image_chips": int(self._image_chips(plan)[index]),
            "sniper_epoch": epoch,
            "sniper_epoch_stats": plan.stats,
        }
