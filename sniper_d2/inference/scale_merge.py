"""Merging the detections of one image across test scales (SNIPER_SPEC section 6).

Each scale is responsible for the object sizes in its valid range: a detection found at a scale
is kept iff ``lo < sqrt(area) <= hi`` with its box in original px. The survivors of all scales
are merged per class with Gaussian soft-NMS (or hard NMS) and the best ones kept.
"""
from typing import Sequence

import torch
from detectron2.layers import batched_nms
from detectron2.structures import Instances

from ..chips.valid_range import ValidRange
from .soft_nms import batched_soft_nms

__all__ = ["MERGE_METHODS", "filter_by_valid_range", "merge_scale_detections"]

MERGE_METHODS = ("soft_nms", "nms")


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
            ``pred_classes``, any further per-detection fields such as ``pred_masks``), all with
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
