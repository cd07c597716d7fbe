"""SniperPredictor and tools/predict.py: the same detections as the evaluation path, Detectron2's
DefaultPredictor when single-scale, PNGs and a COCO results file, clear errors for bad inputs."""
import importlib.util
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.data.detection_utils import read_image
from detectron2.engine import DefaultPredictor
from detectron2.modeling import build_model

from sniper_d2 import SniperPredictor, add_sniper_config, build_inference_model, build_test_mapper

# Small test scales keep the R-18 demo model at a fraction of a second per image on one thread.
FAST_SCALES = ["SNIPER.TEST.SCALES", "(0.5, 'longest:96')", "SNIPER.TEST.VALID_RANGES", "((-1, 80), (40, -1))"]


@pytest.fixture(scope="module")
def predict_tool():
    """tools/predict.py as a module (its ``main(argv)`` runs it in this process)."""
    path = Path(__file__).resolve().parents[2] / "tools" / "predict.py"
    spec = importlib.util.spec_from_file_location("tools_predict", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def weights(tmp_path_factory, demo_config):
    """Random-init weights of the demo model, saved as a checkpoint file."""
    cfg = demo_cfg(demo_config)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("weights")
    DetectionCheckpointer(build_model(cfg), save_dir=str(folder)).save("random")
    return str(folder / "random.pth")


def demo_cfg(config_file, *opts):
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(FAST_SCALES + list(opts))
    return cfg


@pytest.fixture(scope="module")
def val_records(shapes_root):
    """The two smallest images of sniper_shapes_val."""
    return sorted(DatasetCatalog.get("sniper_shapes_val"), key=lambda r: r["height"] * r["width"])[:2]


def same_instances(got, want):
    assert got.image_size == want.image_size and len(want) > 0
    assert torch.equal(got.pred_boxes.tensor, want.pred_boxes.tensor)
    assert torch.equal(got.scores, want.scores) and torch.equal(got.pred_classes, want.pred_classes)


@pytest.mark.parametrize("input_format", ["BGR", "RGB"])
def test_predictor_gives_what_the_evaluation_path_gives(demo_config, weights, val_records, input_format):
    cfg = demo_cfg(demo_config, "MODEL.WEIGHTS", weights, "INPUT.FORMAT", input_format)
    predictor = SniperPredictor(cfg)
    assert not predictor.model.training and predictor.metadata.thing_classes == ["rectangle", "ellipse", "triangle"]
    record = val_records[0]
    got = predictor(read_image(record["file_name"], format="BGR"))["instances"]
    # train_net.py --eval-only: the test mapper's input through build_inference_model
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(weights)
    want = build_inference_model(cfg, model)([build_test_mapper(cfg)(record)])[0]["instances"]
    assert got.image_size == (record["height"], record["width"])
    same_instances(got, want)


def test_predictor_is_default_predictor_when_single_scale(demo_config, weights, val_records):
    cfg = demo_cfg(demo_config, "MODEL.WEIGHTS", weights, "SNIPER.TEST.MULTI_SCALE", "False",
                   "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "160")
    image = cv2.imread(val_records[0]["file_name"])
    predictor = SniperPredictor(cfg)
    assert predictor.inference_model is predictor.model
    same_instances(predictor(image)["instances"], DefaultPredictor(cfg)(image)["instances"])


def test_predictor_runs_tiled_in_one_call(demo_config, weights, val_records):
    cfg = demo_cfg(demo_config, "MODEL.WEIGHTS", weights, "SNIPER.TEST.SCALES", "(1.0,)",
                   "SNIPER.TEST.VALID_RANGES", "((-1, -1),)", "SNIPER.TEST.TILE_SIZE", "128",
                   "SNIPER.TEST.TILE_OVERLAP", "32")
    record = val_records[0]
    calls = []
    predictor = SniperPredictor(cfg)
    original = predictor.model.inference
    predictor.model.inference = lambda batch, do_postprocess=True: (
        calls.append([tuple(x["image"].shape[1:]) for x in batch]) or original(batch, do_postprocess=do_postprocess))
    out = predictor(cv2.imread(record["file_name"]))["instances"]
    inputs = [size for call in calls for size in call]
    assert len(inputs) > 1 and max(max(size) for size in inputs) <= 128  # tiles, none above 128 px
    assert out.image_size == (record["height"], record["width"]) and len(out) > 0
    boxes = out.pred_boxes.tensor
    assert (boxes[:, 2] <= record["width"]).all() and (boxes[:, 3] <= record["height"]).all()


def test_predictor_errors_name_the_problem(demo_config, weights, tmp_path):
    with pytest.raises(ValueError, match="MODEL.WEIGHTS is empty"):
        SniperPredictor(demo_cfg(demo_config))
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        SniperPredictor(demo_cfg(demo_config, "MODEL.WEIGHTS", str(tmp_path / "missing.pth")))
    plain = get_cfg()
    plain.MODEL.WEIGHTS = weights
    with pytest.raises(KeyError, match="add_sniper_config"):
        SniperPredictor(plain)
    predictor = SniperPredictor(demo_cfg(demo_config, "MODEL.WEIGHTS", weights))
    with pytest.raises(ValueError, match=r"HxWx3 .*\(20, 30\)"):
        predictor(np.zeros((20, 30), np.uint8))


def test_tool_writes_one_png_per_image_and_a_coco_results_file(predict_tool, demo_config, weights, val_records,
                                                               tmp_path):
    own = tmp_path / "own.jpg"  # an image that is not part of the dataset
    cv2.imwrite(str(own), np.full((40, 50, 3), 128, np.uint8))
    files = [r["file_name"] for r in val_records]
    out = tmp_path / "out"
    result = predict_tool.main(["--config-file", demo_config, "--input", *files, str(own), "--output", str(out),
                                "--confidence-threshold", "0.2", "MODEL.WEIGHTS", weights, *FAST_SCALES])
    assert sorted(os.listdir(out)) == sorted([os.path.splitext(os.path.basename(f))[0] + ".png" for f in files]
                                             + ["own.png", "predictions.json"])
    for png, path in zip(result["images"], files + [str(own)]):
        assert cv2.imread(png).shape == cv2.imread(path).shape
    with open(result["json"]) as f:
        entries = json.load(f)
    assert len(entries) == result["detections"] > 0
    sizes = {r["file_name"]: (r["width"], r["height"]) for r in val_records}
    sizes[str(own)] = (50, 40)
    ids = {r["file_name"]: r["image_id"] for r in val_records}
    ids[str(own)] = 2  # not in the dataset: its position in the input list
    for e in entries:
        assert set(e) == {"image_id", "file_name", "category_id", "bbox", "score"}
        assert e["image_id"] == ids[e["file_name"]]
        assert e["category_id"] in (1, 2, 3)  # the dataset's ids, not the model's 0-2
        x, y, w, h = e["bbox"]
        width, height = sizes[e["file_name"]]
        assert 0 <= x and 0 <= y and w >= 0 and h >= 0 and x + w <= width + 1e-3 and y + h <= height + 1e-3
        assert e["score"] >= 0.2


def test_tool_takes_directories_and_globs_and_names_bad_inputs(predict_tool, demo_config, weights, val_records,
                                                               tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for r in val_records:
        shutil.copy(r["file_name"], folder / os.path.basename(r["file_name"]))
    (folder / "notes.txt").write_text("not an image")
    args = ["--config-file", demo_config, "--output", str(tmp_path / "out"), "MODEL.WEIGHTS", weights, *FAST_SCALES]
    assert len(predict_tool.parse_args(["--config-file", "c", "--input", str(folder), "MODEL.WEIGHTS", "w"]).input) == 1
    assert predict_tool.expand_inputs([str(folder)]) == sorted(str(folder / os.path.basename(r["file_name"]))
                                                               for r in val_records)
    assert predict_tool.expand_inputs([str(folder / "*.jpg"), str(folder)]) == predict_tool.expand_inputs([str(folder)])

    with pytest.raises(FileNotFoundError, match=r"no file matches the pattern '.*\*.png'"):
        predict_tool.main(["--input", str(folder / "*.png"), *args])
    with pytest.raises(FileNotFoundError, match="'nowhere.jpg' is not a file"):
        predict_tool.main(["--input", "nowhere.jpg", *args])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="holds no image files"):
        predict_tool.main(["--input", str(empty), *args])
    broken = folder / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ValueError, match="Cannot read image '.*broken.jpg'"):
        predict_tool.main(["--input", str(broken), *args])
    with pytest.raises(FileNotFoundError, match="MODEL.WEIGHTS file 'gone.pth' does not exist"):
        predict_tool.main(["--config-file", demo_config, "--input", str(folder), "MODEL.WEIGHTS", "gone.pth"])
