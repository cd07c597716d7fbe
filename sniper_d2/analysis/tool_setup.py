"""Command-line set-up shared by the analysis tools: Detectron2-style flags and the config."""
import argparse
import os
import re
from typing import List, Sequence, Tuple

import cv2

from ..config import sniper_config_from_file
from ..data import register_coco_datasets

__all__ = ["report_written", "split_config_overrides", "tool_argument_parser", "tool_config", "write_png"]

# A config key such as MODEL.WEIGHTS: where a list option's values end and the overrides begin.
_CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")


def tool_argument_parser(description: str) -> argparse.ArgumentParser:
    """``--config-file``, ``--register-coco`` and trailing ``KEY VALUE`` config overrides."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE", help="path to the config file")
    parser.add_argument(
        "--register-coco", nargs=3, action="append", default=[], metavar=("NAME", "JSON_FILE", "IMAGE_ROOT"),
        help="register a COCO-format annotation file as dataset NAME before reading the config "
        "(repeatable; images without width/height in the file get them from their headers); select "
        "it with DATASETS.TRAIN \"('NAME',)\"",
    )
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, default=[],
        help="config overrides as KEY VALUE pairs at the end, e.g. SNIPER.CHIP_SIZE 256",
    )
    return parser


def tool_config(args):
    """The frozen config of parsed ``args`` (SNIPER keys added), after registering ``--register-coco``."""
    if args.config_file.endswith(".py"):
        raise ValueError(
            f"--config-file {args.config_file} is a LazyConfig (Python) file; this tool reads YAML configs "
            "(e.g. configs/sniper_R_50_FPN_1x.yaml, configs/demo/sniper_shapes_R18_FPN.yaml)."
        )
    register_coco_datasets(args.register_coco)
    cfg = sniper_config_from_file(args.config_file, args.opts)
    cfg.freeze()
    return cfg


def split_config_overrides(values: Sequence[str]) -> Tuple[List[str], List[str]]:
    """``(values, overrides)``: the words of a list option (``nargs="+"`` takes every word up to the
    next flag) before and from the first one that looks like a config key (``MODEL.WEIGHTS``) and
    names no file, where the trailing KEY VALUE overrides begin."""
    for i, value in enumerate(values):
        if _CONFIG_KEY.match(value) and not os.path.exists(value):
            return list(values[:i]), list(values[i:])
    return list(values), []


def write_png(path: str, image) -> str:
    """Write ``image`` (HxWx3 uint8, BGR) to ``path``; raise OSError naming ``--output`` if it
    cannot be written. Returns ``path``."""
    if not cv2.imwrite(path, image):
        raise OSError(f"Could not write {path}: check that --output is a writable directory.")
    return path


def report_written(paths: Sequence[str], output_dir: str) -> None:
    """Print how many figures were written to ``output_dir``, one path per line."""
    print(f"Wrote {len(paths)} figure(s) to {output_dir}:")
    print("\n".join(f"  {p}" for p in paths))
