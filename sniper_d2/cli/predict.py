"""Run a trained SNIPER model on image files: one drawing per image and one COCO results file.

``sniper-predict`` (installed console script) and ``python tools/predict.py`` (repository)
run this.

    sniper-predict --config-file configs/sniper_R_50_FPN_1x.yaml --input photos/ \\
        --output predictions MODEL.WEIGHTS output/model_final.pth
    sniper-predict --config-file CFG --input 'aerial/*.tif' a.jpg --confidence-threshold 0.3 \\
        MODEL.WEIGHTS model.pth SNIPER.TEST.TILE_SIZE 1024 SNIPER.TEST.TILE_ABOVE 4000

Each image goes through SniperPredictor: SNIPER's multi-scale test (every SNIPER.TEST.SCALES
scale, its valid range, the soft-NMS merge; tiled where SNIPER.TEST.TILE_SIZE says so), or
Detectron2's single-scale test when SNIPER.TEST.MULTI_SCALE is False. Writes to DIR (default
OUTPUT_DIR/predict):

* ``<image name>.png``: the image with its detections scoring at least the threshold, drawn by
  Detectron2's Visualizer (class names from DATASETS.TEST's metadata when it names a registered
  dataset);
* ``predictions.json``: COCO results, a list of ``{"image_id", "file_name", "category_id",
  "bbox": [x, y, width, height] (original px), "score"}`` for the same detections. Category ids
  are the dataset's own (e.g. COCO's 1-90) when DATASETS.TEST names a registered COCO-format
  dataset, else the model's contiguous class ids 0..NUM_CLASSES-1; ``image_id`` is the dataset's
  id of an image file that belongs to it, else the image's position in the input list. Use
  ``--confidence-threshold 0`` for a results file to evaluate (AP needs the low-scoring
  detections too).

--input takes files, directories (their image files, not recursive) and glob patterns (quote
them). Images are read with OpenCV (up to 2^30 px, EXIF orientation applied). Trailing KEY VALUE
pairs override the config; MODEL.WEIGHTS is required.
"""
import glob
import json
import logging
import os
import sys
from typing import Dict, List, Optional

import cv2
import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.utils.logger import setup_logger
from detectron2.utils.visualizer import Visualizer
from tqdm import tqdm

from sniper_d2 import SniperPredictor
from sniper_d2.analysis import split_config_overrides, tool_argument_parser, tool_config, write_png

__all__ = [
    "IMAGE_EXTENSIONS", "coco_results", "dataset_info", "expand_inputs", "main", "output_names", "parse_args",
    "read_bgr_image", "run",
]

logger = logging.getLogger("sniper_d2.predict")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2")


def parse_args(argv=None):
    parser = tool_argument_parser(__doc__)
    parser.add_argument("--input", nargs="+", required=True, metavar="PATH",
                        help="image files, directories of images, or glob patterns")
    parser.add_argument("--output", metavar="DIR", help="where to write the PNGs and predictions.json "
                        "(default OUTPUT_DIR/predict)")
    parser.add_argument("--confidence-threshold", type=float, default=0.5, metavar="T",
                        help="detections scoring below T are neither drawn nor written (default 0.5)")
    args = parser.parse_args(argv)
    args.input, overrides = split_config_overrides(args.input)
    args.opts = overrides + list(args.opts)
    if not args.input:
        parser.error("--input needs at least one image file, directory or glob pattern before the KEY VALUE overrides")
    return args


