"""Stage 1's schedule derived from the detector's config (SNIPER_SPEC section 3)."""
import math
import os

from detectron2.config import get_cfg

from sniper_d2.config import add_sniper_config
from sniper_d2.mining import rpn_stage_config

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "configs")


def test_stage_one_runs_rpn_epochs_of_positive_chips_without_an_lr_step(tmp_path):
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.merge_from_file(os.path.join(CONFIGS, "sniper_R_50_FPN_1x.yaml"))
    assert cfg.SOLVER.STEPS  # the detector steps its lr; stage 1 must not

    stage = rpn_stage_config(cfg, chips_per_epoch=700_000, output_dir=str(tmp_path / "rpn"))

    assert stage.MODEL.META_ARCHITECTURE == "ProposalNetwork"
    assert stage.SOLVER.MAX_ITER == math.ceil(cfg.SNIPER.MINING.RPN_EPOCHS * 700_000 / cfg.SOLVER.IMS_PER_BATCH)
    assert stage.SOLVER.STEPS == ()
    assert stage.SOLVER.WARMUP_ITERS == cfg.SOLVER.WARMUP_ITERS
    assert stage.SOLVER.BASE_LR == cfg.SOLVER.BASE_LR


def test_short_stage_caps_the_warm_up_at_a_fifth(tmp_path):
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.merge_from_file(os.path.join(CONFIGS, "sniper_R_50_FPN_1x.yaml"))

    stage = rpn_stage_config(cfg, chips_per_epoch=1_000, output_dir=str(tmp_path / "rpn"))

    assert stage.SOLVER.MAX_ITER == math.ceil(cfg.SNIPER.MINING.RPN_EPOCHS * 1_000 / cfg.SOLVER.IMS_PER_BATCH)
    assert stage.SOLVER.WARMUP_ITERS == max(1, stage.SOLVER.MAX_ITER // 5)
    assert stage.SOLVER.STEPS == ()
