#!/usr/bin/env python
"""SNIPER training and evaluation with Detectron2 (same flags as Detectron2's tools/train_net.py).

    python train_net.py --config-file configs/sniper_R_50_FPN_1x.yaml --num-gpus 8
    python train_net.py --config-file configs/sniper_R_50_FPN_1x.yaml --eval-only MODEL.WEIGHTS model.pth
    python train_net.py --config-file ... --resume        # continue from OUTPUT_DIR/last_checkpoint

Trailing ``KEY VALUE`` pairs override the config. Training runs on SNIPER chips
(``SNIPER.TRAIN.ENABLED``); evaluation on the multi-scale pyramid (``SNIPER.TEST.MULTI_SCALE``).
"""
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser, default_setup, launch

import sniper_d2  # noqa: F401  (registers SNIPER components and built-in datasets)
from sniper_d2 import SniperTrainer as Trainer  # DefaultTrainer + chip loader + multi-scale test
from sniper_d2 import add_sniper_config, check_sniper_config


def setup(args):
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    check_sniper_config(cfg)
    default_setup(cfg, args)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        return Trainer.test(cfg, model)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()  # evaluates DATASETS.TEST at the end (and every TEST.EVAL_PERIOD)


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
