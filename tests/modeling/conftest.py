"""Tiny Faster R-CNN models and chip targets shared by the SNIPER head tests (CPU, seconds)."""
import copy
import functools
import math

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

import sniper_d2.modeling  # noqa: F401  (registers the SNIPER heads)
from sniper_d2.chip_instances import ChipInstances
from sniper_d2.config import add_sniper_config

IMAGE_SIZES = ((96, 80), (64, 96))  # (h, w) chip px of the two test images
NUM_CLASSES = 3


def tiny_cfg(arch: str, sniper: bool):
    """R-18 Faster R-CNN, C4 or FPN, BatchNorm, few channels: builds and steps in under 1 s."""
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS = 16
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [[0.5, 1.0, 2.0]]
    cfg.MODEL.RPN.BATCH_SIZE_PER_IMAGE = 64
    cfg.MODEL.RPN.PRE_NMS_TOPK_TRAIN = cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = 200
    cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 50
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = NUM_CLASSES
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 16
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    if arch == "FPN":
        cfg.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
        cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
        cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
        cfg.MODEL.FPN.OUT_CHANNELS = 16
        cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[8], [16], [32], [64], [128]]
        cfg.MODEL.RPN.IN_FEATURES = ["p2", "p3", "p4", "p5", "p6"]
        cfg.MODEL.ROI_HEADS.IN_FEATURES = ["p2", "p3", "p4", "p5"]
        cfg.MODEL.ROI_HEADS.NAME = "SniperStandardROIHeads" if sniper else "StandardROIHeads"
        cfg.MODEL.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
        cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 2
        cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 32
        cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 4
    else:
        cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[8, 16, 32, 64]]
        cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 4
        cfg.MODEL.ROI_HEADS.NAME = "SniperRes5ROIHeads" if sniper else "Res5ROIHeads"
        cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 8
    cfg.MODEL.PROPOSAL_GENERATOR.NAME = "SniperRPN" if sniper else "RPN"
    return cfg


@functools.lru_cache(maxsize=None)
def _built_pair(arch: str):
    torch.manual_seed(0)
    stock = build_model(tiny_cfg(arch, sniper=False))
    sniper = build_model(tiny_cfg(arch, sniper=True))
    sniper.load_state_dict(stock.state_dict())
    return stock, sniper


def model_pair(arch: str):
    """Fresh (stock, sniper) models of one architecture with identical weights, training mode."""
    return tuple(copy.deepcopy(model).train() for model in _built_pair(arch))


def gt_boxes_per_image():
    """A few boxes per image, from a few px to most of the chip, chip px XYXY."""
    return [
        torch.tensor([[4.0, 6.0, 30.0, 40.0], [40.0, 10.0, 76.0, 90.0], [50.0, 50.0, 58.0, 60.0]]),
        torch.tensor([[10.0, 8.0, 90.0, 60.0], [2.0, 2.0, 14.0, 12.0]]),
    ]


def plain_targets():
    out = []
    for (h, w), boxes in zip(IMAGE_SIZES, gt_boxes_per_image()):
        inst = Instances((h, w))
        inst.gt_boxes = Boxes(boxes)
        inst.gt_classes = torch.arange(len(boxes)) % NUM_CLASSES
        out.append(inst)
    return out


def all_valid_chip_targets():
    """ChipInstances with every box valid, no crowd and an unbounded range: stock semantics."""
    out = []
    for plain in plain_targets():
        chip = ChipInstances(plain.image_size, valid_range=(0.0, math.inf))
        chip.gt_boxes = plain.gt_boxes
        chip.gt_classes = plain.gt_classes
        chip.gt_valid = torch.ones(len(plain), dtype=torch.bool)
        chip.gt_crowd = torch.zeros(len(plain), dtype=torch.bool)
        out.append(chip)
    return out


def batched_inputs(targets):
    """Model inputs (Detectron2 dicts) with deterministic random images of IMAGE_SIZES."""
    generator = torch.Generator().manual_seed(1)
    inputs = []
    for (h, w), inst in zip(IMAGE_SIZES, targets):
        image = torch.randint(0, 256, (3, h, w), generator=generator, dtype=torch.uint8)
        record = {"image": image, "height": h, "width": w}
        if inst is not None:
            record["instances"] = copy.deepcopy(inst)
        inputs.append(record)
    return inputs


def train_step(model, targets, logged_keys, seed=5):
    """One forward/backward of ``model`` on ``targets``: (losses, parameter gradients, the logged
    event values of ``logged_keys``)."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    with EventStorage() as storage:
        losses = model(batched_inputs(targets))
        sum(losses.values()).backward()
        logged = {k: storage.latest()[k][0] for k in logged_keys}
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads, logged


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny models gain nothing from intra-op threads and slow down a lot on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=["C4", "FPN"])
def arch(request):
    return request.param


@pytest.fixture(name="tiny_cfg")
def tiny_cfg_fixture():
    """``tiny_cfg(arch, sniper)``: the tiny C4/FPN config."""
    return tiny_cfg


@pytest.fixture(name="model_pair")
def model_pair_fixture(arch):
    """Fresh (stock, sniper) models of ``arch`` with identical weights, training mode."""
    return model_pair(arch)


@pytest.fixture(name="plain_targets")
def plain_targets_fixture():
    return plain_targets()


@pytest.fixture(name="all_valid_chip_targets")
def all_valid_chip_targets_fixture():
    return all_valid_chip_targets()


@pytest.fixture(name="batched_inputs")
def batched_inputs_fixture():
    """``batched_inputs(targets)``: model inputs for IMAGE_SIZES (targets None: inference)."""
    return batched_inputs
