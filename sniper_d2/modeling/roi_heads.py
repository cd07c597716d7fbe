"""SNIPER ROI heads: Detectron2's C4 and FPN heads with SNIPER's proposal labels.

A chip trains the second stage only on proposals of the sizes its scale is responsible for:

* a proposal whose sqrt(area) (chip px) is outside the chip's valid range (``lo <= x < hi``)
  takes no part in the loss;
* ground-truth boxes join the proposals (``MODEL.ROI_HEADS.PROPOSAL_APPEND_GT``) only when their
  own size is in range;
* a proposal's class comes from the usual IoU matcher against every box kept in the chip, valid
  or invalid, so a negative chip (no valid box) trains as background except near invalid boxes;
* a proposal that the matcher makes foreground of a crowd box is ignored: crowd is never positive.

With ``MODEL.MASK_ON`` the mask head follows the box head's labels: Detectron2's mask head trains
on ``select_foreground_proposals`` (class neither background nor -1), and the ignored proposals
(-1: out of range, crowd match) are never sampled, so they give no mask loss. Sampled proposals
carry their matched box's ``gt_masks`` like every other ``gt_*`` field.

Plain ``Instances`` targets train exactly as the stock heads.
"""
from typing import List

import numpy as np
import torch
from detectron2.modeling import ROI_HEADS_REGISTRY
from detectron2.modeling.proposal_generator.proposal_utils import add_ground_truth_to_proposals
from detectron2.modeling.roi_heads import Res5ROIHeads, StandardROIHeads
from detectron2.modeling.sampling import subsample_labels
from detectron2.structures import Instances, pairwise_iou
from detectron2.utils.events import get_event_storage

from .chip_targets import any_chip_targets, box_flags, box_sizes, chip_valid_range

__all__ = ["SniperProposalLabels", "SniperStandardROIHeads", "SniperRes5ROIHeads"]


class SniperProposalLabels:
    """Mixin for a Detectron2 ``ROIHeads`` subclass: SNIPER's ``label_and_sample_proposals``.

    Uses the host's ``proposal_matcher``, ``num_classes``, ``batch_size_per_image``,
    ``positive_fraction`` and ``proposal_append_gt``.
    """

    @torch.no_grad()
    def label_and_sample_proposals(
        self, proposals: List[Instances], targets: List[Instances]
    ) -> List[Instances]:
        """Sample training proposals per image with ``gt_classes`` (``num_classes`` =
        background) and the matched box's ``gt_*`` fields; same contract as ``ROIHeads``'."""
        if not any_chip_targets(targets):
            return super().label_and_sample_proposals(proposals, targets)
        sampled, num_fg, num_bg = [], [], []
        for image_index, (proposals_i, targets_i) in enumerate(zip(proposals, targets)):
            sampled_i = self._sample_chip_proposals(proposals_i, targets_i, image_index)
            num_bg.append((sampled_i.gt_classes == self.num_classes).sum().item())
            num_fg.append(len(sampled_i) - num_bg[-1])
            sampled.append(sampled_i)
        storage = get_event_storage()
        storage.put_scalar("roi_head/num_fg_samples", np.mean(num_fg))
        storage.put_scalar("roi_head/num_bg_samples", np.mean(num_bg))
        return sampled

    def _sample_chip_proposals(
        self, proposals: Instances, targets: Instances, image_index: int
    ) -> Instances:
        """One image: append in-range GT, label by IoU, ignore crowd matches and out-of-range
        proposals (-1), then subsample like the stock heads."""
        _, crowd = box_flags(targets, image_index)
        valid_range = chip_valid_range(targets, image_index)
        if self.proposal_append_gt:
            appended = valid_range.contains_train(box_sizes(targets.gt_boxes))
            proposals = add_ground_truth_to_proposals([targets[appended]], [proposals])[0]

        match_quality = pairwise_iou(targets.gt_boxes, proposals.proposal_boxes)
        matched_idxs, matched_labels = self.proposal_matcher(match_quality)
        if len(targets) > 0:
            classes = targets.gt_classes[matched_idxs]
            classes[matched_labels == 0] = self.num_classes
            classes[matched_labels == -1] = -1
            classes[crowd[matched_idxs] & (matched_labels == 1)] = -1
        else:
            classes = torch.full_like(matched_idxs, self.num_classes)
        classes[~valid_range.contains_train(box_sizes(proposals.proposal_boxes))] = -1

        fg_idxs, bg_idxs = subsample_labels(
            classes, self.batch_size_per_image, self.positive_fraction, self.num_classes
        )
        sampled_idxs = torch.cat([fg_idxs, bg_idxs])
        sampled = proposals[sampled_idxs]
        sampled.gt_classes = classes[sampled_idxs]
        if len(targets) > 0:
            sampled_targets = matched_idxs[sampled_idxs]
            for name, value in targets.get_fields().items():
                if name.startswith("gt_") and not sampled.has(name):
                    sampled.set(name, value[sampled_targets])
        return sampled


@ROI_HEADS_REGISTRY.register()
class SniperStandardROIHeads(SniperProposalLabels, StandardROIHeads):
    """FPN ROI heads with SNIPER proposal labels (``ROI_HEADS.NAME: SniperStandardROIHeads``)."""

    # Scripting (torch.jit.script, Detectron2's scripting_with_instances) compiles away the
    # disabled mask / keypoint branches only if these flags are constants. Detectron2 annotates
    # them on StandardROIHeads, but freeze_training_mode gives every class its own annotations,
    # hiding the base class's, so a subclass states them itself.
    mask_on: torch.jit.Final[bool]
    keypoint_on: torch.jit.Final[bool]


@ROI_HEADS_REGISTRY.register()
class SniperRes5ROIHeads(SniperProposalLabels, Res5ROIHeads):
    """C4 ROI heads with SNIPER proposal labels (``MODEL.ROI_HEADS.NAME: SniperRes5ROIHeads``)."""

    mask_on: torch.jit.Final[bool]  # see SniperStandardROIHeads
