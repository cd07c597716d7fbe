"""``Chip``: one fixed-size training window cut from one scale of an image."""
from dataclasses import dataclass, field
from typing import Tuple

import numpy as np

__all__ = ["Chip"]


@dataclass(frozen=True)
class Chip:
    """A chip of one image at one training scale.

    Chips compare (and hash) by image, scale and window; ``box_ids`` is extra information.

    Attributes:
        image_id: the dataset's image id, passed through untouched.
        scale_index: index into the generator's scale list (0 = finest).
        scale: scale factor of that level for this image, chip px per original px.
        origin: (x0, y0) of the chip's top-left corner in the scaled image, chip px.
        size: (width, height) of the chip, chip px; smaller than the chip size only where the
            scaled image itself is smaller (the chip then spans the whole image in that dimension).
        box_ids: int64 indices of the boxes the chip was made for, ascending: the driving
            ground-truth boxes (positive chip) or uncovered proposals (negative chip) that its
            greedy-cover step covered first. Each box appears in one chip per scale; a chip may
            contain further boxes that an earlier chip covered.
        negative: True for a negative chip (made from proposals), False for a positive one.
        focus: True for an AutoFocus training chip (:meth:`~sniper_d2.chips.ChipGenerator.focus_chips`):
            made around objects that are FocusPixel-positive at its scale and in no other chip of
            it; the detector trains on it like on a positive chip.
    """

    image_id: object
    scale_index: int
    scale: float
    origin: Tuple[int, int]
    size: Tuple[int, int]
    box_ids: np.ndarray = field(compare=False)
    negative: bool = False
    focus: bool = False

    @property
    def box(self) -> np.ndarray:
        """(4,) float64 XYXY window of the chip in original px: (origin, origin + size) / scale."""
        x0, y0 = self.origin
        w, h = self.size
        return np.array([x0, y0, x0 + w, y0 + h], dtype=np.float64) / self.scale
