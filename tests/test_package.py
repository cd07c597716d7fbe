"""The package surface users rely on: import registers components, config defaults, start-up checks."""
import glob
import os

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.modeling import PROPOSAL_GENERATOR_REGISTRY, ROI_HEADS_REGISTRY, build_model

import sniper_d2
from sniper_d2 import add_sniper_config, check_sniper_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sniper_cfg():
    """Detectron2's defaults + SNIPER's, with the chip-aware heads (as the Base configs set them)."""
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.MODEL.PROPOSAL_GENERATOR.NAME, cfg.MODEL.ROI_HEADS.NAME = "SniperRPN", "SniperStandardROIHeads"
    return cfg


def test_import_registers_heads_and_builtin_datasets():
    assert PROPOSAL_GENERATOR_REGISTRY.get("SniperRPN") is sniper_d2.SniperRPN
    assert ROI_HEADS_REGISTRY.get("SniperStandardROIHeads") is sniper_d2.SniperStandardROIHeads
    assert ROI_HEADS_REGISTRY.get("SniperRes5ROIHeads") is sniper_d2.SniperRes5ROIHeads
    assert {"sniper_shapes_train", "sniper_shapes_val", "sniper_shapes_test"} <= set(DatasetCatalog.list())


def test_config_defaults_are_the_coco_settings_of_the_spec():
    s = sniper_cfg().SNIPER
    assert s.CHIP_SIZE == 512
    assert s.TRAIN.SCALES == (3.0, 1.667, "longest:512")
    assert s.TRAIN.VALID_RANGES == ((-1, 80), (32, 150), (120, -1))
    assert s.TRAIN.CHIP_STRIDE == 32 and s.TRAIN.CHIP_STRIDE_RANGE == ()
    assert s.TRAIN.MIN_BOX_SIZE == 10
    assert s.TRAIN.RPN_INVALID_IOU_THRESH == 0.3
    assert s.NEG.CHIPS_PER_IMAGE == 2 and s.NEG.MIN_PROPOSALS == (25, 10, 10)
    assert s.MINING.RPN_EPOCHS == 2.0 and s.MINING.PROPOSALS_PER_SCALE == 300 and s.MINING.NMS_THRESH == 0.7
    assert s.TEST.SCALES == ((1400, 2000), (800, 1280), (480, 512))
    assert s.TEST.VALID_RANGES == ((-1, 90), (32, 180), (75, -1))
    assert s.TEST.MERGE == "soft_nms" and s.TEST.SOFT_NMS_SIGMA == 0.55
    assert s.TEST.SCORE_THRESH == 0.001 and s.TEST.DETECTIONS_PER_IMAGE == 200


def test_add_sniper_config_twice_keeps_user_values():
    cfg = sniper_cfg()
    cfg.SNIPER.CHIP_SIZE = 256
    add_sniper_config(cfg)
    assert cfg.SNIPER.CHIP_SIZE == 256


def test_yaml_and_command_line_accept_all_three_scale_forms():
    cfg = sniper_cfg()
    cfg.merge_from_list(["SNIPER.TRAIN.SCALES", "(2.0, [600, 1000], 'longest:256')"])
    check_sniper_config_cpu(cfg)
    from sniper_d2.chips import parse_scales

    kinds = [s.kind for s in parse_scales(cfg.SNIPER.TRAIN.SCALES)]
    assert kinds == ["factor", "resolution", "longest"]


