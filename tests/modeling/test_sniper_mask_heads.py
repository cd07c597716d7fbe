"""Mask R-CNN heads (MODEL.MASK_ON): the mask head trains on the box head's foreground only.

Detectron2's mask head trains on ``select_foreground_proposals`` (class neither background nor
-1). SNIPER labels out-of-range proposals and crowd matches -1, and ``subsample_labels`` never
samples -1, so they give no mask loss; with stock targets the mask loss is stock's, bit for bit.
"""
import copy
import functools

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.modeling.roi_heads import select_foreground_proposals
from detectron2.structures import Boxes, Instances, PolygonMasks, pairwise_iou
from detectron2.utils.events import EventStorage

from .conftest import all_valid_chip_targets, plain_targets, tiny_cfg, train_step
from .test_sniper_heads_vs_stock import assert_identical_steps, bounded_chips


def mask_cfg(arch, sniper):
    cfg = tiny_cfg(arch, sniper)
    cfg.MODEL.MASK_ON = True
    cfg.MODEL.ROI_MASK_HEAD.NAME = "MaskRCNNConvUpsampleHead"
    cfg.MODEL.ROI_MASK_HEAD.NUM_CONV = 1 if arch == "FPN" else 0
    cfg.MODEL.ROI_MASK_HEAD.CONV_DIM = 8
    cfg.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION = 7
    return cfg


@functools.lru_cache(maxsize=None)
def _built_pair(arch):
    torch.manual_seed(0)
    stock = build_model(mask_cfg(arch, sniper=False))
    sniper = build_model(mask_cfg(arch, sniper=True))
    sniper.load_state_dict(stock.state_dict())
    return stock, sniper


@pytest.fixture
def mask_pair(arch):
    return tuple(copy.deepcopy(model).train() for model in _built_pair(arch))


def with_masks(targets):
    """Triangle masks inside each box (not the box itself: the loss sees the shape)."""
    for target in targets:
        polygons = [[[x0, y0, x1, y0, x0, y1]] for x0, y0, x1, y1 in target.gt_boxes.tensor.tolist()]
        target.gt_masks = PolygonMasks(polygons)
    return targets


def step(model, targets, seed=5):
    return train_step(model, targets, ("roi_head/num_fg_samples", "roi_head/num_bg_samples"), seed)


def test_mask_loss_is_stock_on_plain_and_all_valid_targets(mask_pair):
    stock, sniper = mask_pair
    expected = step(stock, with_masks(plain_targets()))
    assert "loss_mask" in expected[0] and expected[0]["loss_mask"] > 0
    assert_identical_steps(expected, step(sniper, with_masks(plain_targets())))
    assert_identical_steps(expected, step(sniper, with_masks(all_valid_chip_targets())))


def test_mask_head_sees_no_ignored_proposal(mask_pair):
    """Bounded range, an invalid and a crowd box: the mask head's proposals are exactly the
    sampled ones with a real class, in range, never matched to crowd."""
    _, sniper = mask_pair
    heads = sniper.roi_heads
    targets = with_masks(bounded_chips(all_valid_chip_targets()))
    proposals = []
    for target in targets:  # jittered copies of the boxes and a large box
        boxes = torch.cat([target.gt_boxes.tensor + d for d in (-1.0, 0.0, 1.5)] + [torch.tensor([[0.0, 0, 60, 60]])])
        proposals.append(Instances(target.image_size, proposal_boxes=Boxes(boxes), objectness_logits=torch.zeros(len(boxes))))
    with EventStorage():
        sampled = heads.label_and_sample_proposals(proposals, targets)
    foreground, _ = select_foreground_proposals(sampled, heads.num_classes)
    assert sum(len(f) for f in foreground) > 0
    for fg, target in zip(foreground, targets):
        sizes = fg.proposal_boxes.area().sqrt()
        lo, hi = target.valid_range
        assert ((sizes >= lo) & (sizes < hi)).all()
        assert not fg.gt_crowd.any()
        assert (fg.gt_classes >= 0).all() and (fg.gt_classes < heads.num_classes).all()
        assert len(fg.gt_masks) == len(fg)
        iou = pairwise_iou(fg.proposal_boxes, fg.gt_boxes).diagonal()
        assert (iou >= heads.proposal_matcher.thresholds[1]).all()


def test_all_crowd_chips_give_no_mask_loss(mask_pair):
    _, sniper = mask_pair
    targets = with_masks(all_valid_chip_targets())
    for chip in targets:
        chip.gt_valid[:] = False
        chip.gt_crowd[:] = True
    losses, _, logged = step(sniper, targets)
    assert logged["roi_head/num_fg_samples"] == 0
    assert losses["loss_mask"] == 0
