"""Both tools with SNIPER.NEG.PROPOSAL_FILES: negative chips counted and drawn as training samples them."""
import pickle

import cv2
import numpy as np
import pytest
from detectron2.config import get_cfg

from sniper_d2.analysis import COLOURS
from sniper_d2.config import add_sniper_config
from sniper_d2.data import build_chip_planner

from sniper_test_data import register_dataset, tiny_records


@pytest.fixture(scope="module")
def config_with_proposals(tmp_path_factory):
    root = tmp_path_factory.mktemp("negatives")
    records = tiny_records(root, num_images=6)
    register_dataset("sniper_test_tools_negatives", records)
    rng = np.random.default_rng(0)
    ids, boxes = [], []
    for r in records:  # 80 small proposals per image: enough for negative chips at the two finer scales
        xy = rng.uniform(0, [r["width"] - 12, r["height"] - 12], size=(80, 2))
        ids.append(r["image_id"])
        boxes.append(np.hstack([xy, xy + rng.uniform(3, 10, size=(80, 2))]))
    with open(root / "proposals.pkl", "wb") as f:
        pickle.dump({"ids": ids, "boxes": boxes, "objectness_logits": [np.zeros(80)] * len(ids)}, f)
    config = root / "config.yaml"
    config.write_text(
        "DATASETS:\n  TRAIN: ('sniper_test_tools_negatives',)\nSNIPER:\n  CHIP_SIZE: 64\n  SEED: 3\n  TRAIN:\n"
        "    SCALES: (2.0, 1.0, 'longest:64')\n    VALID_RANGES: ((-1, 16), (8, 40), (32, -1))\n    CHIP_STRIDE: 8\n"
        f"  NEG:\n    PROPOSAL_FILES: ('{root / 'proposals.pkl'}',)\n    MIN_PROPOSALS: (3, 3, 3)\n"
    )
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.merge_from_file(str(config))
    return str(config), cfg


def test_report_counts_the_sampled_negative_chips(analyze_tool, config_with_proposals, tmp_path):
    config, cfg = config_with_proposals
    report = analyze_tool.main(["--config-file", config, "--output", str(tmp_path), "--workers", "1"])
    plan = build_chip_planner(cfg).plan(0)
    assert report["chips"]["negative"] == plan.stats["negative_chips"] > 0
    assert report["chips"]["negative_per_image"] <= cfg.SNIPER.NEG.CHIPS_PER_IMAGE
    for s, row in enumerate(report["scales"]):
        assert row["negative_chips"] == int((plan.negative & (plan.scale_index == s)).sum())
    assert report["pixels"]["padded_chips_per_image"] == pytest.approx(len(plan) * 64**2 / 6)


def test_figures_show_negative_chips(visualize_tool, config_with_proposals, tmp_path):
    config, cfg = config_with_proposals
    plan = build_chip_planner(cfg).plan(0)
    image_id = 100 + int(plan.image_index[np.flatnonzero(plan.negative)[0]])
    [path] = visualize_tool.main(["--config-file", config, "--output", str(tmp_path), "--image-ids", str(image_id)])
    figure = cv2.imread(path)
    assert np.all(figure == COLOURS["negative chip"], axis=-1).sum() > 100
