"""SniperTrainer.test logs one "SNIPER result on <dataset>" line per test dataset: with one
dataset (DefaultTrainer.test flattens its results then) and with several, as in --eval-only."""
import logging

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from sniper_d2 import SniperTrainer
from sniper_test_data import write_image

NAMES = ("sniper_trainer_test_a", "sniper_trainer_test_b")


@pytest.fixture
def test_sets(tmp_path):
    for n, name in enumerate(NAMES):
        records = [{
            "file_name": str(tmp_path / f"{name}_{i}.png"), "height": 64, "width": 48 + 16 * i, "image_id": i,
            "annotations": [{"bbox": [4.0, 4.0, 30.0, 20.0], "bbox_mode": BoxMode.XYWH_ABS, "category_id": (i + n) % 3}],
        } for i in range(2)]
        for r in records:
            write_image(r["file_name"], r["width"], r["height"])
        DatasetCatalog.register(name, lambda records=records: records)
        MetadataCatalog.get(name).set(thing_classes=["a", "b", "c"])
    yield NAMES
    for name in NAMES:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


@pytest.mark.parametrize("datasets", [NAMES[:1], NAMES])
def test_each_test_dataset_gets_its_sniper_result_line(tiny_cfg, tiny_model, test_sets, tmp_path, caplog, datasets):
    cfg = tiny_cfg.clone()
    cfg.DATASETS.TEST = datasets
    cfg.OUTPUT_DIR = str(tmp_path)
    with caplog.at_level(logging.INFO, logger="sniper_d2"):
        SniperTrainer.test(cfg, tiny_model)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("SNIPER result on")]
    assert len(lines) == len(datasets)
    for name, line in zip(datasets, lines):
        assert line.startswith(f"SNIPER result on {name} (multi-scale test: (160, 200), 1.0, longest:48): AP ")
