"""Mining outputs are trusted only when stamped as made from the current config and data."""
import json
import logging
import os
import shutil

import pytest
from detectron2.config import get_cfg

from sniper_d2 import SniperTrainer
from sniper_d2.config import add_sniper_config
from sniper_d2.engine.run_stamp import config_record, make_record, stale_reason, stamp_path, write_stamp
from sniper_d2.mining import mine_negative_proposals, mining_paths
from sniper_test_data import register_dataset, tiny_records

DEMO_CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "demo", "sniper_shapes_R18_FPN.yaml")


def _cfg(out, train):
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.merge_from_file(DEMO_CONFIG)
    cfg.merge_from_list([
        "DATASETS.TRAIN", train, "DATASETS.TEST", (), "OUTPUT_DIR", str(out), "SEED", 1,
        "SNIPER.CHIP_SIZE", 64, "SNIPER.TRAIN.SCALES", (2.0, 1.0, "longest:64"),
        "SNIPER.TRAIN.VALID_RANGES", ((-1, 16), (8, 40), (32, -1)), "SNIPER.TRAIN.CHIP_STRIDE", 8,
        "SNIPER.TRAIN.MIN_BOX_SIZE", 2, "SNIPER.TEST.SCALES", (1.0, "longest:64"),
        "SNIPER.TEST.VALID_RANGES", ((-1, 40), (32, -1)), "SNIPER.MINING.RPN_EPOCHS", 0.3,
        "SNIPER.MINING.PROPOSALS_PER_SCALE", 50, "SOLVER.IMS_PER_BATCH", 4, "DATALOADER.NUM_WORKERS", 0,
    ])
    return cfg


def _changed(cfg, *keys_and_values):
    c = cfg.clone()
    c.merge_from_list(list(keys_and_values))
    c.freeze()
    return c


def _stamp_ids(cfg):
    _, rpn_model, files = mining_paths(cfg)
    ids = []
    for path in [rpn_model] + files:
        with open(stamp_path(path)) as f:
            ids.append(json.load(f)["id"])
    return ids


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    first = register_dataset("sniper_test_stamps_a", tiny_records(tmp_path_factory.mktemp("a"), num_images=6, seed=3))
    second = register_dataset("sniper_test_stamps_b", tiny_records(tmp_path_factory.mktemp("b"), num_images=6, seed=4))
    return first, second


@pytest.fixture(scope="module")
def mined(tmp_path_factory, datasets):
    """Stages 1-2 once on dataset a; each test works on its own copy of the outputs."""
    out = tmp_path_factory.mktemp("stamps_mined") / "out"
    cfg = _cfg(out, (datasets[0],))
    mine_negative_proposals(cfg, SniperTrainer)
    return cfg


@pytest.fixture
def copy_of_mined(mined, tmp_path):
    shutil.copytree(mined.OUTPUT_DIR, tmp_path / "out")
    cfg = mined.clone()
    cfg.OUTPUT_DIR = str(tmp_path / "out")
    return cfg


@pytest.fixture
def mining_log():
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("sniper_d2.mining")
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


def test_torn_missing_or_unstamped_outputs_are_never_complete(tmp_path, copy_of_mined):
    record = make_record(config_record(copy_of_mined), copy_of_mined.DATASETS.TRAIN)
    output = str(tmp_path / "model_final.pth")
    with open(output + ".tmp", "wb") as f:  # what a kill during the write leaves
        f.write(b"PK\x03\x04 half a checkpoint")
    assert "does not exist" in stale_reason(output, record)
    shutil.copy(output + ".tmp", output)  # a torn file under the final name (written by an older sniper_d2)
    assert "no readable stamp" in stale_reason(output, record)
    with open(stamp_path(output), "w") as f:
        f.write('{"config": {"SOLVER.BASE_LR": 0.0')  # a torn stamp
    assert "no readable stamp" in stale_reason(output, record)
    write_stamp(stamp_path(output), record)
    assert stale_reason(output, record) is None
    other = make_record(config_record(_changed(copy_of_mined, "SEED", 2)), copy_of_mined.DATASETS.TRAIN)
    assert "config changed: SEED 1 -> 2" in stale_reason(output, other)


def test_keys_that_change_no_mining_stage_reuse_both(copy_of_mined, mining_log):
    before = _stamp_ids(copy_of_mined)
    cfg = _changed(copy_of_mined, "SOLVER.MAX_ITER", 999, "MODEL.ROI_HEADS.NUM_CLASSES", 7,
                   "SNIPER.TEST.VALID_RANGES", ((-1, 50), (20, -1)), "TEST.EVAL_PERIOD", 5)
    assert mine_negative_proposals(cfg, SniperTrainer) == mining_paths(cfg)[2]
    assert _stamp_ids(cfg) == before
    assert sum("skipped" in m for m in mining_log) == 2


def test_an_extraction_key_redoes_stage_two_only(copy_of_mined, mining_log):
    stage_one, stage_two = _stamp_ids(copy_of_mined)
    cfg = _changed(copy_of_mined, "SNIPER.MINING.PROPOSALS_PER_SCALE", 20)
    mine_negative_proposals(cfg, SniperTrainer)
    new_one, new_two = _stamp_ids(cfg)
    assert new_one == stage_one and new_two != stage_two
    assert any("stage 2 runs" in m and "SNIPER.MINING.PROPOSALS_PER_SCALE 50 -> 20" in m for m in mining_log)


def test_changed_training_datasets_redo_stage_one_and_stage_two(copy_of_mined, datasets, mining_log):
    stage_one, _ = _stamp_ids(copy_of_mined)
    cfg = _changed(copy_of_mined, "DATASETS.TRAIN", (datasets[1],))
    files = mine_negative_proposals(cfg, SniperTrainer)
    assert files == [os.path.join(cfg.OUTPUT_DIR, "negative_mining", f"proposals_{datasets[1]}.pkl")]
    new_one, _ = _stamp_ids(cfg)
    assert new_one != stage_one
    reasons = [m for m in mining_log if "stage 1 runs" in m]
    assert len(reasons) == 1 and f"DATASETS.TRAIN changed: ['{datasets[0]}'] -> ['{datasets[1]}']" in reasons[0]
    with open(stamp_path(files[0])) as f:
        assert json.load(f)["inputs"] == {"stage_one_stamp": new_one}
