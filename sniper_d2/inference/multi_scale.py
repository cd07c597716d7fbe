"""SNIPER test-time inference: the whole image at every test scale, merged (SNIPER_SPEC section 6).

:class:`SniperMultiScaleInference` wraps a trained Detectron2 ``GeneralizedRCNN``. It takes the
usual test inputs at original resolution (see :func:`build_test_mapper`), runs the model on the
whole batch once per test scale, keeps at each scale only the detections in that scale's valid
range and merges the scales per class with soft-NMS. Its outputs are Detectron2's standard
``[{"instances": Instances}]`` in original px, so ``inference_on_dataset`` and ``COCOEvaluator``
work unchanged.

Per scale, the authors keep every box-head detection above the score threshold (no per-scale
NMS, no cap) and 300 RPN proposals (SNIPER_SPEC section 6): with ``raw_scale_detections`` the
wrapper sets the model's box predictors and RPN accordingly for its own calls and restores them
afterwards, so the wrapped model still behaves as configured when called directly.

With ``tile_size`` (``SNIPER.TEST.TILE_SIZE``), a scale whose scaled image is large is run tile
by tile instead (:mod:`sniper_d2.inference.tiling`): memory stays bounded by one detector call on
at most :data:`PIECE_BATCH_PX` px of tiles of one padded size (one tile, if larger).

Mask R-CNN models (``MODEL.MASK_ON``): each scale's detections keep their mask head's ``M x M``
probabilities through the range filter and the merge; the merged detections' masks are pasted at
the end, ``pred_masks`` ``(N, H, W)`` in original px as Detectron2 returns them (not with tiling).

AutoFocus (``SNIPER.TEST.AUTOFOCUS.ENABLED``, :mod:`sniper_d2.inference.autofocus`): the scales run
coarsest first through ``model.inference_with_focus``; a scale with ``PRUNE`` runs only on the
FocusChips of the next coarser scale's FocusPixel map, each chip cut from the original image and
resized alone (tiled if large), chips of one padded size sharing detector calls, keeping the
detections no chip edge inside the image cuts. Masks work as without AutoFocus; keypoints are
refused. ``pixel_counts`` and ``last_focus_chips`` say, in every mode, how many pixels ran and
where; ``last_focus_maps`` keeps each scale's FocusPixel map.
"""
import contextlib
import logging
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import DatasetMapper
from detectron2.modeling.roi_heads import FastRCNNOutputLayers
from detectron2.structures import Instances
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel

from ..chips.scales import ScaleLike, ScaleSpec, parse_scale, parse_scales, scaled_size
from ..chips.valid_range import parse_valid_ranges
from .autofocus import FocusMap, PixelCounts, check_autofocus_model, check_autofocus_settings
from .scale_merge import (
    MERGE_METHODS, filter_by_valid_range, merge_scale_detections, paste_mask_rois, postprocess_keeping_mask_rois,
)
from .tiling import (
    BORDER_TOLERANCE, Tile, check_tile_settings, crop_tile_input, owned_detections, region_tile, region_tile_grid,
    tiling_applies,
)

__all__ = ["SniperMultiScaleInference", "build_inference_model", "build_test_mapper", "scale_test_inputs"]

logger = logging.getLogger(__name__)

# most padded px of one detector call on pieces (FocusChips, tiles): about a 1333 x 800 image
PIECE_BATCH_PX = 1 << 20


@dataclass(frozen=True)
class _Piece:
    """One detector input cut from a test image at one scale (a FocusChip, a tile, or a tile of
    a FocusChip): input ``position`` in the batch, its :class:`Tile` (original px), the scale's
    ``factor`` for that image (scaled px per original px), ``scaled_size`` ``(height, width)`` px
    it is resized to, and its RPN ``budget`` ``(pre-NMS top-k per level, post-NMS top-k)`` (None:
    the scale's own)."""

    position: int
    tile: Tile
    factor: float
    scaled_size: Tuple[int, int]
    budget: Optional[Tuple[int, int]]


def _describe(inputs: Dict, position: int) -> str:
    """How an error message names one test input."""
    for key in ("file_name", "image_id"):
        if key in inputs:
            return f"test image {key}={inputs[key]!r}"
    return f"test input #{position} of the batch"


