"""Tiled inference at one test scale: a huge image's detections without its whole scaled copy.

At a fine test scale a large image (aerial photographs, slides: 6000x6000 px and more) is too big
to resize and run at once: 8000x8000 px at factor 3 is 24000x24000 px, 6.9 GB as a float image
before the backbone's features. Tiled, the scaled image is covered by overlapping square tiles of
at most ``tile_size`` scaled px. Each tile is a region of the original image (original px), cut
out, resized alone and run through the detector (:class:`SniperMultiScaleInference` does that),
so memory is bounded by one tile whatever the image size. It is SAHI's sliced prediction with
these choices:

* **Which tile keeps a detection.** The tiles' *cores* partition the image: an overlap between
  two tiles is split in its middle, image borders belong to the tiles that touch them. A tile
  keeps a detection iff its centre lies in the tile's core and it is not cut by one of the tile's
  interior edges (it comes within :data:`BORDER_TOLERANCE` scaled px of an edge shared with
  another tile; edges on the image border do not cut). So an object of up to ``overlap - 2 x
  BORDER_TOLERANCE`` scaled px lies whole in the tile that owns its centre and is kept once, never
  as a truncated box or a duplicate from the next tile; a larger object is cut in its owner and
  dropped at this scale. Set the overlap to at least the largest size the scale's valid range
  admits (``hi x factor`` scaled px): larger objects are the coarser scales' job.
* **Valid ranges and the merge** stay those of whole-image inference: each tile's detections go
  through the scale's valid range (original px) and one soft-NMS merge covers all tiles of all
  scales.
* **Tiles on the feature grid.** Where the factor allows, tiles start at multiples of the
  detector's coarsest feature stride in scaled px (:func:`feature_alignment`), so a tile is
  resampled and convolved on the whole scaled image's grid: away from its edges it computes the
  same features.

Everything here is geometry in original px; the crop, resize and detector call are the wrapper's.
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Tuple

import torch
from detectron2.structures import Boxes, Instances

from ..chips.scales import scaled_size

__all__ = [
    "BORDER_TOLERANCE",
    "Tile",
    "check_tile_settings",
    "crop_tile_input",
    "feature_alignment",
    "owned_detections",
    "region_tile",
    "region_tile_grid",
    "tile_grid",
    "tile_spans",
    "tiling_applies",
]

# A detection within this many scaled px of an interior tile edge is taken as cut by it (boxes
# crossing the edge come out of the detector clipped exactly onto it).
BORDER_TOLERANCE = 2.0


@dataclass(frozen=True)
class Tile:
    """One tile of an image at one scale.

    ``x0, y0, x1, y1``: the region cut from the original image, original px (integers, end
    exclusive). ``core``: ``(x0, y0, x1, y1)`` original px of the part whose detections the tile
    keeps; an infinite bound marks a side on the image border (no neighbour there).
    """

    x0: int
    y0: int
    x1: int
    y1: int
    core: tuple

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def check_tile_settings(tile_size: int, tile_overlap: int, tile_above: int) -> None:
    """Raise, naming the config key, on tile settings that cannot work (sizes in scaled px)."""
    for key, value in (("TILE_SIZE", tile_size), ("TILE_OVERLAP", tile_overlap), ("TILE_ABOVE", tile_above)):
        if isinstance(value, bool) or int(value) != value or value < 0:
            raise ValueError(f"SNIPER.TEST.{key} must be an integer >= 0 (scaled px), got {value!r}.")
    if 0 < tile_size < 32:
        raise ValueError(f"SNIPER.TEST.TILE_SIZE must be 0 (off) or at least 32 scaled px, got {tile_size}.")
    if tile_size and tile_overlap >= tile_size:
        raise ValueError(
            f"SNIPER.TEST.TILE_OVERLAP ({tile_overlap} px) must be below SNIPER.TEST.TILE_SIZE ({tile_size} px)."
        )


def tiling_applies(width: int, height: int, factor: float, tile_size: int, tile_above: int) -> bool:
    """Whether an image of ``width`` x ``height`` original px is tiled at ``factor``: tiling is
    on (``tile_size`` > 0) and the scaled image's longer side exceeds ``tile_above`` px."""
    return tile_size > 0 and max(scaled_size(width, height, factor)) > tile_above


