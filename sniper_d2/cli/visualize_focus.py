"""Draw a trained AutoFocus model's coarse-to-fine test of images: one PNG per image, one panel per test scale.

``sniper-visualize-focus`` (installed console script) and ``python tools/visualize_focus.py``
(repository) run this.

    sniper-visualize-focus --config-file configs/demo/sniper_autofocus_shapes_R18_FPN.yaml \\
        --output focus_vis --input photos/ 'aerial/*.tif' MODEL.WEIGHTS output/demo_autofocus/model_final.pth
    sniper-visualize-focus --config-file CFG --output focus_vis --image-ids 139 285 MODEL.WEIGHTS W
    sniper-visualize-focus --config-file CFG --output focus_vis --num-images 8 MODEL.WEIGHTS W

The model (MODEL.META_ARCHITECTURE SniperAutoFocusRCNN, weights from MODEL.WEIGHTS) runs each image
as SniperPredictor does with SNIPER.TEST.MULTI_SCALE and SNIPER.TEST.AUTOFOCUS.ENABLED forced on:
coarsest scale first on the whole image, each pruned scale only on the FocusChips of the next
coarser scale's FocusPixel map (SNIPER.TEST.AUTOFOCUS.*). The figure has one panel per
SNIPER.TEST.SCALES entry, coarsest on the left: the image under that scale's FocusPixel map (heat
overlay; cells the scale did not run dimmed and hatched), the regions it ran on (solid) and the
FocusChips its map gives the next finer scale (dashed); its header gives the scale, the share of
that scale's px processed and the threshold of the next finer scale's chips. PNGs are named after
the image files.

Images: --input takes files, directories (their image files, not recursive) and glob patterns
(quote them); --image-ids or --num-images (default 4, sampled with --seed) take images of the
first DATASETS.TEST dataset. Trailing KEY VALUE pairs override the config (e.g. the thresholds,
SNIPER.TEST.AUTOFOCUS.THRESHOLDS); MODEL.WEIGHTS is required.
"""
import argparse
import os
import sys
from typing import List

import numpy as np
from detectron2.data import DatasetCatalog
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.utils.logger import setup_logger

from sniper_d2 import SniperPredictor
from sniper_d2.analysis import (
    focus_panels,
    progress,
    render_focus_panels,
    report_written,
    split_config_overrides,
    tool_argument_parser,
    tool_config,
    write_png,
)
from sniper_d2.cli.predict import expand_inputs, output_names, read_bgr_image

__all__ = ["focus_config", "main", "parse_args", "run", "select_images"]

DEFAULT_NUM_IMAGES = 4
# What this tool draws: the coarse-to-fine test, whatever the config says.
FORCED_OVERRIDES = ["SNIPER.TEST.MULTI_SCALE", "True", "SNIPER.TEST.AUTOFOCUS.ENABLED", "True"]


def parse_args(argv=None):
    parser = tool_argument_parser(__doc__)
    parser.add_argument("--output", required=True, metavar="DIR", help="directory for the PNGs")
    images = parser.add_mutually_exclusive_group()
    images.add_argument("--input", nargs="+", metavar="PATH",
                        help="image files, directories of images, or glob patterns")
    images.add_argument("--image-ids", nargs="+", metavar="ID",
                        help="draw these images (ids) of the first DATASETS.TEST dataset")
    images.add_argument("--num-images", type=int, metavar="N", help="draw N images sampled from the first "
                        f"DATASETS.TEST dataset (default {DEFAULT_NUM_IMAGES})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --num-images sample (default 0)")
    parser.add_argument("--panel-size", type=int, default=512, help="longest side of each panel, px (default 512)")
    args = parser.parse_args(argv)
    for name, flag in (("input", "--input"), ("image_ids", "--image-ids")):
        if getattr(args, name) is not None:
            values, overrides = split_config_overrides(getattr(args, name))
            if not values:
                parser.error(f"{flag} needs at least one value before the KEY VALUE overrides")
            setattr(args, name, values)
            args.opts = overrides + list(args.opts)
    return args