def check_sniper_config_cpu(cfg):
    cfg.MODEL.DEVICE = "cpu"
    cfg.SOLVER.AMP.ENABLED = False
    cfg.DATASETS.TRAIN = cfg.DATASETS.TEST = ()
    check_sniper_config(cfg)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("SNIPER.TRAIN.VALID_RANGES", ((-1, 80), (32, 150)), "2 ranges but there are 3 scales"),
        ("SNIPER.TEST.VALID_RANGES", ((-1, 90),), "SNIPER.TEST.VALID_RANGES has 1 ranges"),
        ("SNIPER.NEG.MIN_PROPOSALS", (25, 10), "MIN_PROPOSALS has 2 values"),
        ("SNIPER.TRAIN.SCALES", (3.0, "huge", "longest:512"), "SNIPER.TRAIN.SCALES: Invalid scale 'huge'"),
        ("SNIPER.TEST.SCALES", ((1400, 2000), (800, -5), (480, 512)), "SNIPER.TEST.SCALES: "),
        ("SNIPER.NEG.CHIPS_PER_IMAGE", -1, r"SNIPER.NEG.CHIPS_PER_IMAGE must be an integer >= 0.*got -1"),
        ("SNIPER.NEG.MIN_PROPOSALS", (25, -1, 10), r"SNIPER.NEG.MIN_PROPOSALS must be integers >= 0"),
        ("SNIPER.CHIP_SIZE", 0, r"SNIPER.CHIP_SIZE must be an integer >= 16"),
        ("SNIPER.TRAIN.DECODE_CACHE_MB", -1, r"SNIPER.TRAIN.DECODE_CACHE_MB must be a number of MiB >= 0"),
        ("SNIPER.SEED", -2, r"SNIPER.SEED must be"),
        ("SNIPER.TRAIN.MIN_BOX_SIZE", -1, r"SNIPER.TRAIN.MIN_BOX_SIZE must be a number >= 0"),
        ("SNIPER.TRAIN.RPN_INVALID_IOU_THRESH", 1.5, r"RPN_INVALID_IOU_THRESH must be an IoU in \[0, 1\]"),
        ("SNIPER.MINING.RPN_EPOCHS", 0.0, r"SNIPER.MINING.RPN_EPOCHS must be a number of epochs > 0"),
        ("SNIPER.MINING.PROPOSALS_PER_SCALE", 0, r"SNIPER.MINING.PROPOSALS_PER_SCALE must be an integer >= 1"),
        ("SNIPER.MINING.NMS_THRESH", 0.0, r"SNIPER.MINING.NMS_THRESH must be an IoU in \(0, 1\]"),
        ("SNIPER.TEST.SOFT_NMS_SIGMA", -0.5, r"SNIPER.TEST.SOFT_NMS_SIGMA must be a number > 0"),
        ("SNIPER.TEST.NMS_THRESH", 1.5, r"SNIPER.TEST.NMS_THRESH must be an IoU"),
        ("SNIPER.TEST.SCORE_THRESH", 1.0, r"SNIPER.TEST.SCORE_THRESH must be a score in \[0, 1\)"),
        ("SNIPER.TEST.PROPOSALS_PER_SCALE", -3, r"SNIPER.TEST.PROPOSALS_PER_SCALE must be an integer >= 0"),
        ("SNIPER.TEST.DETECTIONS_PER_IMAGE", 0, r"SNIPER.TEST.DETECTIONS_PER_IMAGE must be an integer >= 1"),
        ("SNIPER.TRAIN.VALID_RANGES", ((-1, 80), (150, 32), (120, -1)), "SNIPER.TRAIN.VALID_RANGES: .*lo must be below hi"),
        ("SNIPER.TEST.VALID_RANGES", ((-1, 90), (180, 32), (75, -1)), "SNIPER.TEST.VALID_RANGES: .*lo must be below hi"),
        ("SNIPER.TEST.MERGE", "wbf", "soft_nms"),
        ("SNIPER.TRAIN.CHIP_STRIDE_RANGE", (60, 50), "CHIP_STRIDE_RANGE"),
    ],
)
def test_inconsistent_settings_fail_at_start_up_naming_the_key(key, value, message):
    cfg = sniper_cfg()
    cfg.merge_from_list([key, str(value) if not isinstance(value, str) else value])
    with pytest.raises(ValueError, match=message):
        check_sniper_config_cpu(cfg)


