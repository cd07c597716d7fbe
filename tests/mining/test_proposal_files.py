"""Proposal files for negative chips: malformed files fail naming the problem; absent images are counted."""
import logging
import pickle

import numpy as np
import pytest

from sniper_d2.data import build_chip_planner, load_negative_proposals
from sniper_test_data import register_dataset, small_sniper_cfg, tiny_records

DICTS = [{"image_id": i} for i in (100, 101, 102)]


def write(path, **data):
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return str(path)


def box_arrays(n):
    return [np.array([[1.0, 2.0, 30.0, 40.0]] * 5) for _ in range(n)]


def test_boxes_are_read_per_image_id(tmp_path):
    path = write(tmp_path / "p.pkl", ids=[100, "101", 102], boxes=box_arrays(3), objectness_logits=[np.zeros(5)] * 3)
    proposals = load_negative_proposals(path, "d", DICTS)
    assert sorted(proposals) == [100, 101, 102]
    assert proposals[101].shape == (5, 4)


@pytest.mark.parametrize("data, message", [
    (dict(ids=[100, 999, 998], boxes=box_arrays(3)), r"2 image id\(s\) that are not in the dataset: 999, 998"),
    (dict(ids=[100, 101], boxes=[np.zeros((5, 4)), np.zeros((5, 5))]), r"image id 101 have shape \(5, 5\)"),
    (dict(ids=[100], boxes=[np.array([[0.0, 0.0, np.nan, 4.0]])]), r"image id 100 contain NaN"),
    (dict(ids=[100, 101], boxes=box_arrays(1)), r"2 ids but 1 box arrays"),
    (dict(ids=[100, 100], boxes=box_arrays(2)), r"more than once: '100'"),
    (dict(boxes=box_arrays(1)), r"expected a dict with 'ids' and 'boxes'"),
    (dict(ids=[100, 101], boxes=[np.zeros((1, 4)), np.array([[0.0, 0.0, 4.0, 4.0], [10.0, 5.0, 4.0, 8.0]])]),
     r"proposal 1 \[10.0, 5.0, 4.0, 8.0\] of image id 101 has x2 < x1"),
])
def test_malformed_files_name_the_problem(tmp_path, data, message):
    path = write(tmp_path / "p.pkl", **data)
    with pytest.raises(ValueError, match=message) as error:
        load_negative_proposals(path, "my_dataset", DICTS)
    assert "my_dataset" in str(error.value) and "p.pkl" in str(error.value)


@pytest.mark.parametrize("content, message", [
    (b"", r"it is empty \(EOFError"),
    (pickle.dumps(dict(ids=[100], boxes=box_arrays(1)))[:40], r"truncated or not a pickle \(40 bytes\)"),
    (b"ids,boxes\n100,1 2 3 4\n", r"truncated or not a pickle"),
])
def test_unreadable_files_name_file_and_dataset(tmp_path, content, message):
    path = tmp_path / "p.pkl"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        load_negative_proposals(str(path), "my_dataset", DICTS)
    assert "my_dataset" in str(error.value) and "p.pkl" in str(error.value) and "--mine-negatives" in str(error.value)


def test_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--mine-negatives"):
        load_negative_proposals(str(tmp_path / "none.pkl"), "d", DICTS)


def test_images_absent_from_the_file_get_positive_chips_only(tmp_path, caplog):
    records = tiny_records(tmp_path, num_images=6, seed=1)
    name = register_dataset("sniper_test_absent_proposals", records)
    rng = np.random.default_rng(0)
    with_proposals = [r for r in records[:3]]
    boxes = []
    for r in with_proposals:
        xy = rng.uniform(0, [r["width"] - 12, r["height"] - 12], size=(200, 2))
        boxes.append(np.concatenate([xy, xy + rng.uniform(4, 12, size=(200, 2))], axis=1))
    path = write(tmp_path / "p.pkl", ids=[r["image_id"] for r in with_proposals], boxes=boxes)
    cfg = small_sniper_cfg(train=(name,))
    cfg.SNIPER.NEG.PROPOSAL_FILES = (path,)
    cfg.SNIPER.NEG.MIN_PROPOSALS = (1, 1, 1)
    with caplog.at_level(logging.WARNING):
        planner = build_chip_planner(cfg)
    assert "3 of 6 images of 'sniper_test_absent_proposals' are absent" in caplog.text
    plan = planner.plan(0)
    negative_images = set(plan.image_index[plan.negative].tolist())
    assert negative_images and negative_images <= {0, 1, 2}
