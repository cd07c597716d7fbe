"""SNIPER's chip-aware Detectron2 heads; importing this package registers them.

``SniperRPN`` (PROPOSAL_GENERATOR_REGISTRY) and ``SniperStandardROIHeads`` /
``SniperRes5ROIHeads`` (ROI_HEADS_REGISTRY) change only how training targets are labelled.
``SniperAutoFocusRCNN`` (META_ARCH_REGISTRY) adds the AutoFocus FocusPixel branch
(``FocusPixelHead`` in ``FOCUS_HEAD_REGISTRY``, labels by ``focus_pixel_labels``).
"""
from .autofocus_rcnn import SniperAutoFocusRCNN
from .focus_head import FOCUS_HEAD_REGISTRY, FocusPixelHead
from .focus_pixels import focus_pixel_labels
from .roi_heads import SniperProposalLabels, SniperRes5ROIHeads, SniperStandardROIHeads
from .rpn import SniperRPN

__all__ = [
    "FOCUS_HEAD_REGISTRY",
    "FocusPixelHead",
    "SniperAutoFocusRCNN",
    "SniperProposalLabels",
    "SniperRPN",
    "SniperStandardROIHeads",
    "SniperRes5ROIHeads",
    "focus_pixel_labels",
]
