"""Merging the detections of one image across test scales (SNIPER_SPEC section 6).

Each scale is responsible for the object sizes in its valid range: a detection found at a scale
is kept iff ``lo < sqrt(area) <= hi`` with its box in original px. The survivors of all scales
are merged per class with Gaussian soft-NMS (or hard NMS) and the best ones kept.

Masks (Mask R-CNN): each scale's detections keep their mask head's ``M x M`` probabilities
(``pred_mask_rois``, relative to the box) instead of image-sized masks, so the range filter and the
merge select and reorder them with their boxes at a few KB per detection; only the merged
survivors are pasted into the image (:func:`paste_mask_rois`, as Detectron2's
``detector_postprocess`` does).
"""
from typing import Sequence

import torch
from detectron2.layers import batched_nms
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Instances, ROIMasks

from ..chips.valid_range import ValidRange
from .soft_nms import batched_soft_nms

__all__ = [
    "MASK_ROI_FIELD", "MERGE_METHODS", "filter_by_valid_range", "merge_scale_detections", "paste_mask_rois",
    "postprocess_keeping_mask_rois",
]

MERGE_METHODS = ("soft_nms", "nms")
# per-detection (N, 1, M, M) mask probabilities, relative to the detection's box, not yet pasted
MASK_ROI_FIELD = "pred_mask_rois"


def postprocess_keeping_mask_rois(results: Instances, height: int, width: int) -> Instances:
    """Detectron2's ``detector_postprocess`` to ``height`` x ``width`` original px (boxes rescaled
    and clipped, empty boxes dropped) except that ``pred_masks`` (the mask head's ``(N, 1, M, M)``
    probabilities) stay unpasted, as ``pred_mask_rois``, aligned with the kept boxes."""
    if results.has("pred_masks"):
        results.set(MASK_ROI_FIELD, results.pred_masks)
        results.remove("pred_masks")
    return detector_postprocess(results, height, width)


def paste_mask_rois(instances: Instances, mask_threshold: float = 0.5) -> Instances:
    """``pred_mask_rois`` pasted into the image at ``pred_boxes`` (original px) and thresholded:
    ``pred_masks`` ``(N, H, W)`` bool as Detectron2's ``detector_postprocess`` returns them. Returns
    ``instances`` unchanged when it has no ``pred_mask_rois``."""
    if not instances.has(MASK_ROI_FIELD):
        return instances
    rois = instances.get(MASK_ROI_FIELD)
    instances.remove(MASK_ROI_FIELD)
    height, width = instances.image_size
    instances.pred_masks = ROIMasks(rois[:, 0, :, :]).to_bitmasks(
        instances.pred_boxes, height, width, mask_threshold
    ).tensor
    return instances


def filter_by_valid_range(instances: Instances, valid_range: ValidRange) -> Instances:
    """Detections whose ``pred_boxes`` have ``lo < sqrt(area) <= hi``, boxes in original px."""
    size = instances.pred_boxes.area().clamp(min=0).sqrt()
    return instances[valid_range.contains_test(size)]


def merge_scale_detections(
    per_scale: Sequence[Instances],
    valid_ranges: Sequence[ValidRange],
    *,
    method: str = "soft_nms",
    soft_nms_sigma: float = 0.55,
    nms_thresh: float = 0.5,
    score_thresh: float = 0.001,
    max_detections: int = 200,
) -> Instances:
    """Merge one image's detections from every test scale.

    Args:
        per_scale: one ``Instances`` per scale (``pred_boxes`` in original px, ``scores``,
            ``pred_classes``, any further per-detection fields such as ``pred_mask_rois``), all with
            the image's original size.
        valid_ranges: one range per scale, sqrt(area) in original px.
        method: ``"soft_nms"`` (Gaussian, decay ``exp(-IoU^2 / soft_nms_sigma)``) or ``"nms"``
            (hard NMS at IoU ``nms_thresh``), within each class.
        score_thresh: detections scoring below this (after soft-NMS decay) are dropped.
        max_detections: detections kept, best first.

    Returns:
        ``Instances`` with the fields of the inputs, sorted by score, highest first; scores are
        the decayed ones with soft-NMS.
    """
    if len(per_scale) != len(valid_ranges):
        raise ValueError(
            f"Got detections for {len(per_scale)} scales but {len(valid_ranges)} valid ranges; "
            "give one valid range per test scale."
        )
    if method not in MERGE_METHODS:
        raise ValueError(f"Unknown merge method {method!r}; use one of {MERGE_METHODS}.")
    merged = Instances.cat([filter_by_valid_range(d, r) for d, r in zip(per_scale, valid_ranges)])
    boxes, scores, classes = merged.pred_boxes.tensor, merged.scores, merged.pred_classes
    if method == "soft_nms":
        keep, kept_scores = batched_soft_nms(
            boxes,
            scores,
            classes,
            sigma=soft_nms_sigma,
            score_thresh=score_thresh,
            max_keep=max_detections,
        )
        merged = merged[keep]
        merged.scores = kept_scores
        return merged
    candidates = torch.nonzero(scores >= score_thresh).squeeze(1)
    keep = batched_nms(boxes[candidates], scores[candidates], classes[candidates], nms_thresh)
    return merged[candidates[keep[:max_detections]]]
