"""The negative-mining pipeline end to end on a tiny dataset: RPN stage, proposal file, negative chips."""
import os
import pickle

import numpy as np
import pytest
from detectron2.config import get_cfg

from sniper_d2 import SniperTrainer
from sniper_d2.config import add_sniper_config
from sniper_d2.data import build_chip_planner
from sniper_d2.mining import mine_negative_proposals, mining_paths
from sniper_test_data import register_dataset, tiny_records

DEMO_CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "demo", "sniper_shapes_R18_FPN.yaml")


@pytest.fixture(scope="module")
def mined(tmp_path_factory):
    """Stages 1-2 run once on 8 images (chip 64, R-18 FPN from the demo config)."""
    root = tmp_path_factory.mktemp("mining")
    name = register_dataset("sniper_test_mining", tiny_records(root, num_images=8, seed=3))
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.merge_from_file(DEMO_CONFIG)
    cfg.merge_from_list([
        "DATASETS.TRAIN", (name,), "DATASETS.TEST", (), "OUTPUT_DIR", str(root / "out"),
        "SNIPER.CHIP_SIZE", 64, "SNIPER.TRAIN.SCALES", (2.0, 1.0, "longest:64"),
        "SNIPER.TRAIN.VALID_RANGES", ((-1, 16), (8, 40), (32, -1)), "SNIPER.TRAIN.CHIP_STRIDE", 8,
        "SNIPER.TRAIN.MIN_BOX_SIZE", 2, "SNIPER.TEST.SCALES", (2.0, 1.0, "longest:64"),
        "SNIPER.NEG.MIN_PROPOSALS", (3, 2, 2), "SNIPER.MINING.RPN_EPOCHS", 1.0,
        "SNIPER.MINING.PROPOSALS_PER_SCALE", 50, "SOLVER.IMS_PER_BATCH", 8, "DATALOADER.NUM_WORKERS", 0,
    ])
    cfg.freeze()
    files = mine_negative_proposals(cfg, SniperTrainer)
    return cfg, files


def test_stages_write_an_rpn_model_and_a_proposal_file_per_dataset(mined):
    cfg, files = mined
    _, rpn_model, expected = mining_paths(cfg)
    assert files == expected and len(files) == 1
    assert os.path.isfile(rpn_model)
    with open(files[0], "rb") as f:
        proposals = pickle.load(f)
    assert sorted(proposals["ids"]) == list(range(100, 108))
    for image_id, boxes, logits in zip(proposals["ids"], proposals["boxes"], proposals["objectness_logits"]):
        assert boxes.shape[1] == 4 and len(boxes) == len(logits)
        assert 0 < len(boxes) <= 3 * 50  # top 50 per test scale, three scales
        assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()


def test_finished_stages_are_skipped(mined):
    cfg, files = mined
    stamps = [os.path.getmtime(f) for f in files + [mining_paths(cfg)[1]]]
    assert mine_negative_proposals(cfg, SniperTrainer) == files
    assert [os.path.getmtime(f) for f in files + [mining_paths(cfg)[1]]] == stamps


def test_training_samples_negative_chips_that_hold_proposals_away_from_positive_chips(mined):
    cfg, files = mined
    train_cfg = cfg.clone()
    train_cfg.defrost()
    train_cfg.SNIPER.NEG.PROPOSAL_FILES = tuple(files)
    planner = build_chip_planner(train_cfg)
    plan = planner.plan(0)
    assert plan.negative.any() and (~plan.negative).any()
    minimum = train_cfg.SNIPER.NEG.MIN_PROPOSALS
    for position in np.flatnonzero(plan.negative):
        chip = plan.chip(position)
        ann = planner.table[int(plan.image_index[position])]
        same_scale = (plan.image_index == plan.image_index[position]) & (plan.scale_index == chip.scale_index)
        positives = [plan.chip(p) for p in np.flatnonzero(same_scale & ~plan.negative)]
        x0, y0 = chip.origin
        x1, y1 = x0 + chip.size[0], y0 + chip.size[1]
        scaled = ann.proposals * chip.scale
        inside = (scaled[:, 0] >= x0) & (scaled[:, 1] >= y0) & (scaled[:, 2] <= x1) & (scaled[:, 3] <= y1)
        away = np.ones(len(scaled), dtype=bool)
        for p in positives:
            px0, py0 = p.origin
            px1, py1 = px0 + p.size[0], py0 + p.size[1]
            away &= (scaled[:, 2] <= px0) | (scaled[:, 0] >= px1) | (scaled[:, 3] <= py0) | (scaled[:, 1] >= py1)
            assert (p.origin, p.size) != (chip.origin, chip.size)
        assert (inside & away).sum() > minimum[chip.scale_index]
