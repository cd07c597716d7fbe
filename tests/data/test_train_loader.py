"""build_sniper_train_loader: batches of chips, resume, epoch statistics, bad input."""
import numpy as np
import pytest
from detectron2.data import DatasetCatalog
from detectron2.utils.events import EventStorage

from sniper_d2.chip_instances import ChipInstances
from sniper_d2.data.build import build_chip_planner, build_sniper_train_loader

from sniper_test_data import register_dataset, small_sniper_cfg, tiny_records, write_image


def _chip_ids(batch):
    return [(d["image_id"], d["sniper_chip"].scale_index, d["sniper_chip"].origin) for d in batch]


def _run(loader, start_iter, num_batches):
    with EventStorage(start_iter) as storage:
        it = iter(loader)
        return [_chip_ids(next(it)) for _ in range(num_batches)], storage


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_continues_the_same_chip_sequence(tiny_dataset, num_workers):
    cfg = small_sniper_cfg()
    cfg.DATALOADER.NUM_WORKERS = num_workers
    uninterrupted, _ = _run(build_sniper_train_loader(cfg), 0, 14)
    resumed, _ = _run(build_sniper_train_loader(cfg), 9, 5)
    assert resumed == uninterrupted[9:]
    assert all(len(b) == cfg.SOLVER.IMS_PER_BATCH for b in uninterrupted)


def test_batches_hold_chip_instances_and_epoch_stats_are_logged(tiny_dataset):
    cfg = small_sniper_cfg()
    loader = build_sniper_train_loader(cfg)
    n_chips = len(build_chip_planner(cfg).plan(0))
    with EventStorage(0) as storage:
        it = iter(loader)
        batches = [next(it) for _ in range(n_chips // cfg.SOLVER.IMS_PER_BATCH + 2)]
        history = storage.histories()
    d = batches[0][0]
    assert isinstance(d["instances"], ChipInstances) and d["image"].shape[0] == 3
    assert history["sniper/positive_chips"].latest() > 0
    assert history["sniper/epoch"].latest() == 1  # the second epoch started within those batches
    assert history["sniper/chips_per_image"].latest() > 0


def test_image_without_annotations_yields_only_negative_chips(tmp_path):
    from sniper_d2.chips import ChipGenerator

    records = tiny_records(tmp_path, num_images=3)
    register_dataset("sniper_test_negonly", records)
    cfg = small_sniper_cfg(("sniper_test_negonly",))
    planner = build_chip_planner(cfg)
    assert records[0]["annotations"] == []
    pos, neg, _ = planner.image_chips(0, epoch=0, stride=8)
    assert pos == [] and neg == []  # no boxes and no proposals: nothing
    # with proposals, the background image yields negative chips only
    rng = np.random.default_rng(0)
    props = rng.uniform(0, 30, size=(60, 2))
    props = np.concatenate([props, props + rng.uniform(3, 12, size=(60, 2))], 1)
    planner.negatives_per_image = 2
    planner.table._has_proposals[0] = True
    planner.table._prop_offsets[:] = [0, 60, 60, 60]
    planner.table._proposals = props
    pos, neg, _ = planner.image_chips(0, epoch=0, stride=8)
    assert pos == [] and len(neg) > 0 and all(c.negative for c in neg)


def test_missing_image_file_is_named(tmp_path):
    records = tiny_records(tmp_path, num_images=3)
    records[2]["file_name"] = str(tmp_path / "gone.png")
    register_dataset("sniper_test_missing", records)
    with pytest.raises(FileNotFoundError, match=r"dataset 'sniper_test_missing', image_id 102 .*gone\.png"):
        build_chip_planner(small_sniper_cfg(("sniper_test_missing",)))


def test_no_chips_anywhere_explains_the_valid_ranges(tmp_path):
    write_image(tmp_path / "a.png", 100, 100)
    register_dataset("sniper_test_nochips", [{
        "file_name": str(tmp_path / "a.png"), "image_id": 1, "width": 100, "height": 100,
        "annotations": [{"bbox": [10, 10, 30, 30], "bbox_mode": 0, "category_id": 0}],
    }])
    cfg = small_sniper_cfg(("sniper_test_nochips",))
    cfg.SNIPER.TRAIN.VALID_RANGES = ((-1, 5), (5, 8), (90, -1))  # 20 px box fits no range
    with pytest.raises(RuntimeError, match=r"yields any chip.*VALID_RANGES"):
        build_sniper_train_loader(cfg)


def test_scale_without_any_box_fails_at_start_up(tiny_dataset):
    cfg = small_sniper_cfg()
    cfg.SNIPER.TRAIN.VALID_RANGES = ((-1, 16), (500, 600), (8, -1))  # no box is 500-600 px
    with pytest.raises(RuntimeError, match=r"scale 1 \(1, range \(500.0, 600.0\)\) of SNIPER.TRAIN.SCALES gets no positive chip"):
        build_sniper_train_loader(cfg)


def test_box_with_wrong_number_of_coordinates_names_the_image(tmp_path):
    write_image(tmp_path / "a.png", 50, 50)
    register_dataset("sniper_test_bbox_length", [{
        "file_name": str(tmp_path / "a.png"), "image_id": 9, "width": 50, "height": 50,
        "annotations": [{"bbox": [10, 10, 5, 8, 0.3], "bbox_mode": 1, "category_id": 0}],
    }])
    with pytest.raises(ValueError, match=r"image_id 9 .*'bbox' must have 4 numbers, got lengths \[5\]"):
        build_chip_planner(small_sniper_cfg(("sniper_test_bbox_length",)))


def test_unregistered_dataset_is_named():
    with pytest.raises(KeyError, match="'no_such_dataset' .*not registered"):
        build_chip_planner(small_sniper_cfg(("no_such_dataset",)))


def test_degenerate_box_names_the_image(tmp_path):
    write_image(tmp_path / "a.png", 50, 50)
    register_dataset("sniper_test_degenerate", [{
        "file_name": str(tmp_path / "a.png"), "image_id": 5, "width": 50, "height": 50,
        "annotations": [{"bbox": [10, 10, 0, 8], "bbox_mode": 1, "category_id": 0}],
    }])
    with pytest.raises(ValueError, match=r"image_id 5"):
        build_chip_planner(small_sniper_cfg(("sniper_test_degenerate",)))
