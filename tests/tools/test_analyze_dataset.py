"""tools/analyze_dataset.py: report numbers against the dataset, uncovered boxes, the suggestion."""
import json

import cv2
import numpy as np
import pytest
import yaml
from detectron2.config import CfgNode, get_cfg
from detectron2.data import DatasetCatalog
from detectron2.structures import BoxMode

from sniper_d2.chips import ValidRange
from sniper_d2.analysis import load_training_planner
from sniper_d2.config import add_sniper_config
from sniper_d2.data import build_chip_planner

from sniper_test_data import register_dataset


def _cfg(config_file, opts=()):
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    return cfg


def _dataset_boxes(name):
    """(sqrt(area) of the non-crowd boxes, crowd count), straight from the dataset dicts."""
    sizes, crowd = [], 0
    for d in DatasetCatalog.get(name):
        for a in d["annotations"]:
            x0, y0, x1, y1 = BoxMode.convert(list(a["bbox"]), a["bbox_mode"], BoxMode.XYXY_ABS)
            x0, x1 = np.clip([x0, x1], 0, d["width"])
            y0, y1 = np.clip([y0, y1], 0, d["height"])
            if a.get("iscrowd", 0):
                crowd += 1
            else:
                sizes.append(np.sqrt((x1 - x0) * (y1 - y0)))
    return np.array(sizes), crowd


def _in_some_range(sizes, pairs):
    return np.stack([ValidRange.from_config(p).contains_train(sizes) for p in pairs]).any(axis=0)


