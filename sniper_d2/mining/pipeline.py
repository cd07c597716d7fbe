"""Negative-chip mining stages 1-2, resumable: a stage's output is reused only when its stamp says
it was made from the current config and training data; otherwise the stage is redone.

Outputs, under ``OUTPUT_DIR/negative_mining``, each written atomically (complete or absent) with a
stamp next to it (:mod:`sniper_d2.engine.run_stamp`), written once the output is complete:

* stage 1, ``rpn/model_final.pth`` (+ ``.stamp.json``): made from the config keys that change the
  RPN's training (all but :data:`~.rpn_stage.NOT_IN_STAGE_ONE`) and the content of every
  ``DATASETS.TRAIN`` dataset. An interrupted stage 1 resumes from its own checkpoints when they
  come from the same record (``rpn/run_stamp.json``), else starts afresh;
* stage 2, ``proposals_<dataset>.pkl`` (+ ``.stamp.json``): made from the stamp id of that stage-1
  model (a redone stage 1 makes every proposal file stale), the keys that change the RPN or the
  extraction (all but :data:`~.rpn_stage.NOT_IN_MINING`, ``SNIPER.TEST.SCALES`` included) and the
  content of its dataset.
"""
import logging
import os
from typing import List

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.utils import comm

from ..data.build import build_chip_planner
from ..engine.run_guard import resume_or_restart
from ..engine.run_stamp import (
    config_record, dataset_digests, decided_on_main_process, make_record, read_stamp, stale_reason, stamp_path,
    write_stamp,
)
from .proposal_extraction import extract_proposals, save_proposal_file
from .rpn_stage import NOT_IN_MINING, NOT_IN_STAGE_ONE, rpn_stage_config

__all__ = ["mine_negative_proposals", "mining_paths"]

logger = logging.getLogger(__name__)


def mining_paths(cfg):
    """(stage-1 output dir, stage-1 final model, one proposal file per DATASETS.TRAIN entry)."""
    root = os.path.join(cfg.OUTPUT_DIR, "negative_mining")
    rpn_dir = os.path.join(root, "rpn")
    files = [os.path.join(root, f"proposals_{name}.pkl") for name in cfg.DATASETS.TRAIN]
    return rpn_dir, os.path.join(rpn_dir, "model_final.pth"), files


def mine_negative_proposals(cfg, trainer_cls) -> List[str]:
    """Run stages 1 (RPN on positive chips) and 2 (proposals), skipping those whose outputs are
    stamped as made from this config and these training data, and logging why each other is run.

    Must be called on every process of a distributed run (the main process checks stamps and
    writes files, the others follow its decisions). Returns the proposal files, one per training
    dataset, for ``SNIPER.NEG.PROPOSAL_FILES``.
    """
    rpn_dir, rpn_model, files = mining_paths(cfg)

    def check_stage_one():  # on the main process: the datasets are digested once, here
        digests = dataset_digests(cfg.DATASETS.TRAIN)
        record = make_record(config_record(cfg, ignore=NOT_IN_STAGE_ONE), cfg.DATASETS.TRAIN, digests=digests)
        return digests, record, stale_reason(rpn_model, record)

    digests, stage_one, reason = decided_on_main_process(check_stage_one)
    rpn_cfg = model = None
    if reason is None:
        logger.info(f"Negative mining stage 1: {rpn_model} was made from this config and data, skipped.")
    else:
        logger.info(f"Negative mining stage 1 runs: {reason}.")
        rpn_cfg = _rpn_config(cfg, rpn_dir)
        model = _train_stage_one(rpn_cfg, trainer_cls, stage_one, rpn_model)
    stage_one_id = decided_on_main_process(lambda: read_stamp(stamp_path(rpn_model))["id"])
    stage_two_config = config_record(cfg, ignore=NOT_IN_MINING, keep=("SNIPER.TEST.SCALES",))
    for name, path in zip(cfg.DATASETS.TRAIN, files):
        record = make_record(stage_two_config, [name], inputs={"stage_one_stamp": stage_one_id}, digests=digests)
        reason = decided_on_main_process(lambda: stale_reason(path, record))
        if reason is None:
            logger.info(f"Negative mining stage 2: {path} was made from this RPN, config and data, skipped.")
            continue
        logger.info(f"Negative mining stage 2 runs for {name}: {reason}.")
        if model is None:
            rpn_cfg = _rpn_config(cfg, rpn_dir)
            model = trainer_cls.build_model(rpn_cfg)
            DetectionCheckpointer(model).load(rpn_model)
        proposals = extract_proposals(rpn_cfg, model, name)
        if comm.is_main_process():
            save_proposal_file(proposals, path)
            write_stamp(stamp_path(path), record, stage="negative mining stage 2: proposals")
        comm.synchronize()
    return files


def _rpn_config(cfg, rpn_dir):
    planner = build_chip_planner(_positives_only(cfg))
    return rpn_stage_config(cfg, len(planner.plan(0)), rpn_dir)


def _train_stage_one(rpn_cfg, trainer_cls, record, rpn_model):
    """Train the stage-1 RPN (resuming its own interrupted run), then stamp its final model."""
    if comm.is_main_process() and os.path.exists(stamp_path(rpn_model)):
        os.remove(stamp_path(rpn_model))  # the old model stops counting as done before anything changes
    resume = resume_or_restart(rpn_cfg.OUTPUT_DIR, record)
    epochs = rpn_cfg.SNIPER.MINING.RPN_EPOCHS
    logger.info(
        f"Negative mining stage 1: RPN-only training, {rpn_cfg.SOLVER.MAX_ITER} iterations ({epochs} epochs of "
        f"positive chips{', resumed' if resume else ''}) -> {rpn_cfg.OUTPUT_DIR}"
    )
    trainer = trainer_cls(rpn_cfg)
    trainer.resume_or_load(resume=resume)
    trainer.train()
    if comm.is_main_process():
        write_stamp(stamp_path(rpn_model), record, stage="negative mining stage 1: RPN-only training")
    comm.synchronize()
    return trainer.model.module if hasattr(trainer.model, "module") else trainer.model


def _positives_only(cfg):
    c = cfg.clone()
    c.defrost()
    c.SNIPER.NEG.PROPOSAL_FILES = ()
    c.freeze()
    return c
