"""Negative-chip mining stages 1-2, resumable: a stage whose output exists is skipped."""
import logging
import os
from typing import List

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.utils import comm

from ..data.build import build_chip_planner
from .proposal_extraction import extract_proposals, save_proposal_file
from .rpn_stage import rpn_stage_config

__all__ = ["mine_negative_proposals", "mining_paths"]

logger = logging.getLogger(__name__)


def mining_paths(cfg):
    """(stage-1 output dir, stage-1 final model, one proposal file per DATASETS.TRAIN entry)."""
    root = os.path.join(cfg.OUTPUT_DIR, "negative_mining")
    rpn_dir = os.path.join(root, "rpn")
    files = [os.path.join(root, f"proposals_{name}.pkl") for name in cfg.DATASETS.TRAIN]
    return rpn_dir, os.path.join(rpn_dir, "model_final.pth"), files


def mine_negative_proposals(cfg, trainer_cls) -> List[str]:
    """Run stages 1 (RPN on positive chips) and 2 (proposals), skipping finished stages.

    Must be called on every process of a distributed run. Returns the proposal files, one per
    training dataset, for ``SNIPER.NEG.PROPOSAL_FILES``.
    """
    rpn_dir, rpn_model, files = mining_paths(cfg)
    if all(os.path.isfile(f) for f in files):
        logger.info(f"Negative mining: proposal files exist, stages 1-2 skipped: {files}")
        return files
    planner = build_chip_planner(_positives_only(cfg))
    rpn_cfg = rpn_stage_config(cfg, len(planner.plan(0)), rpn_dir)
    if os.path.isfile(rpn_model):
        logger.info(f"Negative mining stage 1: {rpn_model} exists, skipped.")
        model = trainer_cls.build_model(rpn_cfg)
        DetectionCheckpointer(model).load(rpn_model)
    else:
        logger.info(
            f"Negative mining stage 1: RPN-only training, {rpn_cfg.SOLVER.MAX_ITER} iterations "
            f"({rpn_cfg.SNIPER.MINING.RPN_EPOCHS} epochs of {len(planner.plan(0))} positive chips) -> {rpn_dir}"
        )
        trainer = trainer_cls(rpn_cfg)
        trainer.resume_or_load(resume=True)
        trainer.train()
        model = trainer.model.module if hasattr(trainer.model, "module") else trainer.model
    comm.synchronize()
    for name, path in zip(cfg.DATASETS.TRAIN, files):
        if os.path.isfile(path):
            continue
        logger.info(f"Negative mining stage 2: proposals of {name} -> {path}")
        proposals = extract_proposals(rpn_cfg, model, name)
        if comm.is_main_process():
            save_proposal_file(proposals, path)
        comm.synchronize()
    return files


def _positives_only(cfg):
    c = cfg.clone()
    c.defrost()
    c.SNIPER.NEG.PROPOSAL_FILES = ()
    c.freeze()
    return c