def expand_inputs(items: List[str]) -> List[str]:
    """Image paths of ``--input``: files as given, directories' image files (sorted), glob
    matches (sorted); each path once, in that order."""
    paths = []
    for item in items:
        if os.path.isdir(item):
            found = sorted(os.path.join(item, n) for n in os.listdir(item) if n.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                raise FileNotFoundError(
                    f"--input: directory '{item}' holds no image files ({', '.join(IMAGE_EXTENSIONS)})."
                )
        elif os.path.isfile(item):
            found = [item]
        elif glob.has_magic(item):
            found = sorted(p for p in glob.glob(item) if os.path.isfile(p))
            if not found:
                raise FileNotFoundError(f"--input: no file matches the pattern '{item}'.")
        else:
            raise FileNotFoundError(f"--input: '{item}' is not a file, a directory or a glob pattern that matches.")
        paths.extend(found)
    return list(dict.fromkeys(paths))


def read_bgr_image(path: str) -> np.ndarray:
    """The image file at ``path`` as an HxWx3 uint8 BGR array; raises naming the file."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"Cannot read image '{path}': not an image OpenCV can decode, or a damaged file.")
    return image


def dataset_info(cfg):
    """``(metadata, contiguous -> dataset category id or None, real path -> image id)`` of the
    first DATASETS.TEST dataset; empty metadata when it names none or an unregistered one."""
    name = cfg.DATASETS.TEST[0] if len(cfg.DATASETS.TEST) else None
    if name is None or name not in DatasetCatalog.list():
        if name is not None:
            logger.warning(f"DATASETS.TEST names '{name}', which is not registered: classes are drawn as "
                           "numbers and written as contiguous ids 0..NUM_CLASSES-1.")
        return MetadataCatalog.get("__sniper_predict_unnamed"), None, {}
    metadata = MetadataCatalog.get(name)
    image_ids = {}
    try:
        # Loading a COCO-format dataset puts its category-id map into the metadata (Detectron2's
        # load_coco_json); its file names identify the inputs that belong to it.
        records = DatasetCatalog.get(name)
        image_ids = {os.path.realpath(r["file_name"]): r["image_id"] for r in records if "file_name" in r}
    except Exception as e:  # noqa: BLE001  (files of the dataset absent: predict anyway)
        logger.warning(f"Could not load dataset '{name}' ({type(e).__name__}: {e}); image ids are input positions.")
    id_map = metadata.get("thing_dataset_id_to_contiguous_id", None)
    to_dataset_id = {v: k for k, v in id_map.items()} if id_map else None
    return metadata, to_dataset_id, image_ids


def coco_results(instances, image_id, file_name: str, to_dataset_id: Optional[Dict[int, int]]) -> List[dict]:
    """COCO results entries of one image's ``instances`` (XYXY original px -> XYWH)."""
    boxes = instances.pred_boxes.tensor.tolist()
    entries = []
    for (x0, y0, x1, y1), score, cls in zip(boxes, instances.scores.tolist(), instances.pred_classes.tolist()):
        category = to_dataset_id[cls] if to_dataset_id is not None else cls
        entries.append({"image_id": image_id, "file_name": file_name, "category_id": int(category),
                        "bbox": [x0, y0, x1 - x0, y1 - y0], "score": score})
    return entries


def output_names(paths: List[str]) -> List[str]:
    """PNG name per input: its file name with ``.png``; repeated names get ``_1``, ``_2``..."""
    names, seen = [], {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        names.append(f"{stem}.png" if count == 0 else f"{stem}_{count}.png")
    return names


def main(argv=None) -> dict:
    """Predict, draw and write; returns ``{"images": [PNG paths], "json": path, "detections": n}``."""
    args = parse_args(argv)
    setup_logger(name="detectron2")  # sniper_d2's lines (e.g. the tile-overlap warning) go through it
    cfg = tool_config(args)
    paths = expand_inputs(args.input)
    output = args.output or os.path.join(cfg.OUTPUT_DIR, "predict")
    predictor = SniperPredictor(cfg)
    metadata, to_dataset_id, dataset_image_ids = dataset_info(cfg)
    os.makedirs(output, exist_ok=True)
    results, written = [], []
    for position, (path, name) in enumerate(tqdm(list(zip(paths, output_names(paths))), desc="predicting",
                                                  unit="img", dynamic_ncols=True)):
        image = read_bgr_image(path)
        instances = predictor(image)["instances"].to("cpu")
        instances = instances[instances.scores >= args.confidence_threshold]
        image_id = dataset_image_ids.get(os.path.realpath(path), position)
        results.extend(coco_results(instances, image_id, path, to_dataset_id))
        drawing = Visualizer(image[:, :, ::-1], metadata).draw_instance_predictions(instances).get_image()
        written.append(write_png(os.path.join(output, name), drawing[:, :, ::-1]))
    json_path = os.path.join(output, "predictions.json")
    with open(json_path, "w") as f:
        json.dump(results, f)
    print(f"{len(results)} detections (score >= {args.confidence_threshold:g}) in {len(paths)} image(s); "
          f"wrote {len(written)} PNG(s) and {json_path}")
    return {"images": written, "json": json_path, "detections": len(results)}



def run(argv=None) -> None:
    """The ``sniper-predict`` console script: :func:`main` on ``argv`` (default: the command line)."""
    main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    run()
