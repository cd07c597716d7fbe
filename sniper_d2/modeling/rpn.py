"""``SniperRPN``: Detectron2's RPN with SNIPER's anchor labels (where anchors are ignored).

Inside a chip, only valid boxes are objects the RPN must find. Invalid boxes (out of the
chip's valid range, assigned to another chip, or crowd) are ignore regions: an anchor that
overlaps one by more than ``cfg.SNIPER.TRAIN.RPN_INVALID_IOU_THRESH`` IoU is neither positive
nor negative, even if it matched a valid box.

Proposals for the second stage are chip-aware too (SNIPER_SPEC section 4): in training, proposals
whose sqrt(area) (clipped to the chip) is outside the chip's valid range are ranked below every
in-range proposal *before* NMS and the top-k cuts (the authors give them score -1), so a chip's
box head receives up to ``POST_NMS_TOPK_TRAIN`` in-range proposals even when its best-scoring
proposals are out of range. Out-of-range proposals that still fill the last slots are ignored by
the SNIPER ROI heads. Plain ``Instances`` targets train as stock RPN.
"""
import logging
from typing import List, Tuple

import torch
from detectron2.config import configurable
from detectron2.modeling import PROPOSAL_GENERATOR_REGISTRY
from detectron2.modeling.proposal_generator import RPN
from detectron2.modeling.proposal_generator.proposal_utils import find_top_rpn_proposals
from detectron2.modeling.sampling import subsample_labels
from detectron2.structures import Boxes, Instances, pairwise_iou
from detectron2.utils.memory import retry_if_cuda_oom

from .chip_targets import any_chip_targets, box_flags, chip_valid_range, put_chip_metrics

__all__ = ["OUT_OF_RANGE_LOGIT_PENALTY", "SniperRPN"]

logger = logging.getLogger(__name__)

# Subtracted from the objectness logit of out-of-range training proposals: ranks them below all
# in-range ones (logits are far smaller in magnitude) and stays finite in fp16.
OUT_OF_RANGE_LOGIT_PENALTY = 1.0e4