def tile_spans(length: int, crop: int, overlap: int, align: int = 1) -> List[Tuple[int, int]]:
    """``(start, end)`` of the tiles covering ``length`` px (all original px): tiles of at most
    ``crop`` px, neighbours overlapping by at least ``overlap`` px, starts at multiples of
    ``align`` (ignored when ``crop - overlap < align``). As few tiles as that allows, all of one
    width, the narrowest that covers ``length`` (so the tiles' pixels exceed ``length`` by little
    more than the overlaps); the last tile is cut at ``length``. One tile when ``length <= crop``."""
    if not 0 <= overlap < crop:
        raise ValueError(f"Tile overlap must be in [0, tile side), got {overlap} for {crop} px tiles.")
    if length <= crop:
        return [(0, length)]
    if crop - overlap < align:
        align = 1
    count = math.ceil((length - overlap) / (crop - overlap))
    while True:  # more tiles than the least count only when the alignment needs them
        even = (length - overlap) / count  # the step at which tiles of overlap + step px just cover
        widths = {}
        for step in (math.floor(even / align) * align, math.ceil(even / align) * align):
            width = max(overlap + step, length - (count - 1) * step)
            if step >= 1 and width <= crop:
                widths[width] = step
        if widths:
            width = min(widths)
            return [(k * widths[width], min(k * widths[width] + width, length)) for k in range(count)]
        count += 1


def feature_alignment(factor: float, stride: int, crop: int) -> int:
    """The least step of original px, n, whose scaled length ``n x factor`` is a whole multiple
    of ``stride`` scaled px; 1 when ``stride`` <= 1 or n would exceed a quarter of ``crop``.

    A tile starting at a multiple of n is resampled from the same positions as the whole scaled
    image, and the backbone's feature maps (strides dividing ``stride``) fall on the same grid,
    so away from its edges a tile computes what the whole image computes there."""
    if stride <= 1:
        return 1
    k = 1
    while k * stride / factor <= crop / 4:
        n = k * stride / factor
        if abs(n - round(n)) < 1e-6:
            return round(n)
        k += 1
    return 1


def _spans(length: int, factor: float, tile_size: int, overlap: int, stride: int):
    """(start, end, core_start, core_end) per tile along one side of ``length`` original px, in
    original px: one span when the side's scaled length fits in a tile, else tiles of at most
    ``floor(tile_size / factor)`` px overlapping by ``ceil(overlap / factor)`` px or more,
    aligned to ``stride`` scaled px where the factor allows (:func:`feature_alignment`)."""
    if max(1, round(length * factor)) <= tile_size:  # as scaled_size rounds
        return [(0, length, -math.inf, math.inf)]
    crop = max(1, math.floor(tile_size / factor))
    align = feature_alignment(factor, stride, crop)
    crop = crop // align * align
    overlap = min(crop - 1, math.ceil(overlap / factor))
    spans = tile_spans(length, crop, overlap, align)
    starts, ends = [s for s, _ in spans], [e for _, e in spans]
    cuts = [(s + e) / 2 for s, e in zip(starts[1:], ends[:-1])]  # middle of each overlap
    lows, highs = [-math.inf] + cuts, cuts + [math.inf]
    return list(zip(starts, ends, lows, highs))


def tile_grid(width: int, height: int, factor: float, tile_size: int, overlap: int, stride: int = 1) -> List[Tile]:
    """The tiles of an image of ``width`` x ``height`` original px at scale ``factor`` (scaled px
    per original px), row by row.

    A tile is a square of at most ``floor(tile_size / factor)`` original px, so its scaled copy
    (``scaled_size``) is at most ``tile_size`` px a side; neighbours overlap by at least
    ``ceil(overlap / factor)`` original px (:func:`tile_spans`). With ``stride`` (the
    detector's largest feature stride, scaled px), tiles start where the whole scaled image has
    a feature-grid point when the factor allows it (:func:`feature_alignment`: at factor 1 and
    stride 64, every 64 px). Along a side whose scaled length fits in one tile, the tiles span
    the whole side; an image whose scaled copy fits gets one tile, the image.
    """
    if not factor > 0:
        raise ValueError(f"Tile grid: scale factor must be > 0, got {factor}.")
    columns = _spans(width, factor, tile_size, overlap, stride)
    rows = _spans(height, factor, tile_size, overlap, stride)
    return [
        Tile(x0, y0, x1, y1, (cx0, cy0, cx1, cy1))
        for y0, y1, cy0, cy1 in rows
        for x0, x1, cx0, cx1 in columns
    ]


