"""Chip-aware proposal selection (SNIPER_SPEC section 4): in training, out-of-range proposals are
ranked below every in-range one before NMS and the top-k cuts, so the box head still gets
in-range proposals when the best-scoring ones are out of range."""
import logging

import torch
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_proposal_generator
from detectron2.structures import Boxes, ImageList, Instances
from detectron2.utils.events import EventStorage
from torch import nn

from sniper_d2.chip_instances import ChipInstances

INPUT_SHAPE = {"res4": ShapeSpec(channels=8, stride=16)}
SIZES = [8, 16, 32, 64]  # anchor sizes; 3 aspect ratios each -> 12 anchors per cell, size-major


class FixedHead(nn.Module):
    """RPN head whose objectness favours the largest anchors (logit 5) over the 8 px ones (1)."""

    def forward(self, features):
        x = features[0]
        logits = torch.zeros(x.shape[0], 12, *x.shape[-2:])
        logits[:, 9:12] = 5.0  # 64 px anchors: the best scores
        logits[:, 0:3] = 1.0  # 8 px anchors
        return [logits], [torch.zeros(x.shape[0], 48, *x.shape[-2:])]


def build_rpn(tiny_cfg):
    cfg = tiny_cfg("C4", sniper=True)
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [SIZES]
    cfg.MODEL.RPN.PRE_NMS_TOPK_TRAIN = cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = 40
    cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 10
    rpn = build_proposal_generator(cfg, INPUT_SHAPE)
    rpn.rpn_head = FixedHead()
    return rpn


def targets(chip: bool):
    t = ChipInstances((64, 64), valid_range=(0.0, 24.0)) if chip else Instances((64, 64))
    t.gt_boxes = Boxes(torch.tensor([[4.0, 4.0, 14.0, 14.0]]))
    t.gt_classes = torch.zeros(1, dtype=torch.int64)
    if chip:
        t.gt_valid = torch.tensor([True])
        t.gt_crowd = torch.tensor([False])
    return t


def proposal_sizes(rpn, gt):
    images = ImageList(torch.zeros(1, 3, 64, 64), [(64, 64)])
    proposals, _ = rpn(images, {"res4": torch.zeros(1, 8, 4, 4)}, gt)
    boxes = proposals[0].proposal_boxes
    return boxes.area().sqrt()


def test_chip_whose_top_proposals_are_out_of_range_still_feeds_in_range_ones(tiny_cfg):
    rpn = build_rpn(tiny_cfg).train()
    with EventStorage():
        stock = proposal_sizes(rpn, [targets(chip=False)])
        chip = proposal_sizes(rpn, [targets(chip=True)])
    assert len(stock) == 10 and (stock >= 24).all()  # plain targets: the 64 px anchors win
    assert len(chip) == 10 and (chip < 24).all()  # chip targets: only in-range proposals


def test_inference_ranking_is_stock(tiny_cfg):
    rpn = build_rpn(tiny_cfg).eval()
    with torch.no_grad():
        sizes = proposal_sizes(rpn, None)
    assert len(sizes) == 10 and (sizes >= 24).all()


def test_training_step_records_chip_metrics_for_tensorboard(tiny_cfg):
    rpn = build_rpn(tiny_cfg).train()
    t = ChipInstances((64, 64), valid_range=(0.0, 24.0))
    t.gt_boxes = Boxes(torch.tensor([[4.0, 4.0, 14.0, 14.0], [20.0, 20.0, 60.0, 60.0]]))
    t.gt_classes = torch.zeros(2, dtype=torch.int64)
    t.gt_valid = torch.tensor([True, False])  # the 40 px box is out of this chip's range
    t.gt_crowd = torch.tensor([False, False])
    with EventStorage() as storage:
        proposal_sizes(rpn, [t])
        metrics = {k: v[0] for k, v in storage.latest().items() if k.startswith("sniper/")}
    assert metrics["sniper/valid_boxes_per_chip"] == 1 and metrics["sniper/invalid_boxes_per_chip"] == 1
    assert metrics["sniper/anchors_ignored_near_invalid_per_chip"] > 0
    assert metrics["sniper/in_range_proposals_per_chip"] == 10


def test_chip_config_trained_without_chips_warns_once(tiny_cfg, caplog):
    rpn = build_rpn(tiny_cfg).train()  # tiny_cfg keeps SNIPER.TRAIN.ENABLED True
    with EventStorage(), caplog.at_level(logging.WARNING):
        proposal_sizes(rpn, [targets(chip=True)])
        assert "plain Instances" not in caplog.text
        proposal_sizes(rpn, [targets(chip=False)])
        proposal_sizes(rpn, [targets(chip=False)])
    assert caplog.text.count("SniperRPN is training on plain Instances") == 1


def test_single_scale_inference_of_a_multi_scale_config_warns_once(tiny_cfg, caplog):
    from detectron2.modeling import build_model

    from sniper_d2.inference import build_inference_model

    cfg = tiny_cfg("FPN", sniper=True)
    cfg.SNIPER.TEST.SCALES, cfg.SNIPER.TEST.VALID_RANGES = (1.0, 0.5), ((-1, 40), (30, -1))
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    inputs = [{"image": torch.rand(3, 64, 64) * 255, "height": 64, "width": 64}]
    message = "running Detectron2's single-scale inference"
    with torch.no_grad(), caplog.at_level(logging.WARNING):
        build_inference_model(cfg, model)(inputs)  # the pyramid: as configured, no warning
        assert message not in caplog.text
        model(inputs)  # what DefaultPredictor / DefaultTrainer.test do
        model(inputs)
    assert caplog.text.count(message) == 1