def _resize_image(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """CHW image resized to ``height`` x ``width`` px (bilinear, antialiased when shrinking, like
    PIL's resize that Detectron2's ResizeShortestEdge uses); float, values in the input's range.
    Returned unchanged (not even converted) when it already has that size."""
    if tuple(image.shape[-2:]) == (height, width):
        return image
    resized = F.interpolate(
        image[None].float(), size=(height, width), mode="bilinear", align_corners=False, antialias=True
    )
    return resized[0]


def _original_size(inputs: Dict, position: int):
    """(height, width) in original px of one test input, checking its image."""
    image = inputs.get("image")
    if not isinstance(image, torch.Tensor) or image.dim() != 3 or min(image.shape[1:]) < 1:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(
            f"{_describe(inputs, position)}: 'image' must be a CHW tensor with at least "
            f"1x1 px (as DatasetMapper produces), got {shape}."
        )
    height = int(inputs.get("height", image.shape[1]))
    width = int(inputs.get("width", image.shape[2]))
    if height < 1 or width < 1:
        raise ValueError(
            f"{_describe(inputs, position)}: 'height'/'width' must be positive original px, "
            f"got {height}x{width}."
        )
    return height, width


def scale_test_inputs(
    batched_inputs: Sequence[Dict], scale: ScaleLike, *, device: Optional[torch.device] = None
) -> List[Dict]:
    """Detectron2 test inputs resized to one test scale, for ``model.inference(...,
    do_postprocess=True)`` (or a ``ProposalNetwork``) to return boxes in original px.

    Args:
        batched_inputs: test inputs, each with ``"image"`` (CHW tensor, the model's input
            format) and optionally ``"height"``/``"width"`` (original px; default: the image's
            size). The scale factor follows ``"height"``/``"width"``, not the image's own size.
        scale: a :class:`ScaleSpec`, or a factor / ``"longest:<px>"`` / ``(short, max_long)``.
        device: where to resize (e.g. the model's device); default: where each image is.

    Returns:
        New dicts (the inputs are not modified), one per input, with its other keys: ``"image"``
        resized to the scaled size (float, unless already that size), ``"height"``/``"width"``
        the original size in px.
    """
    scale = parse_scale(scale)
    scaled = []
    for position, inputs in enumerate(batched_inputs):
        height, width = _original_size(inputs, position)
        new_width, new_height = scaled_size(width, height, scale.factor(width, height))
        image = inputs["image"] if device is None else inputs["image"].to(device)
        image = _resize_image(image, new_height, new_width)
        scaled.append({**inputs, "image": image, "height": height, "width": width})
    return scaled


class SniperMultiScaleInference(nn.Module):
    """Multi-scale inference with per-scale valid ranges and a soft-NMS merge.

    For each test scale, every image of the batch is resized once (factor computed from its
    original size, the input's ``"height"``/``"width"``) and the batch goes through
    ``model.inference(..., do_postprocess=True)``, which returns boxes in original px. As in
    any Detectron2 batch, the images of one batch are padded to a common size, so images of very
    different shapes are cheaper one per batch (Detectron2's test loader default).

    Interplay with Detectron2's own test settings: the box predictor still applies
    ``MODEL.ROI_HEADS.SCORE_THRESH_TEST``, ``MODEL.ROI_HEADS.NMS_THRESH_TEST`` (hard NMS) and
    ``TEST.DETECTIONS_PER_IMAGE`` at every scale, *before* the valid-range filter and the merge
    here. Detections they drop never reach the merge, so for SNIPER-style results lower
    ``SCORE_THRESH_TEST`` (e.g. to ``SNIPER.TEST.SCORE_THRESH``) and raise ``TEST.DETECTIONS_PER_IMAGE``
    (per scale, before the range filter; e.g. to ``SNIPER.TEST.DETECTIONS_PER_IMAGE``).
    ``detections_per_image`` here caps the merged result.

    Attributes read after a call (every mode):

    * ``pixel_counts``: :class:`~sniper_d2.inference.autofocus.PixelCounts`, running totals of
      scaled px run per scale against the full pyramid's, and images; ``reset_pixel_counts()``
      starts them over.
    * ``last_focus_chips``: for each input of the last call, for each scale (index of
      ``scales``), the regions of the original image the scale ran on, int64 ``(K, 4)``
      ``(x0, y0, x1, y1)`` original px, end exclusive: the FocusChips of a pruned AutoFocus scale
      (``(0, 4)``: none, the scale did not run), ``[[0, 0, width, height]]`` for a scale run on
      the whole image (tiled or not; every scale without AutoFocus).
    * ``last_focus_maps``: for each input of the last call, for each scale, its
      :class:`~sniper_d2.inference.autofocus.FocusMap` over the whole image at that scale (cells
      NaN where the scale did not run; all NaN for a pruned scale without FocusChips), from which
      the next finer scale's FocusChips come; None for every scale without AutoFocus.
    """

    @configurable
    def __init__(
        self,
        model: nn.Module,
        scales: Sequence,
        valid_ranges: Sequence,
        *,
        merge: str = "soft_nms",
        soft_nms_sigma: float = 0.55,
        nms_thresh: float = 0.5,
        score_thresh: float = 0.001,
        detections_per_image: int = 200,
        range_reference=None,
        raw_scale_detections: bool = False,
        proposals_per_scale: int = 0,
        tile_size: int = 0,
        tile_overlap: int = 256,
        tile_above: int = 0,
        autofocus: bool = False,
        focus_prune: Sequence[bool] = (),
        focus_thresholds: Sequence[float] = (),
        focus_dilations: Sequence[int] = (),
        focus_min_chip_sizes: Sequence[int] = (),
        focus_min_chip_proposals: int = 0,
    ):
        """
        Args:
            model: a Detectron2 ``GeneralizedRCNN`` (or anything with its ``inference`` and
                ``device``), possibly wrapped in DistributedDataParallel.
            scales: test scales, each a factor, ``"longest:<px>"`` or ``(short, max_long)``.
            valid_ranges: one ``(lo, hi)`` per scale, sqrt(area) in original px, -1 = unbounded;
                a detection is kept at a scale iff ``lo < sqrt(area) <= hi``.
            merge: ``"soft_nms"`` (Gaussian) or ``"nms"``, per class across scales.
            soft_nms_sigma: Gaussian soft-NMS decay ``exp(-IoU^2 / sigma)``.
            nms_thresh: IoU threshold of the ``"nms"`` merge.
            score_thresh: merged detections scoring below this are dropped.
            detections_per_image: detections kept per image after the merge.
            range_reference: frame of ``valid_ranges``: None = original px; a scale = px of
                the image resized to it (``SNIPER.RANGE_REFERENCE``).
            raw_scale_detections: per scale, no NMS, no cap, score threshold ``score_thresh``
                (the authors'); False: the model's own post-processing at every scale.
            proposals_per_scale: RPN proposals per image and scale (per tile when tiled); 0: the
                model's own.
            tile_size: 0: whole images at every scale. Else a scale whose scaled image's longer
                side exceeds ``tile_above`` px runs in square tiles of at most this many scaled
                px (:mod:`sniper_d2.inference.tiling`), tiles of one padded size sharing detector calls
                of at most :data:`PIECE_BATCH_PX` px (one tile, if larger).
            tile_overlap: least overlap of neighbouring tiles, scaled px; objects up to about
                this size are found whole in some tile.
            tile_above: see ``tile_size``; 0: tile every scale (an image that fits in one tile
                gives one tile, the whole image).
            autofocus: AutoFocus coarse-to-fine inference (``SNIPER.TEST.AUTOFOCUS.ENABLED``); needs
                a model with ``inference_with_focus`` and ``focus_stride`` (``SniperAutoFocusRCNN``).
                The focus lists below then give one value per scale (finest first) and say how
                that scale's FocusChips come from the next coarser scale's map.
            focus_prune: per scale, run it only on FocusChips (True) or on the whole image;
                the coarsest (last) must be False (``SNIPER.TEST.AUTOFOCUS.PRUNE``).
            focus_thresholds: per scale, FocusPixel probability threshold (``...THRESHOLDS``).
            focus_dilations: per scale, dilation kernel side, cells (``...DILATIONS``).
            focus_min_chip_sizes: per scale, least FocusChip side, cells of the coarser scale's
                map (``...MIN_CHIP_SIZES``).
            focus_min_chip_proposals: 0: every FocusChip gets the scale's RPN proposals (per
                image: ``proposals_per_scale`` or the model's) and pre-NMS candidates
                (``MODEL.RPN.PRE_NMS_TOPK_TEST`` per level). Else a FocusChip gets both in
                proportion to its share of the scaled image's px, at least this many
                (``SNIPER.TEST.AUTOFOCUS.MIN_CHIP_PROPOSALS``): the RPN's and box head's cost then
                follow the chips' area instead of their number.
        """
        super().__init__()
        if isinstance(model, DistributedDataParallel):
            model = model.module
        if not (callable(getattr(model, "inference", None)) and hasattr(model, "device")):
            raise TypeError(
                "SniperMultiScaleInference wraps a Detectron2 GeneralizedRCNN (a model with "
                f"inference(batched_inputs, do_postprocess=True) and device); got {type(model).__name__}."
            )
        if getattr(model, "proposal_generator", True) is None:
            raise ValueError(
                "Multi-scale inference needs a model with its own proposal generator; precomputed "
                "proposals (MODEL.LOAD_PROPOSALS) are not rescaled per test scale."
            )
        if merge not in MERGE_METHODS:
            raise ValueError(f"SNIPER.TEST.MERGE is {merge!r}; use one of {MERGE_METHODS}.")
        if not soft_nms_sigma > 0:
            raise ValueError(f"SNIPER.TEST.SOFT_NMS_SIGMA must be > 0, got {soft_nms_sigma}.")
        if not 0 <= nms_thresh <= 1:
            raise ValueError(f"SNIPER.TEST.NMS_THRESH must be in [0, 1], got {nms_thresh}.")
        if not score_thresh >= 0:
            raise ValueError(f"SNIPER.TEST.SCORE_THRESH must be >= 0, got {score_thresh}.")
        if int(detections_per_image) != detections_per_image or detections_per_image <= 0:
            raise ValueError(
                f"SNIPER.TEST.DETECTIONS_PER_IMAGE must be a positive integer, got {detections_per_image}."
            )
        self.model = model
        self.scales: List[ScaleSpec] = list(parse_scales(scales))
        self.valid_ranges = list(
            parse_valid_ranges(valid_ranges, len(self.scales), key="SNIPER.TEST.VALID_RANGES")
        )
        self.range_reference = parse_scale(range_reference) if range_reference else None
        if int(proposals_per_scale) != proposals_per_scale or proposals_per_scale < 0:
            raise ValueError(f"SNIPER.TEST.PROPOSALS_PER_SCALE must be an integer >= 0, got {proposals_per_scale}.")
        self.raw_scale_detections = bool(raw_scale_detections)
        self.proposals_per_scale = int(proposals_per_scale)
        if self.raw_scale_detections and not self._box_predictors():
            raise ValueError(
                "SNIPER.TEST.RAW_SCALE_DETECTIONS needs a model whose ROI heads use Detectron2's "
                "FastRCNNOutputLayers (test_nms_thresh / test_score_thresh / test_topk_per_image); "
                f"{type(model).__name__} has none: set it to False."
            )
        check_tile_settings(tile_size, tile_overlap, tile_above)
        heads = getattr(model, "roi_heads", None)
        if tile_size and (getattr(heads, "mask_on", False) or getattr(heads, "keypoint_on", False)):
            raise ValueError(
                "SNIPER.TEST.TILE_SIZE: tiled inference stitches box detections only, and this model also "
                "predicts masks or keypoints (MODEL.MASK_ON / MODEL.KEYPOINT_ON): set TILE_SIZE to 0."
            )
        self.tile_size, self.tile_overlap, self.tile_above = int(tile_size), int(tile_overlap), int(tile_above)
        self.mask_on = bool(getattr(heads, "mask_on", False))
        self.autofocus = bool(autofocus)
        if self.autofocus:
            self.focus_stride = check_autofocus_model(model)
            if getattr(heads, "keypoint_on", False):
                raise ValueError(
                    "SNIPER.TEST.AUTOFOCUS.ENABLED: FocusChips carry box and mask detections back to the image, "
                    "and this model also predicts keypoints (MODEL.KEYPOINT_ON): set one of them off."
                )
            self.focus_prune, self.focus_thresholds, self.focus_dilations, self.focus_min_chip_sizes = (
                check_autofocus_settings(len(self.scales), focus_prune, focus_thresholds, focus_dilations,
                                         focus_min_chip_sizes)
            )
        if isinstance(focus_min_chip_proposals, bool) or int(focus_min_chip_proposals) != focus_min_chip_proposals \
                or focus_min_chip_proposals < 0:
            raise ValueError(
                f"SNIPER.TEST.AUTOFOCUS.MIN_CHIP_PROPOSALS must be an integer >= 0, got {focus_min_chip_proposals!r}."
            )
        self.focus_min_chip_proposals = int(focus_min_chip_proposals)
        backbone = getattr(model, "backbone", None)
        shapes = backbone.output_shape() if callable(getattr(backbone, "output_shape", None)) else {}
        # the coarsest feature map's stride, px: tiles start on its grid where the factor allows
        self.feature_stride = max((shape.stride or 1 for shape in shapes.values()), default=1)
        self._overlap_warned = set()
        self.merge = merge
        self.soft_nms_sigma = float(soft_nms_sigma)
        self.nms_thresh = float(nms_thresh)
        self.score_thresh = float(score_thresh)
        self.detections_per_image = int(detections_per_image)
        self.reset_pixel_counts()
        self.last_focus_chips: List[List[np.ndarray]] = []
        self.last_focus_maps: List[List[Optional[FocusMap]]] = []
        self.train(model.training)

    @classmethod
    def from_config(cls, cfg, model):
        test = cfg.SNIPER.TEST
        return {
            "model": model,
            "scales": test.SCALES,
            "valid_ranges": test.VALID_RANGES,
            "merge": test.MERGE,
            "soft_nms_sigma": test.SOFT_NMS_SIGMA,
            "nms_thresh": test.NMS_THRESH,
            "score_thresh": test.SCORE_THRESH,
            "detections_per_image": test.DETECTIONS_PER_IMAGE,
            "range_reference": cfg.SNIPER.RANGE_REFERENCE,
            "raw_scale_detections": test.RAW_SCALE_DETECTIONS,
            "proposals_per_scale": test.PROPOSALS_PER_SCALE,
            "tile_size": test.TILE_SIZE,
            "tile_overlap": test.TILE_OVERLAP,
            "tile_above": test.TILE_ABOVE,
            "autofocus": test.AUTOFOCUS.ENABLED,
            "focus_prune": test.AUTOFOCUS.PRUNE,
            "focus_thresholds": test.AUTOFOCUS.THRESHOLDS,
            "focus_dilations": test.AUTOFOCUS.DILATIONS,
            "focus_min_chip_sizes": test.AUTOFOCUS.MIN_CHIP_SIZES,
            "focus_min_chip_proposals": test.AUTOFOCUS.MIN_CHIP_PROPOSALS,
        }

    def reset_pixel_counts(self) -> None:
        """Start ``pixel_counts`` over (zero images, zero px at every scale)."""
        self.pixel_counts = PixelCounts.zeros(len(self.scales))

    def forward(self, batched_inputs: List[Dict]) -> List[Dict[str, Instances]]:
        """Detections for each input, ``[{"instances": Instances}]`` in original px.

        Args:
            batched_inputs: Detectron2 test inputs, each with ``"image"`` (CHW, the model's
                input format; normally at original resolution) and ``"height"``/``"width"``
                (original px, default: the image's size).
        """
        if torch.jit.is_tracing() or torch.jit.is_scripting():
            raise RuntimeError(
                "SniperMultiScaleInference cannot be traced or scripted: the number of detections per "
                "scale, the range filter and the soft-NMS merge depend on the data, so a traced graph "
                "would only fit the image it was traced with. Export the single-scale model instead "
                "(detectron2.export.TracingAdapter or scripting_with_instances on cfg's model; the "
                "SNIPER heads script like Detectron2's) and run the pyramid and merge in Python with "
                "sniper_d2.build_inference_model(cfg, model), or deploy single-scale "
                "(SNIPER.TEST.MULTI_SCALE False)."
            )
        if self.model.training:
            raise RuntimeError(
                "SniperMultiScaleInference runs inference only: call .eval() on it (or the model) first."
            )
        num_scales = len(self.scales)
        per_scale: List[List[Optional[Instances]]] = [[] for _ in range(num_scales)]
        self.last_focus_chips = [
            [np.zeros((0, 4), dtype=np.int64) for _ in range(num_scales)] for _ in batched_inputs
        ]
        self.last_focus_maps = [[None] * num_scales for _ in batched_inputs]
        with torch.no_grad(), self._scale_postprocessing():
            focus_maps: List[Optional[FocusMap]] = []  # of the last scale run, per input (AutoFocus)
            for scale_index in reversed(range(num_scales)) if self.autofocus else range(num_scales):
                chips = None
                if self.autofocus and self.focus_prune[scale_index]:
                    chips = self._focus_chips(batched_inputs, scale_index, focus_maps)
                per_scale[scale_index], focus_maps = self._scale_detections(batched_inputs, scale_index, chips)
            self.pixel_counts.images += len(batched_inputs)
            results = []
            for i, inputs in enumerate(batched_inputs):
                # the coarsest scale always runs on the whole image: a skipped scale's empty
                # detections take their fields from it
                coarsest = per_scale[-1][i]
                detections = [d[i] if d[i] is not None else coarsest[:0] for d in per_scale]
                merged = merge_scale_detections(
                    detections,
                    self._image_ranges(inputs, i),
                    method=self.merge,
                    soft_nms_sigma=self.soft_nms_sigma,
                    nms_thresh=self.nms_thresh,
                    score_thresh=self.score_thresh,
                    max_detections=self.detections_per_image,
                )
                results.append({"instances": paste_mask_rois(merged)})
            return results

    def _focus_chips(
        self, batched_inputs: List[Dict], scale_index: int, focus_maps: List[FocusMap]
    ) -> List[np.ndarray]:
        """Per input, the FocusChips of the pruned scale ``scale_index``, int64 ``(K, 4)``
        original px, from ``focus_maps``: each input's map at the next coarser scale, with this
        scale's threshold, dilation and least chip size."""
        return [
            focus_map.chips(self.focus_thresholds[scale_index], self.focus_dilations[scale_index],
                            self.focus_min_chip_sizes[scale_index], _original_size(inputs, i))
            for i, (focus_map, inputs) in enumerate(zip(focus_maps, batched_inputs))
        ]

    def _scale_detections(
        self, batched_inputs: List[Dict], scale_index: int, chips: Optional[List[np.ndarray]] = None
    ) -> Tuple[List[Optional[Instances]], List[Optional[FocusMap]]]:
        """One scale's detections of every input, original px (None: the scale did not run), and
        with AutoFocus its FocusPixel map of every input.

        ``chips``: None to run every input whole (the inputs that are not tiled in one batch, the
        tiles of the others by :meth:`_region_detections`); else per input its FocusChips, ``(K, 4)``
        original px, run by :meth:`_region_detections`."""
        scale = self.scales[scale_index]
        detections: List[Optional[Instances]] = [None] * len(batched_inputs)
        focus_maps: List[Optional[FocusMap]] = [None] * len(batched_inputs)
        whole, regions_per_input = [], {}
        for position, inputs in enumerate(batched_inputs):
            height, width = _original_size(inputs, position)
            factor = scale.factor(width, height)
            self.pixel_counts.full_pyramid[scale_index] += math.prod(scaled_size(width, height, factor))
            if self.autofocus:
                focus_maps[position] = FocusMap(width, height, factor, self.focus_stride)
                self.last_focus_maps[position][scale_index] = focus_maps[position]
            regions = np.array([[0, 0, width, height]], dtype=np.int64) if chips is None else chips[position]
            self.last_focus_chips[position][scale_index] = regions
            if chips is None and not tiling_applies(width, height, factor, self.tile_size, self.tile_above):
                whole.append(position)
            elif len(regions):
                regions_per_input[position] = regions
        if regions_per_input:
            found = self._region_detections(batched_inputs, scale_index, regions_per_input, focus_maps,
                                            focus_chips=chips is not None)
            for position, instances in found.items():
                detections[position] = instances
        if whole:
            scaled_inputs = scale_test_inputs([batched_inputs[i] for i in whole], scale, device=self.model.device)
            outputs, cells = self._detect(scaled_inputs, scale_index)
            for position, output, region_cells, inputs in zip(whole, outputs, cells, scaled_inputs):
                detections[position] = output
                if region_cells is not None:
                    image_region = region_tile((0, 0, inputs["width"], inputs["height"]),
                                               (inputs["height"], inputs["width"]))
                    focus_maps[position].paste(image_region, region_cells, tuple(inputs["image"].shape[-2:]))
        return detections, focus_maps

    def _region_detections(
        self, batched_inputs: List[Dict], scale_index: int, regions_per_input: Dict[int, np.ndarray],
        focus_maps: List[Optional[FocusMap]], focus_chips: bool = False,
    ) -> Dict[int, Instances]:
        """Detections at one scale from regions of the original images (per input position,
        ``(K, 4)`` original px: the whole image when tiled, or FocusChips), piece by piece
        (:class:`_Piece`: a region, or a tile of it where its scaled copy is large): each is cut
        from its image and resized alone, and keeps its own detections in the scale's valid range,
        those no edge inside the image cuts. Pieces that Detectron2 pads to one size and that have
        one RPN budget share detector calls (:meth:`_piece_batches`): a piece's detections are
        those of running it alone, up to float rounding of batched convolutions. Their FocusPixel
        maps are pasted into ``focus_maps`` (AutoFocus). ``focus_chips``: the regions are FocusChips
        (RPN budget: :meth:`_chip_proposal_budget`). Returns, per position, its pieces' detections
        in original px, in region order."""
        pieces = self._pieces(batched_inputs, scale_index, regions_per_input, focus_chips)
        outputs: List[Optional[Instances]] = [None] * len(pieces)
        for batch in self._piece_batches(pieces):
            scaled_inputs = [
                scale_test_inputs([crop_tile_input(batched_inputs[piece.position]["image"], piece.tile)],
                                  ScaleSpec("factor", (piece.factor,)), device=self.model.device)[0]
                for piece in (pieces[i] for i in batch)
            ]
            with self._rpn_topk(pieces[batch[0]].budget):
                results, cells = self._detect(scaled_inputs, scale_index)
            for index, output, tile_cells in zip(batch, results, cells):
                piece = pieces[index]
                inputs = batched_inputs[piece.position]
                owned = owned_detections(output, piece.tile, _original_size(inputs, piece.position), piece.factor)
                outputs[index] = filter_by_valid_range(owned, self._image_ranges(inputs, piece.position)[scale_index])
                if tile_cells is not None:
                    focus_maps[piece.position].paste(piece.tile, tile_cells, piece.scaled_size)
        return {
            position: Instances.cat([out for out, piece in zip(outputs, pieces) if piece.position == position])
            for position in regions_per_input
        }

    def _pieces(
        self, batched_inputs: List[Dict], scale_index: int, regions_per_input: Dict[int, np.ndarray], focus_chips: bool
    ) -> List[_Piece]:
        """The pieces of :meth:`_region_detections`, input by input, region by region, tile by tile."""
        pieces = []
        for position, regions in regions_per_input.items():
            inputs = batched_inputs[position]
            height, width = _original_size(inputs, position)
            image = inputs["image"]
            if tuple(image.shape[1:]) != (height, width):
                raise ValueError(
                    f"{_describe(inputs, position)}: tiled inference (SNIPER.TEST.TILE_SIZE) and AutoFocus's "
                    f"FocusChips (SNIPER.TEST.AUTOFOCUS) cut regions from the image at original resolution, "
                    f"{height}x{width} px ('height'/'width'), but the image is {image.shape[1]}x{image.shape[2]} "
                    "px: use build_test_mapper(cfg), which does not resize."
                )
            factor = self.scales[scale_index].factor(width, height)
            full_px = math.prod(scaled_size(width, height, factor))
            for region in (region_tile(r, (height, width)) for r in regions.tolist()):
                tiles = [region]
                if tiling_applies(region.width, region.height, factor, self.tile_size, self.tile_above):
                    tiles = region_tile_grid(region, factor, self.tile_size, self.tile_overlap, self.feature_stride)
                if len(tiles) > 1:
                    largest_valid = self._image_ranges(inputs, position)[scale_index].hi * factor
                    self._warn_if_overlap_small(scale_index, largest_valid)
                for tile in tiles:
                    tile_width, tile_height = scaled_size(tile.width, tile.height, factor)
                    budget = self._chip_proposal_budget(tile_width * tile_height / full_px) if focus_chips else None
                    pieces.append(_Piece(position, tile, factor, (tile_height, tile_width), budget))
        return pieces

    def _piece_batches(self, pieces: List[_Piece]) -> List[List[int]]:
        """Indices of ``pieces`` in detector calls: pieces with one padded size (the backbone's
        ``size_divisibility`` / ``padding_constraints``, as Detectron2's ``ImageList`` pads a
        batch, so none is padded more than alone) and one RPN budget together, at most
        :data:`PIECE_BATCH_PX` padded px a call (at least one piece), in order of first appearance."""
        backbone = getattr(self.model, "backbone", None)
        constraints = getattr(backbone, "padding_constraints", None) or {}
        divisor = max(1, int(constraints.get("size_divisibility", getattr(backbone, "size_divisibility", 0)) or 1))
        square = int(constraints.get("square_size", 0) or 0)
        groups: Dict[tuple, List[List[int]]] = {}
        for index, piece in enumerate(pieces):
            padded = (square, square) if square else tuple(math.ceil(v / divisor) * divisor for v in piece.scaled_size)
            batches = groups.setdefault((padded, piece.budget), [[]])
            if batches[-1] and (len(batches[-1]) + 1) * math.prod(padded) > PIECE_BATCH_PX:
                batches.append([])
            batches[-1].append(index)
        return [batch for batches in groups.values() for batch in batches]

    def _detect(self, scaled_inputs: List[Dict], scale_index: int) -> Tuple[List[Instances], List]:
        """One detector call on inputs already resized: each input's detections in its
        ``height``/``width`` px (masks kept as ``pred_mask_rois``), and with AutoFocus each
        input's FocusPixel map (numpy, cells of ``focus_stride`` px; else None). Counts the px."""
        self.pixel_counts.processed[scale_index] += sum(x["image"].shape[-2] * x["image"].shape[-1]
                                                        for x in scaled_inputs)
        if self.autofocus:
            results, maps = self.model.inference_with_focus(scaled_inputs, do_postprocess=not self.mask_on)
            cells = [m.detach().float().cpu().numpy() for m in maps]
        else:
            results = self.model.inference(scaled_inputs, do_postprocess=not self.mask_on)
            cells = [None] * len(scaled_inputs)
        if self.mask_on:  # masks stay M x M until after the merge
            detections = [
                postprocess_keeping_mask_rois(result, x["height"], x["width"])
                for result, x in zip(results, scaled_inputs)
            ]
        else:
            detections = [output["instances"] for output in results]
        return detections, cells

    def _warn_if_overlap_small(self, scale_index: int, largest_valid: float) -> None:
        """Log once per scale when its valid range admits objects the tile overlap cannot hold
        whole (``largest_valid`` scaled px): those are dropped where tiles cut them."""
        whole_up_to = self.tile_overlap - 2 * BORDER_TOLERANCE
        if largest_valid <= whole_up_to or scale_index in self._overlap_warned:
            return
        self._overlap_warned.add(scale_index)
        admits = "any size" if largest_valid == float("inf") else f"up to {largest_valid:.0f} scaled px"
        logger.warning(
            f"Tiled test scale {self.scales[scale_index]}: its valid range admits objects of {admits}, but only "
            f"objects up to {whole_up_to:g} scaled px are sure to lie whole in a tile (SNIPER.TEST.TILE_OVERLAP "
            f"{self.tile_overlap}); larger ones are dropped where tiles cut them. Raise TILE_OVERLAP, or "
            "TILE_ABOVE so that this scale runs on whole images."
        )

    def _box_predictors(self) -> List[FastRCNNOutputLayers]:
        heads = getattr(self.model, "roi_heads", None)
        return [m for m in heads.modules() if isinstance(m, FastRCNNOutputLayers)] if heads is not None else []

    def _chip_proposal_budget(self, share: float) -> Optional[Tuple[int, int]]:
        """The RPN's ``(pre-NMS top-k per level, post-NMS top-k)`` for a FocusChip of ``share``
        (its scaled px over its whole scaled image's): the scale's own times ``share``, at least
        ``focus_min_chip_proposals`` (pre-NMS: at least the chip's post-NMS count), at most the
        scale's own. None (the scale's own) when ``focus_min_chip_proposals`` is 0."""
        rpn = getattr(self.model, "proposal_generator", None)
        pre, post = getattr(rpn, "pre_nms_topk", None), getattr(rpn, "post_nms_topk", None)
        if not self.focus_min_chip_proposals or not isinstance(pre, dict) or not isinstance(post, dict):
            return None
        chip_post = min(post[False], max(self.focus_min_chip_proposals, math.ceil(post[False] * share)))
        return min(pre[False], max(chip_post, math.ceil(pre[False] * share))), chip_post

    @contextlib.contextmanager
    def _rpn_topk(self, budget: Optional[Tuple[int, int]]):
        """Within: the RPN's test ``(pre_nms_topk, post_nms_topk)`` are ``budget`` (no change if None)."""
        if budget is None:
            yield
            return
        rpn = self.model.proposal_generator
        saved = rpn.pre_nms_topk, rpn.post_nms_topk
        rpn.pre_nms_topk, rpn.post_nms_topk = {**saved[0], False: budget[0]}, {**saved[1], False: budget[1]}
        try:
            yield
        finally:
            rpn.pre_nms_topk, rpn.post_nms_topk = saved

    @contextlib.contextmanager
    def _scale_postprocessing(self):
        """Within: the per-scale post-processing of ``raw_scale_detections`` / ``proposals_per_scale``."""
        saved = []
        if self.raw_scale_detections:
            for predictor in self._box_predictors():
                for name, value in (("test_nms_thresh", 1.0), ("test_score_thresh", self.score_thresh),
                                    ("test_topk_per_image", -1)):
                    saved.append((predictor, name, getattr(predictor, name)))
                    setattr(predictor, name, value)
        rpn = getattr(self.model, "proposal_generator", None)
        topk = getattr(rpn, "post_nms_topk", None)
        if self.proposals_per_scale and isinstance(topk, dict):
            saved.append((rpn, "post_nms_topk", topk))
            rpn.post_nms_topk = {**topk, False: self.proposals_per_scale}
        if hasattr(rpn, "in_multi_scale_test"):  # SniperRPN: no "single-scale test" warning inside
            saved.append((rpn, "in_multi_scale_test", rpn.in_multi_scale_test))
            rpn.in_multi_scale_test = True
        try:
            yield
        finally:
            for owner, name, value in reversed(saved):
                setattr(owner, name, value)

    def _image_ranges(self, inputs: Dict, position: int):
        """The valid ranges of one test input in its original px."""
        if self.range_reference is None:
            return self.valid_ranges
        height, width = _original_size(inputs, position)
        factor = self.range_reference.factor(width, height)
        return [r.scaled(1.0 / factor) for r in self.valid_ranges]


def build_test_mapper(cfg) -> DatasetMapper:
    """Test-time mapper matching ``build_inference_model``: images at original resolution
    (no resize; the wrapper resizes per scale) when ``SNIPER.TEST.MULTI_SCALE``, else
    Detectron2's default test mapper (``INPUT.MIN_SIZE_TEST`` / ``MAX_SIZE_TEST``)."""
    if cfg.SNIPER.TEST.MULTI_SCALE:
        return DatasetMapper(is_train=False, augmentations=[], image_format=cfg.INPUT.FORMAT)
    return DatasetMapper(cfg, is_train=False)


def build_inference_model(cfg, model: nn.Module) -> nn.Module:
    """The model to evaluate: ``SniperMultiScaleInference`` around ``model`` when
    ``SNIPER.TEST.MULTI_SCALE``, else ``model`` itself (Detectron2's single-scale inference; a
    warning says so when ``SNIPER.TEST.AUTOFOCUS.ENABLED``, which only the pyramid uses)."""
    if cfg.SNIPER.TEST.MULTI_SCALE:
        return SniperMultiScaleInference(cfg, model)
    if cfg.SNIPER.TEST.AUTOFOCUS.ENABLED:
        logger.warning(
            "SNIPER.TEST.AUTOFOCUS.ENABLED is True but SNIPER.TEST.MULTI_SCALE is False: the model runs "
            "single-scale (Detectron2's test at INPUT.MIN_SIZE_TEST), so AutoFocus does not apply. Set "
            "SNIPER.TEST.MULTI_SCALE True for the coarse-to-fine test."
        )
    return model