@PROPOSAL_GENERATOR_REGISTRY.register()
class SniperRPN(RPN):
    """RPN whose anchor labels ignore anchors near invalid boxes (``MODEL.PROPOSAL_GENERATOR.NAME:
    SniperRPN``)."""

    @configurable
    def __init__(
        self, *, invalid_iou_thresh: float = 0.3, expects_chip_targets: bool = False,
        expects_multi_scale_test: bool = False, **kwargs,
    ):
        """
        Args:
            invalid_iou_thresh: an anchor whose IoU with any invalid box is above this is ignored.
            expects_chip_targets: the config trains on SNIPER chips (``SNIPER.TRAIN.ENABLED``):
                training batches of plain ``Instances`` then get a one-time warning (the data
                loader is not SNIPER's, so every box trains as valid).
            expects_multi_scale_test: the config tests on the SNIPER pyramid
                (``SNIPER.TEST.MULTI_SCALE``): inference outside the multi-scale wrapper (e.g.
                ``DefaultPredictor``, ``DefaultTrainer.test``) then gets a one-time warning.
            kwargs: the arguments of Detectron2's ``RPN``.
        """
        super().__init__(**kwargs)
        if not 0.0 <= invalid_iou_thresh <= 1.0:
            raise ValueError(
                f"SNIPER.TRAIN.RPN_INVALID_IOU_THRESH is {invalid_iou_thresh}: it is an IoU, "
                "set it in [0, 1] (SNIPER uses 0.3)."
            )
        self.invalid_iou_thresh = invalid_iou_thresh
        self.expects_chip_targets = expects_chip_targets
        self.expects_multi_scale_test = expects_multi_scale_test
        self.in_multi_scale_test = False  # set by the multi-scale wrapper around its scales
        self._warned_plain = False
        self._warned_single_scale = False
        self._proposal_ranges = None  # per image of the current training batch, chip px

    @classmethod
    def from_config(cls, cfg, input_shape):
        if "SNIPER" not in cfg:
            raise KeyError(
                "SniperRPN reads cfg.SNIPER.TRAIN.RPN_INVALID_IOU_THRESH, but the config has no "
                "SNIPER node: call sniper_d2.add_sniper_config(cfg) before merging config files."
            )
        ret = super().from_config(cfg, input_shape)
        ret["invalid_iou_thresh"] = cfg.SNIPER.TRAIN.RPN_INVALID_IOU_THRESH
        ret["expects_chip_targets"] = cfg.SNIPER.TRAIN.ENABLED
        ret["expects_multi_scale_test"] = cfg.SNIPER.TEST.MULTI_SCALE
        return ret

    def predict_proposals(
        self,
        anchors: List[Boxes],
        pred_objectness_logits: List[torch.Tensor],
        pred_anchor_deltas: List[torch.Tensor],
        image_sizes: List[Tuple[int, int]],
    ):
        """Detectron2's proposal selection (its ``find_top_rpn_proposals`` with the settings of
        ``RPN.predict_proposals``); for training chips, out-of-range proposals are first ranked
        last (:data:`OUT_OF_RANGE_LOGIT_PENALTY`), so NMS and the top-k cuts keep in-range ones.

        Detectron2's ``RPN.forward`` labels anchors (:meth:`label_and_sample_anchors`, which
        notes each chip's valid range) before it predicts proposals. Scriptable: the chip-aware
        ranking runs only in training."""
        if not torch.jit.is_scripting() and not self.training:
            self._warn_single_scale_test()
        with torch.no_grad():
            proposals = self._decode_proposals(anchors, pred_anchor_deltas)  # (N, R, 4) per level
            ranges_given = self.training and self._proposal_ranges is not None
            if ranges_given:
                pred_objectness_logits = self._rank_in_range_first(proposals, pred_objectness_logits, image_sizes)
            selected = find_top_rpn_proposals(
                proposals, pred_objectness_logits, image_sizes, self.nms_thresh, self.pre_nms_topk[self.training],
                self.post_nms_topk[self.training], self.min_box_size, self.training,
            )
            if ranges_given:
                self._record_in_range(selected)
            return selected

    @torch.jit.unused
    def _rank_in_range_first(
        self, proposals: List[torch.Tensor], logits: List[torch.Tensor], image_sizes: List[Tuple[int, int]]
    ) -> List[torch.Tensor]:
        """Per level, the logits with :data:`OUT_OF_RANGE_LOGIT_PENALTY` subtracted where a
        proposal is outside its chip's valid range."""
        return [
            torch.where(self._in_range(level, image_sizes), scores, scores - OUT_OF_RANGE_LOGIT_PENALTY)
            for level, scores in zip(proposals, logits)
        ]

    @torch.jit.unused
    def _record_in_range(self, selected: List[Instances]) -> None:
        """Event metric of the selected proposals; forgets this batch's ranges."""
        put_chip_metrics({"in_range_proposals_per_chip": [
            int((p.objectness_logits > -OUT_OF_RANGE_LOGIT_PENALTY / 2).sum()) for p in selected
        ]})
        self._proposal_ranges = None

    def _in_range(self, proposals: torch.Tensor, image_sizes) -> torch.Tensor:
        """Bool (N, R) for one level's decoded proposals (N, R, 4): clipped to its image, the
        proposal's sqrt(area) is in its chip's valid range (chip px)."""
        masks = []
        for image_index, (height, width) in enumerate(image_sizes):
            boxes = proposals[image_index]
            w = boxes[:, 2].clamp(0, width) - boxes[:, 0].clamp(0, width)
            h = boxes[:, 3].clamp(0, height) - boxes[:, 1].clamp(0, height)
            sizes = (w.clamp(min=0) * h.clamp(min=0)).sqrt()
            masks.append(self._proposal_ranges[image_index].contains_train(sizes))
        return torch.stack(masks)

    @torch.jit.unused
    @torch.no_grad()
    def label_and_sample_anchors(
        self, anchors: List[Boxes], gt_instances: List[Instances]
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Per image: labels in {-1, 0, 1} for all anchors, and the matched valid box of each
        (chip px XYXY; meaningful where the label is 1). Same contract as ``RPN``'s. Notes each
        chip's valid range for :meth:`predict_proposals`."""
        if not any_chip_targets(gt_instances):
            self._proposal_ranges = None
            self._warn_plain_targets()
            return super().label_and_sample_anchors(anchors, gt_instances)
        self._proposal_ranges = [chip_valid_range(t, i) for i, t in enumerate(gt_instances)]
        anchors = Boxes.cat(anchors)
        labels, matched_boxes, counts = [], [], []
        for image_index, targets in enumerate(gt_instances):
            valid, _ = box_flags(targets, image_index)
            labels_i, matched_boxes_i, ignored_i = self._label_chip_anchors(
                anchors, targets.gt_boxes[valid], targets.gt_boxes[~valid], targets.image_size
            )
            labels.append(labels_i)
            matched_boxes.append(matched_boxes_i)
            counts.append((int(valid.sum()), len(targets) - int(valid.sum()), ignored_i))
        put_chip_metrics({
            "valid_boxes_per_chip": [c[0] for c in counts],
            "invalid_boxes_per_chip": [c[1] for c in counts],
            "anchors_ignored_near_invalid_per_chip": [c[2] for c in counts],
        })
        return labels, matched_boxes

    @torch.jit.unused
    def _warn_single_scale_test(self) -> None:
        if self.expects_multi_scale_test and not self.in_multi_scale_test and not self._warned_single_scale:
            self._warned_single_scale = True
            logger.warning(
                "This SNIPER model is running Detectron2's single-scale inference (e.g. DefaultPredictor "
                "or DefaultTrainer.test), although SNIPER.TEST.MULTI_SCALE is True: it is not tested on "
                "its pyramid with per-scale valid ranges. Use sniper_d2.SniperPredictor, "
                "SniperTrainer.test or sniper_d2.build_inference_model(cfg, model); set "
                "SNIPER.TEST.MULTI_SCALE False if single-scale is what you want."
            )

    def _warn_plain_targets(self) -> None:
        if self.expects_chip_targets and not self._warned_plain:
            self._warned_plain = True
            logger.warning(
                "SniperRPN is training on plain Instances, not SNIPER chips, although "
                "SNIPER.TRAIN.ENABLED is True: the data loader is not SNIPER's (e.g. DefaultTrainer's), "
                "so there are no valid ranges and every box trains as an object at every scale. Train "
                "with sniper_d2.SniperTrainer (or build_sniper_train_loader), or set "
                "SNIPER.TRAIN.ENABLED False for single-image training."
            )

    def _label_chip_anchors(
        self, anchors: Boxes, valid_boxes: Boxes, invalid_boxes: Boxes, image_size
    ) -> Tuple[torch.Tensor, torch.Tensor, int]:
        """Match against the valid boxes, ignore anchors near invalid ones, then subsample.
        Returns labels, matched boxes and the number of anchors ignored near invalid boxes."""
        match_quality = retry_if_cuda_oom(pairwise_iou)(valid_boxes, anchors)
        matched_idxs, labels = retry_if_cuda_oom(self.anchor_matcher)(match_quality)
        labels = labels.to(device=valid_boxes.device)
        del match_quality

        ignored = 0
        if len(invalid_boxes) > 0:
            invalid_iou = retry_if_cuda_oom(pairwise_iou)(invalid_boxes, anchors)
            near_invalid = (invalid_iou > self.invalid_iou_thresh).any(dim=0)
            labels[near_invalid.to(device=labels.device)] = -1
            ignored = int(near_invalid.sum())
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
        return labels, matched_boxes, ignored
