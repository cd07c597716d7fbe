"""Start-up checks of the training set against the config: classes, class lists, scale order,
all-crowd datasets. Each would otherwise train silently on wrong labels or wrong chips."""
import copy

import pytest
from detectron2.data import MetadataCatalog

from sniper_d2.data import build_chip_planner, build_sniper_train_loader
from sniper_test_data import register_dataset, small_sniper_cfg, tiny_records


@pytest.fixture
def records(tmp_path):
    return tiny_records(tmp_path, num_images=6, seed=2)


def test_category_id_equal_to_num_classes_fails_naming_the_image(records):
    # id 3 with NUM_CLASSES 3 would be read as background by Detectron2's heads
    bad = copy.deepcopy(records)
    bad[4]["annotations"][0]["category_id"] = 3
    name = register_dataset("sniper_test_checks_classes", bad)
    MetadataCatalog.get(name).thing_classes = ["a", "b", "c"]
    cfg = small_sniper_cfg((name,))
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    with pytest.raises(ValueError, match=r"'sniper_test_checks_classes', image id 104 .*category_id 3.*NUM_CLASSES is 3"):
        build_chip_planner(cfg)


def test_more_thing_classes_than_num_classes_fails_with_the_fix(records):
    name = register_dataset("sniper_test_checks_many_classes", records)
    cfg = small_sniper_cfg((name,))
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 2  # the dataset registers 3 classes
    with pytest.raises(ValueError, match=r"has 3 classes .* set MODEL.ROI_HEADS.NUM_CLASSES 3"):
        build_chip_planner(cfg)


def test_training_datasets_with_different_class_lists_are_refused(records):
    first = register_dataset("sniper_test_checks_first", records)
    second = register_dataset("sniper_test_checks_second", records)
    MetadataCatalog.remove(second)
    MetadataCatalog.get(second).set(thing_classes=["a", "c", "b"])
    cfg = small_sniper_cfg((first, second))
    with pytest.raises(ValueError, match=r"different classes: 'sniper_test_checks_first' has 3 \(a, b, c\), "
                                         r"'sniper_test_checks_second' has 3 \(a, c, b\) \(they first differ at id 1\)"):
        build_chip_planner(cfg)
    MetadataCatalog.remove(second)
    MetadataCatalog.get(second).set(thing_classes=["a", "b", "c"])
    assert len(build_chip_planner(cfg).table) == 2 * len(records)


@pytest.mark.parametrize("scales, ranges, wrong", [
    (("longest:64", 1.0, 2.0), ((32, -1), (8, 40), (-1, 16)), "scale 1 (1.0) is finer than scale 0 (longest:64)"),
    ((1.0, 2.0, "longest:64"), ((8, 40), (-1, 16), (32, -1)), "scale 1 (2.0) is finer than scale 0 (1.0)"),
])
def test_scales_given_coarsest_first_fail_naming_the_order(records, scales, ranges, wrong):
    name = register_dataset("sniper_test_checks_order", records)
    cfg = small_sniper_cfg((name,))
    cfg.SNIPER.TRAIN.SCALES, cfg.SNIPER.TRAIN.VALID_RANGES = scales, ranges
    with pytest.raises(ValueError, match=r"SNIPER.TRAIN.SCALES must list scales finest first") as error:
        build_chip_planner(cfg)
    assert wrong in str(error.value) and "['2.0', '1.0', 'longest:64']" in str(error.value)


def test_analysis_planner_skips_the_training_checks(records):
    # tools read any dataset with any config: the class checks belong to training
    name = register_dataset("sniper_test_checks_analysis", records)
    cfg = small_sniper_cfg((name,))
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 1
    assert len(build_chip_planner(cfg, check_files=False).table) == len(records)


def test_dataset_of_only_crowd_boxes_says_so(records):
    crowd = copy.deepcopy(records)
    for record in crowd:
        for anno in record["annotations"]:
            anno["iscrowd"] = 1
    name = register_dataset("sniper_test_checks_crowd", crowd)
    with pytest.raises(RuntimeError, match=r"every one of its \d+ boxes is a crowd box \(iscrowd=1\)"):
        build_sniper_train_loader(small_sniper_cfg((name,)))
