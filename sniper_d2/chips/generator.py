"""``ChipGenerator``: all SNIPER chips of one image, every scale (positive chips, negative pool,
AutoFocus training chips)."""
from dataclasses import replace
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .box_checks import check_image_size, clip_proposals
from .chip import Chip
from .driving_boxes import box_shapes, box_sizes, driving_rules, proposal_rules
from .negative import negative_chips_at_scale
from .positive import positive_chips_at_scale
from .scales import parse_scale, parse_scales, scaled_size
from .valid_range import parse_valid_ranges

__all__ = ["ChipGenerator"]


class ChipGenerator:
    """Chooses the chips of an image at every training scale.

    Chips are regenerated every epoch: pass a fresh ``rng`` state (and optionally a new ``stride``)
    each time. Identical ``rng`` states give identical chips.
    """

    def __init__(
        self,
        scales: Sequence,
        valid_ranges: Sequence,
        chip_size: int = 512,
        stride: int = 32,
        neg_min_proposals: Sequence[int] = (25, 10, 10),
        range_reference=None,
    ):
        """
        Args:
            scales: training scales, finest first: :class:`ScaleSpec` or config values (a factor,
                ``"longest:<px>"``, ``[short, max_long]``).
            valid_ranges: one :class:`ValidRange` or ``(lo, hi)`` pair per scale, sqrt(area) in
                original px, -1 = unbounded.
            chip_size: chip side, chip px.
            stride: default step of the candidate grid, chip px.
            neg_min_proposals: per scale, a negative chip must fully contain MORE uncovered
                proposals than this.
            range_reference: frame of ``valid_ranges``: None (or empty) = original px; a scale
                (e.g. ``(448, 746)``) = px of the image resized to that scale, for datasets
                whose object size follows image size (``SNIPER.RANGE_REFERENCE``).
        """
        self.scales = parse_scales(scales)
        self.range_reference = parse_scale(range_reference) if range_reference else None
        self.valid_ranges = parse_valid_ranges(valid_ranges, len(self.scales))
        if isinstance(chip_size, bool) or not isinstance(chip_size, (int, np.integer)) or chip_size < 4:
            raise ValueError(f"chip_size must be an integer >= 4 chip px, got {chip_size!r}.")
        self.chip_size = int(chip_size)
        self.stride = self._checked_stride(stride)
        try:
            self.neg_min_proposals = tuple(int(n) for n in neg_min_proposals)
        except (TypeError, ValueError):
            self.neg_min_proposals = ()
        if len(self.neg_min_proposals) != len(self.scales) or min(self.neg_min_proposals) < 0:
            raise ValueError(
                f"neg_min_proposals (SNIPER.NEG.MIN_PROPOSALS) is {neg_min_proposals!r} but there are "
                f"{len(self.scales)} scales: give one count >= 0 per scale, in the same order."
            )
        self.driving_rules = driving_rules(self.valid_ranges)
        self.proposal_rules = proposal_rules(self.valid_ranges)

    @classmethod
    def from_config(cls, cfg) -> "ChipGenerator":
        """From ``cfg.SNIPER`` (see :func:`sniper_d2.config.add_sniper_config`)."""
        return cls(
            scales=cfg.SNIPER.TRAIN.SCALES,
            valid_ranges=cfg.SNIPER.TRAIN.VALID_RANGES,
            chip_size=cfg.SNIPER.CHIP_SIZE,
            stride=cfg.SNIPER.TRAIN.CHIP_STRIDE,
            neg_min_proposals=cfg.SNIPER.NEG.MIN_PROPOSALS,
            range_reference=cfg.SNIPER.RANGE_REFERENCE,
        )

    def _checked_stride(self, stride) -> int:
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or not 1 <= stride < self.chip_size - 1:
            raise ValueError(
                f"The chip stride must be an integer in [1, {self.chip_size - 2}] chip px (below chip_size - 1, "
                f"else no box fits a chip with room for a grid step), got {stride!r}."
            )
        return int(stride)

    def range_factor(self, width, height) -> float:
        """Px of the valid ranges' frame per original px for an image of ``width`` x ``height``
        original px (1.0 when the ranges are in original px)."""
        return 1.0 if self.range_reference is None else self.range_reference.factor(width, height)

    def image_scales(self, width, height) -> List[Tuple[float, Tuple[int, int]]]:
        """Per scale, ``(factor, (scaled_width, scaled_height))`` for an image of ``width`` x ``height``
        original px; factor in chip px per original px."""
        factors = [spec.factor(width, height) for spec in self.scales]
        return [(f, scaled_size(width, height, f)) for f in factors]

    def positive_chips(
        self, image_id, width, height, boxes, rng: np.random.Generator, *,
        driving_mask: Optional[np.ndarray] = None, stride: Optional[int] = None,
    ) -> List[Chip]:
        """Positive chips of one image, all scales (finest first, greedy order within a scale).

        Args:
            image_id: passed through to the chips.
            width, height: image size, original px.
            boxes: (N, 4) XYXY original px, already checked (:func:`check_boxes`).
            rng: tie-break source; one draw per scale that has driving boxes.
            driving_mask: bool (N,); False = the box may not drive chips (crowd regions).
            stride: grid step for this call (e.g. a per-epoch random stride), chip px; default
                the generator's.
        """
        check_image_size(width, height, image_id)
        stride = self.stride if stride is None else self._checked_stride(stride)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        allowed = _driving_mask(driving_mask, len(boxes), image_id)
        chips = []
        if len(boxes) == 0:
            return chips
        shapes = box_shapes(boxes)
        range_factor = self.range_factor(width, height)
        for index, (factor, size) in enumerate(self.image_scales(width, height)):
            mask = self.driving_rules[index].mask(shapes, factor, self.chip_size, stride, range_factor)
            ids = (mask & allowed).nonzero()[0]
            if len(ids):
                chips += positive_chips_at_scale(
                    image_id, index, factor, size, boxes[ids], ids, self.chip_size, stride, rng
                )
        return chips

    def negative_chip_pool(
        self, image_id, width, height, proposals, positive_chips: Sequence[Chip], rng: np.random.Generator,
        *, stride: Optional[int] = None,
    ) -> List[Chip]:
        """The image's negative-chip pool for this epoch, all scales (finest first).

        Args:
            image_id: passed through to the chips.
            width, height: image size, original px.
            proposals: (P, 4) XYXY original px (clipped to the image here; empty ones never count).
            positive_chips: this epoch's positive chips of the image (may be empty: images without
                ground truth are sources of negative chips too).
            rng: tie-break source.
            stride: grid step for this call, chip px; default the generator's.
        """
        stride = self.stride if stride is None else self._checked_stride(stride)
        proposals = clip_proposals(proposals, width, height, image_id)
        pool = []
        if len(proposals) == 0:
            return pool
        shapes = box_shapes(proposals)
        nonempty = shapes.min_sides > 0  # an empty proposal cannot be a false positive
        range_factor = self.range_factor(width, height)
        for index, (factor, size) in enumerate(self.image_scales(width, height)):
            windows = [
                (c.origin[0], c.origin[1], c.origin[0] + c.size[0], c.origin[1] + c.size[1])
                for c in positive_chips if c.scale_index == index
            ]
            if (0, 0, *size) in windows:  # a positive chip spans the scaled image: all proposals touch it
                continue
            rule = self.proposal_rules[index]
            ids = (rule.mask(shapes, factor, self.chip_size, stride, range_factor) & nonempty).nonzero()[0]
            if len(ids) <= self.neg_min_proposals[index]:
                continue
            pool += negative_chips_at_scale(
                image_id, index, factor, size, proposals[ids], ids,
                np.array(windows, dtype=np.float64).reshape(-1, 4),
                self.chip_size, stride, self.neg_min_proposals[index], rng,
            )
        return pool

    def focus_chips(
        self, image_id, width, height, boxes, chips: Sequence[Chip], focus_sizes: Tuple[float, float],
        rng: np.random.Generator, *, driving_mask: Optional[np.ndarray] = None, stride: Optional[int] = None,
    ) -> List[Chip]:
        """AutoFocus training chips of one image (``Chip.focus``), every scale but the finest.

        At test time AutoFocus finds small objects on the FocusPixel maps of the coarser scales, but
        SNIPER's chips there are made for the objects in those scales' valid ranges: a small object
        far from them reaches the FocusPixel branch at a coarse scale only by chance. Here, at each
        scale but the finest, the boxes that are FocusPixel-positive there (sqrt(area) in chip px
        inside the open interval ``focus_sizes``) and that no chip of ``chips`` at that scale holds
        whole drive a greedy cover of their own. The detector trains on these chips like on positive
        chips (boxes valid where :func:`assign_valid_boxes` says).

        Args:
            image_id: passed through to the chips.
            width, height: image size, original px.
            boxes: (N, 4) XYXY original px, already checked (:func:`check_boxes`).
            chips: the image's other chips this epoch (positive and negative), any scales.
            focus_sizes: (dc_low, small_thresh), sqrt(area) in chip px (``SNIPER.AUTOFOCUS.DC_LOW``,
                ``SMALL_THRESH``).
            rng: tie-break source; one draw per scale that has such boxes.
            driving_mask: bool (N,); False = the box may not drive chips (crowd regions).
            stride: grid step for this call, chip px; default the generator's.
        """
        stride = self.stride if stride is None else self._checked_stride(stride)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        allowed = _driving_mask(driving_mask, len(boxes), image_id)
        low, high = (float(v) for v in focus_sizes)
        sizes = box_sizes(boxes)
        focus = []
        for index, (factor, size) in enumerate(self.image_scales(width, height)):
            if index == 0 or not len(boxes):  # the finest scale's FocusPixels crop no finer scale
                continue
            # clipped to the scaled image, whose size was rounded: a box at its far edge is held
            # by a chip that reaches that edge
            scaled = np.minimum(boxes * factor, (*size, *size))
            held = np.zeros(len(boxes), dtype=bool)
            for chip in chips:
                if chip.scale_index == index:
                    (x0, y0), (w, h) = chip.origin, chip.size
                    held |= (
                        (scaled[:, 0] >= x0) & (scaled[:, 1] >= y0) & (scaled[:, 2] <= x0 + w) & (scaled[:, 3] <= y0 + h)
                    )
            ids = ((sizes * factor > low) & (sizes * factor < high) & allowed & ~held).nonzero()[0]
            if len(ids):
                cover = positive_chips_at_scale(
                    image_id, index, factor, size, boxes[ids], ids, self.chip_size, stride, rng
                )
                focus += [replace(chip, focus=True) for chip in cover]
        return focus


def _driving_mask(driving_mask: Optional[np.ndarray], num_boxes: int, image_id) -> np.ndarray:
    """bool (num_boxes,): which boxes may drive chips (all when ``driving_mask`` is None)."""
    if driving_mask is None:
        return np.ones(num_boxes, dtype=bool)
    allowed = np.asarray(driving_mask, dtype=bool)
    if allowed.shape != (num_boxes,):
        raise ValueError(f"Image {image_id!r}: driving_mask has shape {allowed.shape}, expected ({num_boxes},).")
    return allowed