def region_tile(region, image_size) -> Tile:
    """A region ``(x0, y0, x1, y1)`` of the image (original px, integers, end exclusive; an
    AutoFocus FocusChip) as a :class:`Tile` of its own: its core is the region, open (infinite)
    on the sides that lie on the border of the image of ``image_size`` = ``(height, width)``, so
    :func:`owned_detections` drops what the region's other sides cut, by the tiles' one rule."""
    x0, y0, x1, y1 = (int(v) for v in region)
    height, width = image_size
    core = (x0 if x0 > 0 else -math.inf, y0 if y0 > 0 else -math.inf,
            x1 if x1 < width else math.inf, y1 if y1 < height else math.inf)
    return Tile(x0, y0, x1, y1, core)


def region_tile_grid(region: Tile, factor: float, tile_size: int, overlap: int, stride: int = 1) -> List[Tile]:
    """The tiles of a region (:func:`tile_grid` over its size, aligned to the region's origin), in
    the whole image's original px. A tile's core side on the region's edge is the region's there:
    open only on the image border. ``region_tile_grid(region_tile((0, 0, w, h), (h, w)), ...)``
    is ``tile_grid(w, h, ...)``."""
    tiles = []
    for tile in tile_grid(region.width, region.height, factor, tile_size, overlap, stride):
        shifted = [side + (region.x0 if k % 2 == 0 else region.y0) for k, side in enumerate(tile.core)]
        core = tuple(s if math.isfinite(s) else r for s, r in zip(shifted, region.core))
        tiles.append(Tile(tile.x0 + region.x0, tile.y0 + region.y0, tile.x1 + region.x0, tile.y1 + region.y0, core))
    return tiles


def crop_tile_input(image: torch.Tensor, tile: Tile) -> Dict:
    """Detectron2 test input of one tile at original resolution: ``"image"`` the tile's region of
    ``image`` (CHW, original px; a view, not a copy), ``"height"``/``"width"`` its size. Resized
    to the scale (``scale_test_inputs``) and run, its boxes come back in the tile's original px."""
    return {"image": image[:, tile.y0 : tile.y1, tile.x0 : tile.x1], "height": tile.height, "width": tile.width}


def owned_detections(detections: Instances, tile: Tile, image_size, factor: float) -> Instances:
    """The detections a tile keeps, in the whole image's original px.

    Args:
        detections: the detector's output for the tile, boxes in the tile's original px
            (``image_size`` = the tile's size). Box detections only (no masks or keypoints).
        tile: the tile.
        image_size: ``(height, width)`` of the whole image, original px.
        factor: the scale factor, scaled px per original px (for :data:`BORDER_TOLERANCE`).

    Returns:
        ``Instances`` of ``image_size`` with the same fields: boxes shifted by the tile's origin,
        only those whose centre is in the tile's core and that no interior tile edge cuts.
    """
    boxes = detections.pred_boxes.tensor
    shift = boxes.new_tensor([tile.x0, tile.y0, tile.x0, tile.y0])
    boxes = boxes + shift
    tolerance = BORDER_TOLERANCE / factor
    cx0, cy0, cx1, cy1 = tile.core
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2
    keep = (centre_x >= cx0) & (centre_x < cx1) & (centre_y >= cy0) & (centre_y < cy1)
    if math.isfinite(cx0):
        keep &= boxes[:, 0] > tile.x0 + tolerance
    if math.isfinite(cy0):
        keep &= boxes[:, 1] > tile.y0 + tolerance
    if math.isfinite(cx1):
        keep &= boxes[:, 2] < tile.x1 - tolerance
    if math.isfinite(cy1):
        keep &= boxes[:, 3] < tile.y1 - tolerance
    fields = {name: value[keep] for name, value in detections.get_fields().items() if name != "pred_boxes"}
    return Instances(tuple(image_size), pred_boxes=Boxes(boxes[keep]), **fields)