@pytest.fixture(scope="module")
def shapes_report(shapes_root, analyze_tool, demo_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis")
    returned = analyze_tool.main(["--config-file", demo_config, "--output", str(out), "--suggest", "--workers", "1"])
    with open(out / "dataset_analysis.json") as f:
        report = json.load(f)
    assert report == json.loads(json.dumps(returned))
    return report, out


def test_sizes_and_counts_match_the_dataset(shapes_report, demo_config):
    report, _ = shapes_report
    cfg = _cfg(demo_config)
    sizes, crowd = _dataset_boxes("sniper_shapes_train")
    dicts = DatasetCatalog.get("sniper_shapes_train")
    assert report["images"]["count"] == len(dicts)
    assert report["images"]["without_boxes"] == sum(
        not any(not a.get("iscrowd", 0) for a in d["annotations"]) for d in dicts
    )
    assert report["boxes"] == {"count": len(sizes) + crowd, "crowd": crowd, "analysed": len(sizes)}
    assert crowd > 0  # the crowd boxes are counted apart, not analysed
    for q in (5, 50, 95):
        assert report["sizes"]["percentiles"][f"p{q}"] == pytest.approx(np.percentile(sizes, q), rel=1e-6)
    counts = report["sizes"]["counts"]
    assert counts == {
        "small": int((sizes < 32).sum()),
        "medium": int(((sizes >= 32) & (sizes < 96)).sum()),
        "large": int((sizes >= 96).sum()),
    }
    assert sum(report["sizes"]["shares"].values()) == pytest.approx(1.0)
    for row, pair in zip(report["scales"], cfg.SNIPER.TRAIN.VALID_RANGES):
        assert row["valid_range"] == list(pair)
        assert row["boxes_in_range"] == int(ValidRange.from_config(pair).contains_train(sizes).sum())
        assert row["boxes_driving_chips"] <= row["boxes_in_range"]
    uncovered = ~_in_some_range(sizes, cfg.SNIPER.TRAIN.VALID_RANGES)
    assert report["uncovered"]["in_no_valid_range"]["count"] == int(uncovered.sum())


def test_chip_and_pixel_figures_match_the_training_planner(shapes_report, demo_config):
    report, _ = shapes_report
    cfg = _cfg(demo_config)
    planner = build_chip_planner(cfg)  # the training path (checks the image files, too)
    plan = planner.plan(0)
    stats = plan.stats
    images = stats["images"]
    assert report["chips"]["positive"] == stats["positive_chips"]
    assert report["chips"]["negative"] == stats["negative_chips"] == 0  # no proposal files configured
    assert report["chips"]["positive_per_image"] == pytest.approx(stats["positive_chips"] / images)
    assert report["chips"]["images_without_chips"] == images - stats["images_with_chips"]
    for s, row in enumerate(report["scales"]):
        assert row["positive_chips"] == int((plan.scale_index == s).sum())
    pixels = report["pixels"]
    assert pixels["chips_per_image"] == pytest.approx(stats["pixels_per_image"])
    assert pixels["padded_chips_per_image"] == pytest.approx(len(plan) * cfg.SNIPER.CHIP_SIZE**2 / images)
    # Single-scale: Detectron2's shortest-edge resize to 800 (longest <= 1333) of every image.
    single = []
    for w, h in planner.table.sizes:
        scale = min(800 / min(w, h), 1333 / max(w, h))
        single.append(int(w * scale + 0.5) * int(h * scale + 0.5))
    assert pixels["single_scale_per_image"] == pytest.approx(np.mean(single), rel=1e-3)
    assert pixels["chips_vs_single_scale"] == pytest.approx(stats["pixels_per_image"] / np.mean(single), rel=1e-3)


def test_suggestion_covers_every_box_and_pastes_into_a_config(shapes_report, demo_config):
    report, out = shapes_report
    suggestion = report["suggestion"]
    sizes, _ = _dataset_boxes("sniper_shapes_train")
    ranges = suggestion["config"]["SNIPER.TRAIN.VALID_RANGES"]
    assert _in_some_range(sizes, ranges).all()
    assert suggestion["uncovered"]["in_no_valid_range"]["count"] == 0
    assert suggestion["uncovered"]["drive_no_chip"]["count"] == 0
    assert sum(row["boxes_in_range"] for row in suggestion["scales"]) >= len(sizes)
    # The YAML block and the command-line overrides give the same config.
    from_yaml = _cfg(demo_config)
    from_yaml.merge_from_other_cfg(CfgNode(yaml.safe_load(suggestion["yaml"])))
    from_line = _cfg(demo_config, [t.strip('"') for t in _split_overrides(suggestion["overrides"])])
    for key, value in suggestion["config"].items():
        node_yaml, node_line = from_yaml, from_line
        for part in key.split("."):
            node_yaml, node_line = node_yaml[part], node_line[part]
        assert tuple(map(_as_tuple, node_yaml)) == tuple(map(_as_tuple, node_line)) == tuple(map(_as_tuple, value))
    # Histogram PNG with the configured and suggested ranges.
    image = cv2.imread(str(out / "object_sizes.png"))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 600


def _split_overrides(line):
    tokens, quoted = [], False
    for part in line.split(" "):
        if quoted:
            tokens[-1] += " " + part
        else:
            tokens.append(part)
        quoted = tokens[-1].count('"') == 1
    return tokens


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


def test_boxes_no_range_covers_are_listed_with_their_image(analyze_tool, tmp_path, capsys):
    """Annotations only (no image files), enough images for a progress bar; gaps between ranges."""
    records = []
    for i in range(320):
        size = 10.0 if i != 7 else 20.0  # image 7: a box in the gap [16, 24) between two ranges
        annos = [{"bbox": [5, 5, size, size], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0}]
        if i == 11:  # a 1 px thin box: in the finest range, but too thin to drive a chip there
            annos.append({"bbox": [40, 10, 1, 30], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0})
        records.append({"file_name": str(tmp_path / f"missing{i}.jpg"), "image_id": i, "width": 96, "height": 80,
                        "annotations": annos})
    register_dataset("sniper_test_tools_gaps", records)
    config = tmp_path / "gaps.yaml"
    config.write_text(
        "DATASETS:\n  TRAIN: ('sniper_test_tools_gaps',)\n"
        "SNIPER:\n  CHIP_SIZE: 64\n  TRAIN:\n    SCALES: (2.0, 1.0, 'longest:64')\n"
        "    VALID_RANGES: ((-1, 16), (24, 40), (48, -1))\n    CHIP_STRIDE: 8\n"
    )
    report = analyze_tool.main(["--config-file", str(config), "--output", str(tmp_path / "out"), "--suggest",
                                "--target-chip-px", "8", "48", "--workers", "2"])
    assert "chips of epoch 0" in capsys.readouterr().err  # progress bar on 300+ images
    missing = report["uncovered"]["in_no_valid_range"]
    assert missing["count"] == 1
    assert missing["examples"][0]["image_id"] == 7
    assert missing["examples"][0]["box_xyxy"] == [5.0, 5.0, 25.0, 25.0]
    assert missing["examples"][0]["sqrt_area"] == 20.0
    nowhere = report["uncovered"]["drive_no_chip"]
    assert sorted((e["image_id"], e["box_index"]) for e in nowhere["examples"]) == [(7, 0), (11, 1)]
    plan = load_training_planner(_cfg(str(config))).plan(0)
    valid_somewhere = {(int(plan.image_index[c]), int(k)) for c in range(len(plan))
                       for k in plan.valid_ids[plan.valid_offsets[c]:plan.valid_offsets[c + 1]]}
    assert report["uncovered"]["valid_in_no_chip"]["count"] == report["boxes"]["count"] - len(valid_somewhere)
    assert (7, 0) in {(e["image_id"], e["box_index"]) for e in report["uncovered"]["valid_in_no_chip"]["examples"]}
    assert report["chips"]["images_without_chips"] == 1  # image 7's only box drives nothing
    assert report["suggestion"]["uncovered"]["in_no_valid_range"]["count"] == 0


def test_background_only_training_set_is_reported_not_crashed(analyze_tool, tmp_path):
    register_dataset("sniper_test_tools_background", [
        {"file_name": str(tmp_path / f"{i}.jpg"), "image_id": i, "width": 100, "height": 80, "annotations": []}
        for i in range(3)
    ])
    config = tmp_path / "c.yaml"
    config.write_text("DATASETS:\n  TRAIN: ('sniper_test_tools_background',)\n")
    args = ["--config-file", str(config), "--output", str(tmp_path / "out"), "--workers", "1"]
    report = analyze_tool.main(args)
    assert report["images"] == {**report["images"], "count": 3, "without_boxes": 3}
    assert report["boxes"]["count"] == report["chips"]["positive"] == 0
    assert report["chips"]["images_without_chips"] == 3
    assert (tmp_path / "out" / "object_sizes.png").is_file()
    with pytest.raises(ValueError, match="no \\(non-crowd\\) boxes"):
        analyze_tool.main(args + ["--suggest"])


def test_rescaled_dataset_gets_resolution_scales_that_train(shapes_root, analyze_tool, demo_config, tmp_path):
    # The built-in dataset whose object size follows image size: the report says so and the
    # suggestion (resolution scales, ranges in the reference frame) plans chips for every box.
    report = analyze_tool.main([
        "--config-file", demo_config, "--output", str(tmp_path), "--suggest", "--workers", "1",
        "DATASETS.TRAIN", "('sniper_shapes_rescaled_train',)",
    ])
    suggestion = report["suggestion"]
    assert suggestion["size_dependence"]["follows"]
    assert not shapes_report_follows(demo_config)
    config = suggestion["config"]
    assert tuple(config["SNIPER.RANGE_REFERENCE"]) == tuple(suggestion["size_dependence"]["reference"])
    assert all(isinstance(s, tuple) for s in config["SNIPER.TRAIN.SCALES"][:-1])
    assert suggestion["uncovered"]["in_no_valid_range"]["count"] == 0
    assert suggestion["uncovered"]["drive_no_chip"]["count"] == 0
    from sniper_d2.analysis import load_training_planner

    cfg = _cfg(demo_config, ["DATASETS.TRAIN", "('sniper_shapes_rescaled_train',)"]
               + [t.strip('"') for t in _split_overrides(suggestion["overrides"])])
    planner = load_training_planner(cfg)
    assert len(planner.plan(0)) > 0


def shapes_report_follows(demo_config):
    from sniper_d2.analysis import load_training_planner, suggest_for_planner

    cfg = _cfg(demo_config)
    return suggest_for_planner(cfg, load_training_planner(cfg))[1].follows
