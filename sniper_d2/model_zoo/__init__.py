"""sniper_d2's shipped configs by name, modelled on ``detectron2.model_zoo``::

    from sniper_d2 import model_zoo
    cfg = model_zoo.get_config("sniper_R_50_FPN_1x.yaml")      # CfgNode with the SNIPER keys
    lazy = model_zoo.get_config("lazy/sniper_R_50_FPN.py")      # LazyConfig (DictConfig)
    path = model_zoo.get_config_file("demo/sniper_shapes_R18_FPN.yaml")

``python -m sniper_d2.model_zoo`` lists the configs; ``python -m sniper_d2.model_zoo NAME`` prints
one's path (for ``--config-file``). No trained weights are published: configs start from ImageNet
weights (COCO configs) or random initialisation (demo).
"""
from .config_files import config_root, get_config, get_config_file, list_configs

__all__ = ["config_root", "get_config", "get_config_file", "list_configs"]
