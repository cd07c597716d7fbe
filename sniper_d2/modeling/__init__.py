"""SNIPER's chip-aware Detectron2 heads; importing this package registers them.

``SniperRPN`` (PROPOSAL_GENERATOR_REGISTRY) and ``SniperStandardROIHeads`` /
``SniperRes5ROIHeads`` (ROI_HEADS_REGISTRY) change only how training targets are labelled.
"""
from .roi_heads import SniperProposalLabels, SniperRes5ROIHeads, SniperStandardROIHeads
from .rpn import SniperRPN

__all__ = ["SniperProposalLabels", "SniperRPN", "SniperStandardROIHeads", "SniperRes5ROIHeads"]
