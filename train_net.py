#!/usr/bin/env python
"""SNIPER training and evaluation with Detectron2 (same flags as Detectron2's tools/train_net.py).

    python train_net.py --config-file configs/sniper_R_50_FPN_1x.yaml --num-gpus 8
    python train_net.py --config-file configs/sniper_R_50_FPN_1x.yaml --eval-only MODEL.WEIGHTS model.pth
    python train_net.py --config-file ... --resume        # continue from OUTPUT_DIR/last_checkpoint
    python train_net.py --config-file configs/sniper_R_50_FPN_1x.yaml --mine-negatives --num-gpus 8
    python train_net.py --config-file configs/sniper_R_50_FPN_1x.yaml \
        --register-coco my_train train.json images/ --register-coco my_val val.json images/ \
        DATASETS.TRAIN "('my_train',)" DATASETS.TEST "('my_val',)" MODEL.ROI_HEADS.NUM_CLASSES 5

``--register-coco NAME JSON IMAGE_ROOT`` (repeatable) registers a COCO-format file as dataset NAME
in every process, like Detectron2's ``register_coco_instances``; images without width/height in the
file get them from their headers.

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
import logging

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.data import DatasetCatalog

import sniper_d2  # noqa: F401  (registers SNIPER components and built-in datasets)
from sniper_d2 import SniperTrainer as Trainer  # DefaultTrainer + chip loader + multi-scale test
from sniper_d2 import add_sniper_config, check_sniper_config
from sniper_d2.data import register_coco_with_sizes
from sniper_d2.engine.run_guard import resume_or_refuse
from sniper_d2.mining import mine_negative_proposals, mining_paths


def build_config(args):
    """The frozen, checked config of ``args``, after registering its ``--register-coco`` datasets."""
    for name, json_file, image_root in args.register_coco:
        if name in DatasetCatalog.list():
            raise ValueError(f"--register-coco: a dataset named '{name}' is already registered; choose another name.")
        register_coco_with_sizes(name, json_file, image_root)
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    check_sniper_config(cfg)
    return cfg


def main(args):
    cfg = build_config(args)
    if args.eval_only:
        default_setup(cfg, args)  # logging (sniper_d2's lines included), OUTPUT_DIR/config.yaml
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        return Trainer.test(cfg, model)
    if args.mine_negatives:
        cfg = cfg.clone()
        cfg.defrost()
        cfg.SNIPER.NEG.PROPOSAL_FILES = tuple(mining_paths(cfg)[2])
        cfg.freeze()
    # before mining and before default_setup rewrites OUTPUT_DIR/config.yaml, so that a refused run
    # costs and changes nothing; raises rather than overwrite another run
    resume = resume_or_refuse(cfg, args.resume)
    default_setup(cfg, args)
    if resume and not args.resume:
        logging.getLogger("detectron2").info(
            f"{cfg.OUTPUT_DIR} holds a checkpoint of this config and data: resuming from it (see run_stamp.json)."
        )
    if args.mine_negatives:
        mine_negative_proposals(cfg, Trainer)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=resume)
    return trainer.train()  # evaluates DATASETS.TEST at the end (and every TEST.EVAL_PERIOD)


def argument_parser():
    """Detectron2's standard training arguments plus ``--mine-negatives`` and ``--register-coco``."""
    parser = default_argument_parser()
    parser.add_argument(
        "--register-coco", nargs=3, action="append", default=[], metavar=("NAME", "JSON", "IMAGE_ROOT"),
        help="register a COCO-format dataset as NAME (repeatable; images without width/height in the file "
        "get them from their headers); select it with DATASETS.TRAIN \"('NAME',)\" / DATASETS.TEST",
    )
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
