"""SNIPER training and evaluation with Detectron2 (same flags as Detectron2's tools/train_net.py).

``sniper-train`` (installed console script) and ``python train_net.py`` (repository) run this:

    sniper-train --config-file configs/sniper_R_50_FPN_1x.yaml --num-gpus 8
    sniper-train --config-file configs/sniper_R_50_FPN_1x.yaml --eval-only MODEL.WEIGHTS model.pth
    sniper-train --config-file ... --resume        # continue from OUTPUT_DIR/last_checkpoint
    sniper-train --config-file configs/sniper_R_50_FPN_1x.yaml --mine-negatives --num-gpus 8
    sniper-train --config-file configs/sniper_R_50_FPN_1x.yaml \\
        --register-coco my_train train.json images/ --register-coco my_val val.json images/ \\
        DATASETS.TRAIN "('my_train',)" DATASETS.TEST "('my_val',)" MODEL.ROI_HEADS.NUM_CLASSES 5
    sniper-train --config-file configs/lazy/sniper_R_50_FPN.py train.max_iter=1000   # LazyConfig

``--config-file`` is a path; the configs shipped with the package are listed, with their paths,
by ``python -m sniper_d2.model_zoo`` (e.g. ``sniper-train --config-file "$(python -m
sniper_d2.model_zoo demo/sniper_shapes_R18_FPN.yaml)"``).

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

A ``.py`` config file is a Detectron2 LazyConfig (``configs/lazy/``), trained by
:mod:`sniper_d2.cli.lazy_train` with Detectron2's ``key=value`` overrides (``train.max_iter=2``);
``--eval-only``, ``--resume``, ``--register-coco`` and the launch flags work the same, the run stamp
and ``--mine-negatives`` are YAML-only.
"""
import logging

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import default_argument_parser, default_setup, launch

import sniper_d2  # noqa: F401  (registers SNIPER components and built-in datasets)
from sniper_d2 import SniperTrainer as Trainer  # DefaultTrainer + chip loader + multi-scale test
from sniper_d2 import check_sniper_config
from sniper_d2.config import sniper_config_from_file
from sniper_d2.data import register_coco_datasets
from sniper_d2.engine.run_guard import resume_or_refuse
from sniper_d2.mining import mine_negative_proposals, mining_paths

__all__ = ["argument_parser", "build_config", "is_lazy_config", "main", "run"]

EXAMPLES = """Examples:
  sniper-train --config-file configs/sniper_R_50_FPN_1x.yaml --num-gpus 8 --mine-negatives
  sniper-train --config-file configs/sniper_R_50_FPN_1x.yaml --eval-only MODEL.WEIGHTS model.pth
  sniper-train --config-file configs/lazy/sniper_R_50_FPN.py train.max_iter=1000  (LazyConfig, key=value)
  sniper-train --config-file "$(python -m sniper_d2.model_zoo demo/sniper_shapes_R18_FPN.yaml)"

YAML configs take trailing KEY VALUE overrides, Python (LazyConfig) configs key=value ones.
`python -m sniper_d2.model_zoo` lists the configs installed with sniper_d2.
"""


def is_lazy_config(config_file: str) -> bool:
    """Whether ``config_file`` is a Detectron2 LazyConfig (a ``.py`` file) rather than YAML."""
    return config_file.endswith(".py")


def build_config(args):
    """The frozen, checked config of ``args``, after registering its ``--register-coco`` datasets."""
    if is_lazy_config(args.config_file):
        raise ValueError(
            f"--config-file {args.config_file} is a LazyConfig (Python) file: build_config reads YAML configs; "
            "main() runs LazyConfigs through sniper_d2.cli.lazy_train."
        )
    register_coco_datasets(args.register_coco)
    cfg = sniper_config_from_file(args.config_file, args.opts)
    cfg.freeze()
    check_sniper_config(cfg)
    return cfg


def main(args):
    """Train (or with ``--eval-only`` evaluate) as ``args`` say; returns the evaluation results."""
    if is_lazy_config(args.config_file):
        from . import lazy_train

        return lazy_train.main(args)
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
    parser = default_argument_parser(epilog=EXAMPLES)
    parser.description = "SNIPER training and evaluation with Detectron2 (YAML or LazyConfig configs)."
    parser.add_argument(
        "--register-coco", nargs=3, action="append", default=[], metavar=("NAME", "JSON", "IMAGE_ROOT"),
        help="register a COCO-format dataset as NAME (repeatable; images without width/height in the file "
        "get them from their headers); select it with DATASETS.TRAIN \"('NAME',)\" / DATASETS.TEST",
    )
    parser.add_argument(
        "--mine-negatives", action="store_true",
        help="mine negative-chip proposals first (RPN stage + proposal extraction), then train with them "
        "(YAML configs)",
    )
    return parser


def run(argv=None) -> None:
    """The ``sniper-train`` console script: parse ``argv`` (default: the command line) and
    ``launch`` :func:`main` on ``--num-gpus`` processes per machine."""
    args = argument_parser().parse_args(argv)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


if __name__ == "__main__":
    run()
