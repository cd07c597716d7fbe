"""Which boxes each training scale covers: by its valid range, and by the rule that makes a box drive chips.

All boxes of the training set are handled at once (vectorised): each box gets its image's scale
factors, then the valid ranges (``lo <= sqrt(area) < hi``, original px) and the driving-box size
rules of :mod:`sniper_d2.chips.driving_boxes` (incl. "fits in a chip") are applied per scale.
Crowd boxes never drive chips and are never valid; they are counted apart.
"""
from dataclasses import dataclass

import numpy as np

from ..chips import BoxShapes, ChipGenerator, box_shapes
from ..data import AnnotationTable

__all__ = ["DatasetBoxes", "ScaleCoverage", "image_factors", "scale_coverage"]


@dataclass(frozen=True)
class DatasetBoxes:
    """All boxes of an :class:`AnnotationTable`, flat, with the image each belongs to."""

    boxes: np.ndarray  # (N, 4) XYXY original px
    crowd: np.ndarray  # (N,) bool
    image_index: np.ndarray  # (N,) int64, row of the table
    first_box: np.ndarray  # (images + 1,) int64: boxes of image i are first_box[i]:first_box[i + 1]
    shapes: BoxShapes  # sqrt(area), min and max side, original px

    @classmethod
    def from_table(cls, table: AnnotationTable) -> "DatasetBoxes":
        crowd = [table[i].crowd for i in range(len(table))]
        counts = np.fromiter((len(c) for c in crowd), np.int64, len(crowd))
        boxes = table.all_boxes()
        return cls(
            boxes=boxes,
            crowd=np.concatenate(crowd) if crowd else np.zeros((0,), bool),
            image_index=np.repeat(np.arange(len(counts)), counts),
            first_box=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            shapes=box_shapes(boxes),
        )

    def __len__(self) -> int:
        return len(self.boxes)


def image_factors(sizes: np.ndarray, generator: ChipGenerator) -> np.ndarray:
    """(I, S) scale factors (chip px per original px) of images of ``sizes`` (I, 2) = (width, height)."""
    if len(sizes) == 0:
        return np.zeros((0, len(generator.scales)))
    unique, inverse = np.unique(sizes, axis=0, return_inverse=True)
    factors = np.array([[f for f, _ in generator.image_scales(int(w), int(h))] for w, h in unique])
    return factors[inverse.reshape(-1)]


@dataclass(frozen=True)
class ScaleCoverage:
    """Per box and scale (N, S) bool: ``in_range`` (sqrt(area) in the scale's valid range, not crowd)
    and ``driving`` (drives positive chips there); ``factors`` (N, S) the box's image's scale factors."""

    in_range: np.ndarray
    driving: np.ndarray
    factors: np.ndarray

    @property
    def in_no_range(self) -> np.ndarray:
        """(N,) bool: non-crowd boxes that no valid range contains (valid nowhere, ever)."""
        return ~self.in_range.any(axis=1)

    @property
    def drives_nowhere(self) -> np.ndarray:
        """(N,) bool: boxes that drive chips at no scale (crowd boxes included)."""
        return ~self.driving.any(axis=1)


def scale_coverage(
    boxes: DatasetBoxes, image_sizes: np.ndarray, generator: ChipGenerator, stride: int
) -> ScaleCoverage:
    """Coverage of ``boxes`` (images of ``image_sizes`` (I, 2) original px) by ``generator``'s scales,
    with candidate-grid step ``stride`` chip px (the fits-in-a-chip rule depends on it)."""
    shape = (len(boxes), len(generator.scales))
    factors = image_factors(image_sizes, generator)[boxes.image_index].reshape(shape)
    range_factors = np.array([generator.range_factor(w, h) for w, h in image_sizes])[boxes.image_index]
    assignable = ~boxes.crowd
    in_range = np.stack(
        [r.contains_train(boxes.shapes.sizes * range_factors) & assignable for r in generator.valid_ranges], axis=1
    ).reshape(shape)
    driving = np.stack(
        [
            rule.mask(boxes.shapes, factors[:, s], generator.chip_size, stride, range_factors) & assignable
            for s, rule in enumerate(generator.driving_rules)
        ],
        axis=1,
    ).reshape(shape)
    return ScaleCoverage(in_range=in_range, driving=driving, factors=factors)
