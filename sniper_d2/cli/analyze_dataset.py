"""Analyse a config's training set for SNIPER: are the scales and valid ranges right for it?

``sniper-analyze`` (installed console script) and ``python tools/analyze_dataset.py`` (repository)
run this.

    sniper-analyze --config-file configs/sniper_R_50_FPN_1x.yaml [--output DIR] [--suggest]
    sniper-analyze --config-file configs/sniper_R_50_FPN_1x.yaml --suggest \\
        --register-coco mydata annotations.json images/ DATASETS.TRAIN "('mydata',)"

Prints, and writes to DIR/dataset_analysis.json: the object-size distribution (sqrt(area)
percentiles, COCO small/medium/large shares), how many boxes each scale's valid range covers and
how many drive chips there, boxes that no scale covers (with image id and box), chips per image,
and pixels per image against single-scale (INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST) and whole-pyramid
training. Writes DIR/object_sizes.png, the size histogram with the ranges under it. With
--suggest it also proposes scales and valid ranges (objects at the detector's anchor sizes in chip
px, 32-512 by default) and prints them as YAML and as command-line overrides.

Only the annotations are read (image files need not exist). DIR defaults to OUTPUT_DIR/analysis.
"""
import json
import os
import sys

import numpy as np
from detectron2.utils.logger import setup_logger

from sniper_d2.analysis import (
    analyze_training_set,
    format_report,
    load_training_planner,
    plot_size_histogram,
    tool_argument_parser,
    tool_config,
)

__all__ = ["main", "parse_args", "run"]


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def parse_args(argv=None):
    parser = tool_argument_parser(__doc__)
    parser.add_argument("--output", metavar="DIR", help="where to write the JSON and PNG (default OUTPUT_DIR/analysis)")
    parser.add_argument("--epoch", type=int, default=0, help="epoch whose chips are counted (default 0)")
    parser.add_argument("--suggest", action="store_true", help="propose scales and valid ranges for this dataset")
    parser.add_argument(
        "--target-chip-px", nargs=2, type=float, metavar=("MIN", "MAX"),
        help="with --suggest: object sizes to aim for, chip px (default: smallest and largest anchor size)",
    )
    parser.add_argument(
        "--max-factor", type=float, default=3.0,
        help="with --suggest: largest finest-scale factor (default 3.0, the authors' finest COCO scale)",
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1,
        help="processes that generate the epoch's chips (default: all CPUs; results do not depend on it)",
    )
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Run the analysis, write the JSON and the histogram, print the report; returns the report."""
    args = parse_args(argv)
    setup_logger(name="detectron2")
    cfg = tool_config(args)
    output = args.output or os.path.join(cfg.OUTPUT_DIR, "analysis")
    planner = load_training_planner(cfg)
    analysis = analyze_training_set(
        cfg,
        planner,
        epoch=args.epoch,
        suggest=args.suggest,
        target_chip_px=tuple(args.target_chip_px) if args.target_chip_px else None,
        max_factor=args.max_factor,
        workers=args.workers,
    )
    report = analysis.report
    os.makedirs(output, exist_ok=True)
    json_path = os.path.join(output, "dataset_analysis.json")
    with open(json_path, "w") as f:
        json.dump(report, f, indent=1, default=_json_default)
    range_sets = [("configured", [(row["scale"], row["valid_range"]) for row in report["scales"]])]
    if "suggestion" in report and not report["suggestion"]["size_dependence"]["follows"]:  # same frame only
        range_sets.append(("suggested", [(row["scale"], row["valid_range"]) for row in report["suggestion"]["scales"]]))
    png_path = os.path.join(output, "object_sizes.png")
    plot_size_histogram(analysis.sizes, range_sets, png_path, title=f"Object sizes of {', '.join(cfg.DATASETS.TRAIN)}")
    print(format_report(report))
    print(f"\nWrote {json_path} and {png_path}")
    return report



def run(argv=None) -> None:
    """The ``sniper-analyze`` console script: :func:`main` on ``argv`` (default: the command line)."""
    main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    run()