@pytest.mark.parametrize("overrides, message", [
    (["SNIPER.AUTOFOCUS.SMALL_THRESH", "4.0"], r"DC_LOW < SMALL_THRESH <= DC_HIGH"),
    (["SNIPER.AUTOFOCUS.DC_HIGH", "50.0"], r"DC_LOW < SMALL_THRESH <= DC_HIGH"),
    (["SNIPER.TEST.AUTOFOCUS.ENABLED", "True", "SNIPER.TEST.AUTOFOCUS.THRESHOLDS", "(0.2, 0.02)"],
     r"SNIPER.TEST.AUTOFOCUS.THRESHOLDS has 2 values but SNIPER.TEST.SCALES has 3"),
    (["SNIPER.TEST.AUTOFOCUS.ENABLED", "True", "SNIPER.TEST.AUTOFOCUS.PRUNE", "(True, True, True)"],
     r"coarsest test scale .* set its entry to False"),
    (["SNIPER.TEST.AUTOFOCUS.THRESHOLDS", "(0.2, 1.5, 0.0)"], r"SNIPER.TEST.AUTOFOCUS.THRESHOLDS must be probabilities"),
    (["SNIPER.TEST.AUTOFOCUS.DILATIONS", "(3, 0, 1)"], r"SNIPER.TEST.AUTOFOCUS.DILATIONS must be integers >= 1"),
])
def test_inconsistent_autofocus_settings_fail_at_start_up(overrides, message):
    cfg = sniper_cfg()
    cfg.merge_from_list(overrides)
    with pytest.raises(ValueError, match=message):
        check_sniper_config_cpu(cfg)


def test_autofocus_lists_need_not_fit_the_test_scales_while_autofocus_is_off():
    cfg = sniper_cfg()  # default lists have 3 entries; a 2-scale test is fine while AutoFocus is off
    cfg.merge_from_list(["SNIPER.TEST.SCALES", "((800, 1333), (480, 512))", "SNIPER.TEST.VALID_RANGES", "((-1, 120), (64, -1))"])
    check_sniper_config_cpu(cfg)


def test_unregistered_dataset_fails_at_start_up():
    cfg = sniper_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.DATASETS.TRAIN = ("my_typo_dataset",)
    with pytest.raises(KeyError, match="DATASETS.TRAIN names 'my_typo_dataset'"):
        check_sniper_config(cfg)


@pytest.mark.parametrize("key, stock, message", [
    ("MODEL.PROPOSAL_GENERATOR.NAME", "RPN", r"MODEL.PROPOSAL_GENERATOR.NAME is 'RPN', which ignores SNIPER's chip labels.*Set MODEL.PROPOSAL_GENERATOR.NAME to SniperRPN"),
    ("MODEL.ROI_HEADS.NAME", "StandardROIHeads", r"MODEL.ROI_HEADS.NAME is 'StandardROIHeads'.*SniperStandardROIHeads"),
])
def test_chip_training_with_stock_heads_fails_at_start_up(key, stock, message):
    cfg = sniper_cfg()
    check_sniper_config_cpu(cfg)
    cfg.merge_from_list([key, stock])
    with pytest.raises(ValueError, match=message):
        check_sniper_config_cpu(cfg)
    cfg.SNIPER.TRAIN.ENABLED = False  # Detectron2's own loader: stock heads are right
    check_sniper_config_cpu(cfg)


def test_amp_on_cpu_fails_with_the_fix():
    cfg = sniper_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.DATASETS.TRAIN = cfg.DATASETS.TEST = ()
    cfg.SOLVER.AMP.ENABLED = True
    with pytest.raises(RuntimeError, match="AMP.ENABLED"):
        check_sniper_config(cfg)


CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True))


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.relpath(p, REPO) for p in CONFIGS])
def test_every_config_loads_and_builds_a_model(path):
    cfg = sniper_cfg()
    cfg.merge_from_file(path)
    cfg.MODEL.DEVICE = "cpu"
    cfg.SOLVER.AMP.ENABLED = False
    cfg.DATASETS.TRAIN = cfg.DATASETS.TEST = ()  # COCO is not registered here
    check_sniper_config(cfg)
    torch.manual_seed(0)
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) > 0
    if cfg.SNIPER.TRAIN.ENABLED:
        assert cfg.MODEL.PROPOSAL_GENERATOR.NAME == "SniperRPN"
        assert cfg.MODEL.ROI_HEADS.NAME.startswith("Sniper") or cfg.MODEL.META_ARCHITECTURE == "ProposalNetwork"
        assert not cfg.DATALOADER.ASPECT_RATIO_GROUPING
