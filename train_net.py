#!/usr/bin/env python
"""SNIPER training and evaluation with Detectron2: ``python train_net.py --config-file CONFIG ...``.

The same program as the installed ``sniper-train`` console script; its code and documentation
(examples, ``--register-coco``, ``--mine-negatives``, re-running after a crash, LazyConfig
``.py`` configs) are in ``sniper_d2/cli/train.py``. ``main``, ``argument_parser`` and
``build_config`` are importable from here as before.
"""
from sniper_d2.cli.train import argument_parser, build_config, main, run

__all__ = ["argument_parser", "build_config", "main", "run"]

if __name__ == "__main__":
    run()
