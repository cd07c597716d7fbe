"""Draw the SNIPER chips of sample training images: one PNG per image, one panel per training scale.

``sniper-visualize`` (installed console script) and ``python tools/visualize_chips.py`` (repository)
run this.

    sniper-visualize --config-file configs/demo/sniper_shapes_R18_FPN.yaml \\
        --num-images 8 --output chips_vis [--epoch E]
    sniper-visualize --config-file configs/sniper_R_50_FPN_1x.yaml --output chips_vis \\
        --image-ids 139 285 --register-coco mydata annotations.json images/ DATASETS.TRAIN "('mydata',)"

Each panel shows the whole image with that scale's positive chips, negative chips (when
SNIPER.NEG.PROPOSAL_FILES is set), ground-truth boxes valid at the scale (valid in some chip of
it), invalid boxes and crowd boxes, in the colours of the legend. The chips are exactly those
training draws in that epoch (same seed, stride, negative-chip sample). Trailing KEY VALUE pairs
override the config, e.g. to preview other scales or valid ranges.
"""
import os
import re
import sys

import numpy as np
from detectron2.utils.logger import setup_logger

from sniper_d2.analysis import (
    load_training_planner,
    planned_chip_figure,
    progress,
    report_written,
    tool_argument_parser,
    tool_config,
    write_png,
)

__all__ = ["main", "output_name", "parse_args", "run", "select_images"]


def parse_args(argv=None):
    parser = tool_argument_parser(__doc__)
    parser.add_argument("--output", required=True, metavar="DIR", help="directory for the PNGs")
    parser.add_argument("--num-images", type=int, default=8, metavar="N", help="images to draw (default 8)")
    parser.add_argument(
        "--image-ids", nargs="+", default=[], metavar="ID",
        help="draw these images (dataset image ids) instead of a random sample",
    )
    parser.add_argument("--epoch", type=int, default=0, help="epoch whose chips are drawn (default 0)")
    parser.add_argument("--panel-size", type=int, default=512, help="longest side of each panel, px (default 512)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random image sample (default 0)")
    return parser.parse_args(argv)


def select_images(planner, num_images: int, image_ids, seed: int):
    """Table rows to draw: the images with ``image_ids`` (matched as text), else ``num_images``
    rows sampled without replacement (sorted)."""
    table = planner.table
    if image_ids:
        rows = {}
        for index, image_id in enumerate(table.image_ids):
            rows.setdefault(str(image_id), index)
        missing = [i for i in image_ids if i not in rows]
        if missing:
            raise KeyError(
                f"--image-ids: no image with id {', '.join(missing)} in {', '.join(table.dataset_names)} "
                f"(ids look like {', '.join(repr(i) for i in table.image_ids[:3])}). KEY VALUE overrides must "
                "follow a flag other than --image-ids, e.g. `--image-ids 1 2 --epoch 0 KEY VALUE`."
            )
        return [rows[i] for i in image_ids]
    if num_images < 1:
        raise ValueError(f"--num-images must be at least 1, got {num_images}.")
    count = min(num_images, len(table))
    return sorted(np.random.default_rng(seed).choice(len(table), size=count, replace=False).tolist())


def output_name(dataset: str, image_id, epoch: int) -> str:
    """File name of an image's figure (characters other than letters, digits, ``.-_`` become ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{dataset}_{image_id}") + f"_epoch{epoch}.png"


def main(argv=None):
    """Write the figures; returns their paths."""
    args = parse_args(argv)
    setup_logger(name="detectron2")
    cfg = tool_config(args)
    planner = load_training_planner(cfg)
    rows = select_images(planner, args.num_images, args.image_ids, args.seed)
    os.makedirs(args.output, exist_ok=True)
    paths = []
    for index in progress(rows, len(rows), "drawing"):
        ann = planner.table[index]
        path = os.path.join(args.output, output_name(ann.dataset, ann.image_id, args.epoch))
        paths.append(write_png(path, planned_chip_figure(planner, index, args.epoch, args.panel_size)))
    report_written(paths, args.output)
    return paths



def run(argv=None) -> None:
    """The ``sniper-visualize`` console script: :func:`main` on ``argv`` (default: the command line)."""
    main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    run()
