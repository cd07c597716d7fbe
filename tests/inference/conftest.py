"""Shared fixtures for the inference tests: a tiny random-init Faster R-CNN (CPU, R-18 FPN)."""
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.modeling import build_model

from sniper_d2.config import add_sniper_config


def tiny_faster_rcnn_cfg():
    """R-18 FPN Faster R-CNN with narrow FPN and box head: a few hundred ms per small image on CPU."""
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.OUT_CHANNELS = 32
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[32], [64], [128], [256], [512]]
    cfg.MODEL.RPN.IN_FEATURES = ["p2", "p3", "p4", "p5", "p6"]
    cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = 200
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 50
    cfg.MODEL.ROI_HEADS.NAME = "StandardROIHeads"
    cfg.MODEL.ROI_HEADS.IN_FEATURES = ["p2", "p3", "p4", "p5"]
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    cfg.MODEL.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
    cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 2
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 32
    cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 7
    # Small test scales and matching ranges keep every test at CPU speed.
    cfg.SNIPER.TEST.SCALES = ((160, 200), 1.0, "longest:48")
    cfg.SNIPER.TEST.VALID_RANGES = ((-1, 30), (20, 60), (40, -1))
    return cfg


@pytest.fixture(scope="module")
def tiny_cfg():
    return tiny_faster_rcnn_cfg()


@pytest.fixture(scope="module")
def tiny_model(tiny_cfg):
    torch.manual_seed(0)
    return build_model(tiny_cfg).eval()
