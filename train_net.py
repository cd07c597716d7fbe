#!/usr/bin/env python
"""SNIPER training and evaluation with Detectron2 (same flags as Detectron2's tools/train_net.py).

    python train_net.py --config-file configs/sniper_R_50_FPN_1x.yaml --num-gpus 8
    python train_net.py --config-file configs/sniper_R_50_FPN_1x.yaml --eval-only MODEL.WEIGHTS model.pth
    python train_net.py --config-file ... --resume        # continue from OUTPUT_DIR/last_checkpoint
    python train_net.py --config-file configs/sniper_R_50_FPN_1x.yaml --mine-negatives --num-gpus 8

``--mine-negatives`` runs the whole negative-chip pipeline: (1) a short RPN-only schedule on
positive chips, (2) its proposals on the full training images, written to
OUTPUT_DIR/negative_mining/proposals_<dataset>.pkl, (3) SNIPER training with negative chips from
those files.

After a crash or a kill, re-run the same command. Checkpoints and mining outputs are written under
a temporary name and renamed when complete, so none is ever torn, and each is checked against what
it was made from:

* mining: stage 1 (``negative_mining/rpn/model_final.pth``) and each stage-2 proposal file are
  reused only if their ``.stamp.json`` records the current config keys that matter to them and
  the current content of the ``DATASETS.TRAIN`` datasets (file names, ids, sizes, boxes); else the
  stage is redone and the log says why (changed datasets or keys, or no stamp: interrupted). A
  redone stage 1 makes the proposal files stale too;
* training: if OUTPUT_DIR holds a checkpoint (``last_checkpoint``) of a run with the same config
  and training data (``OUTPUT_DIR/run_stamp.json``), training resumes from it, with or without
  ``--resume``. If that run had another config, or left no stamp, the command stops with an error
  rather than overwrite its checkpoints: add ``--resume`` to continue from them with the new
  config, or choose a new OUTPUT_DIR. With ``SEED >= 0`` (and ``DATALOADER.NUM_WORKERS 0``, for
  the flips) the re-run ends with the weights of an uninterrupted run.

Trailing ``KEY VALUE`` pairs override the config. Training runs on SNIPER chips
(``SNIPER.TRAIN.ENABLED``); evaluation on the multi-scale pyramid (``SNIPER.TEST.MULTI_SCALE``).
"""
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

import sniper_d2  # noqa: F401  (registers SNIPER components and built-in datasets)
from sniper_d2 import SniperTrainer as Trainer  # DefaultTrainer + chip loader + multi-scale test
from sniper_d2 import add_sniper_config, check_sniper_config
from sniper_d2.engine.run_guard import resume_or_refuse
from sniper_d2.mining import mine_negative_proposals, mining_paths


def setup(args):
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    check_sniper_config(cfg)
    default_setup(cfg, args)
    # sniper_d2's own log lines (chip statistics, mining stages, summary) next to Detectron2's
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="sniper_d2", abbrev_name="sniper")
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        return Trainer.test(cfg, model)
    if args.mine_negatives:
        cfg = cfg.clone()
        cfg.defrost()
        cfg.SNIPER.NEG.PROPOSAL_FILES = tuple(mining_paths(cfg)[2])
        cfg.freeze()
    # before mining, so that a refused run costs nothing; raises rather than overwrite another run
    resume = resume_or_refuse(cfg, args.resume)
    if args.mine_negatives:
        mine_negative_proposals(cfg, Trainer)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=resume)
    return trainer.train()  # evaluates DATASETS.TEST at the end (and every TEST.EVAL_PERIOD)


def argument_parser():
    """Detectron2's standard training arguments plus ``--mine-negatives``."""
    parser = default_argument_parser()
    parser.add_argument(
        "--mine-negatives", action="store_true",
        help="mine negative-chip proposals first (RPN stage + proposal extraction), then train with them",
    )
    return parser


if __name__ == "__main__":
    args = argument_parser().parse_args()
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
