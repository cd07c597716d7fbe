"""``SniperRPN``: Detectron2's RPN with SNIPER's anchor labels (where anchors are ignored).

Inside a chip, only valid boxes are objects the RPN must find. Invalid boxes (out of the
chip's valid range, assigned to another chip, or crowd) are ignore regions: an anchor that
overlaps one by more than ``cfg.SNIPER.TRAIN.RPN_INVALID_IOU_THRESH`` IoU is neither positive
nor negative, even if it matched a valid box. Plain ``Instances`` targets train as stock RPN.
"""
from typing import List, Tuple

import torch
from detectron2.config import configurable
from detectron2.modeling import PROPOSAL_GENERATOR_REGISTRY
from detectron2.modeling.proposal_generator import RPN
from detectron2.modeling.sampling import subsample_labels
from detectron2.structures import Boxes, Instances, pairwise_iou
from detectron2.utils.memory import retry_if_cuda_oom

from .chip_targets import any_chip_targets, box_flags

__all__ = ["SniperRPN"]


@PROPOSAL_GENERATOR_REGISTRY.register()
class SniperRPN(RPN):
    """RPN whose anchor labels ignore anchors near invalid boxes (``MODEL.PROPOSAL_GENERATOR.NAME:
    SniperRPN``)."""

    @configurable
    def __init__(self, *, invalid_iou_thresh: float = 0.3, **kwargs):
        """
        Args:
            invalid_iou_thresh: an anchor whose IoU with any invalid box is above this is ignored.
            kwargs: the arguments of Detectron2's ``RPN``.
        """
        super().__init__(**kwargs)
        if not 0.0 <= invalid_iou_thresh <= 1.0:
            raise ValueError(
                f"SNIPER.TRAIN.RPN_INVALID_IOU_THRESH is {invalid_iou_thresh}: it is an IoU, "
                "set it in [0, 1] (SNIPER uses 0.3)."
            )
        self.invalid_iou_thresh = invalid_iou_thresh

    @classmethod
    def from_config(cls, cfg, input_shape):
        if "SNIPER" not in cfg:
            raise KeyError(
                "SniperRPN reads cfg.SNIPER.TRAIN.RPN_INVALID_IOU_THRESH, but the config has no "
                "SNIPER node: call sniper_d2.add_sniper_config(cfg) before merging config files."
            )
        ret = super().from_config(cfg, input_shape)
        ret["invalid_iou_thresh"] = cfg.SNIPER.TRAIN.RPN_INVALID_IOU_THRESH
        return ret

    @torch.no_grad()
    def label_and_sample_anchors(
        self, anchors: List[Boxes], gt_instances: List[Instances]
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Per image: labels in {-1, 0, 1} for all anchors, and the matched valid box of each
        (chip px XYXY; meaningful where the label is 1). Same contract as ``RPN``'s."""
        if not any_chip_targets(gt_instances):
            return super().label_and_sample_anchors(anchors, gt_instances)
        anchors = Boxes.cat(anchors)
        labels, matched_boxes = [], []
        for image_index, targets in enumerate(gt_instances):
            valid, _ = box_flags(targets, image_index)
            labels_i, matched_boxes_i = self._label_chip_anchors(
                anchors, targets.gt_boxes[valid], targets.gt_boxes[~valid], targets.image_size
            )
            labels.append(labels_i)
            matched_boxes.append(matched_boxes_i)
        return labels, matched_boxes

    def _label_chip_anchors(
        self, anchors: Boxes, valid_boxes: Boxes, invalid_boxes: Boxes, image_size
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Match against the valid boxes, ignore anchors near invalid ones, then subsample."""
        match_quality = retry_if_cuda_oom(pairwise_iou)(valid_boxes, anchors)
        matched_idxs, labels = retry_if_cuda_oom(self.anchor_matcher)(match_quality)
        labels = labels.to(device=valid_boxes.device)
        del match_quality

        if len(invalid_boxes) > 0:
            invalid_iou = retry_if_cuda_oom(pairwise_iou)(invalid_boxes, anchors)
            near_invalid = (invalid_iou > self.invalid_iou_thresh).any(dim=0)
            labels[near_invalid.to(device=labels.device)] = -1
        if self.anchor_boundary_thresh >= 0:
            labels[~anchors.inside_box(image_size, self.anchor_boundary_thresh)] = -1

        positive_idxs, negative_idxs = subsample_labels(
            labels, self.batch_size_per_image, self.positive_fraction, 0
        )
        labels.fill_(-1)
        labels[positive_idxs] = 1
        labels[negative_idxs] = 0

        if len(valid_boxes) == 0:
            matched_boxes = torch.zeros_like(anchors.tensor)
        else:
            matched_boxes = valid_boxes[matched_idxs].tensor
        return labels, matched_boxes