def focus_config(args):
    """The frozen config of ``args`` with the AutoFocus test forced on (:data:`FORCED_OVERRIDES`);
    raises ValueError if MODEL.META_ARCHITECTURE has no FocusPixel branch."""
    cfg = tool_config(argparse.Namespace(**{**vars(args), "opts": list(args.opts) + FORCED_OVERRIDES}))
    architecture = META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE)
    if not callable(getattr(architecture, "inference_with_focus", None)):
        raise ValueError(
            f"--config-file {args.config_file}: MODEL.META_ARCHITECTURE {cfg.MODEL.META_ARCHITECTURE!r} has no "
            "FocusPixel branch (inference_with_focus), so there are no FocusPixel maps to draw. Use an AutoFocus "
            "config (MODEL.META_ARCHITECTURE 'SniperAutoFocusRCNN', e.g. "
            "configs/demo/sniper_autofocus_shapes_R18_FPN.yaml) and weights trained with it."
        )
    return cfg


def select_images(cfg, args) -> List[str]:
    """Image paths to draw: ``--input``'s (see :func:`~sniper_d2.cli.predict.expand_inputs`), else the
    images of the first DATASETS.TEST dataset with ``--image-ids`` (matched as text), else
    ``--num-images`` of them sampled without replacement (dataset order)."""
    if args.input:
        return expand_inputs(args.input)
    if not len(cfg.DATASETS.TEST):
        raise ValueError("No images to draw: give --input, or name a test dataset in DATASETS.TEST for "
                         "--image-ids / --num-images.")
    name = cfg.DATASETS.TEST[0]
    if name not in DatasetCatalog.list():
        raise KeyError(f"DATASETS.TEST names '{name}', which is not registered: register it (--register-coco "
                       "NAME JSON_FILE IMAGE_ROOT) or give --input.")
    records = DatasetCatalog.get(name)
    if not records:
        raise ValueError(f"Dataset '{name}' (DATASETS.TEST) has no images.")
    if args.image_ids:
        by_id = {}
        for record in records:
            by_id.setdefault(str(record["image_id"]), record["file_name"])
        missing = [i for i in args.image_ids if i not in by_id]
        if missing:
            raise KeyError(f"--image-ids: no image with id {', '.join(missing)} in dataset '{name}' (ids look like "
                           f"{', '.join(repr(r['image_id']) for r in records[:3])}).")
        return [by_id[i] for i in args.image_ids]
    num_images = DEFAULT_NUM_IMAGES if args.num_images is None else args.num_images
    if num_images < 1:
        raise ValueError(f"--num-images must be at least 1, got {num_images}.")
    rows = np.random.default_rng(args.seed).choice(len(records), size=min(num_images, len(records)), replace=False)
    return [records[i]["file_name"] for i in sorted(rows.tolist())]


def main(argv=None) -> List[str]:
    """Run the model on each image and write its figure; returns the PNG paths."""
    args = parse_args(argv)
    setup_logger(name="detectron2")
    cfg = focus_config(args)
    paths = select_images(cfg, args)
    predictor = SniperPredictor(cfg)
    inference = predictor.inference_model
    os.makedirs(args.output, exist_ok=True)
    written = []
    for path, name in progress(list(zip(paths, output_names(paths))), len(paths), "drawing"):
        image = read_bgr_image(path)
        inference.reset_pixel_counts()
        predictor(image)
        title = (f"{path} ({image.shape[1]}x{image.shape[0]} px): "
                 f"{inference.pixel_counts.processed_share():.0%} of the full pyramid's px processed")
        figure = render_focus_panels(image, focus_panels(inference), title, args.panel_size)
        written.append(write_png(os.path.join(args.output, name), figure))
    report_written(written, args.output)
    return written


def run(argv=None) -> None:
    """The ``sniper-visualize-focus`` console script: :func:`main` on ``argv`` (default: the command line)."""
    main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    run()
