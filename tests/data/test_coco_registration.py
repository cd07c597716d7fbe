"""register_coco_with_sizes: COCO files whose images lack width/height."""
import argparse
import json

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances

from sniper_d2.analysis.tool_setup import tool_config
from sniper_d2.data import register_coco_datasets, register_coco_with_sizes

from sniper_test_data import write_image

SIZES = {1: (90, 60), 2: (50, 70), 3: (64, 64)}


def write_coco(tmp_path, drop_sizes=(2, 3)):
    images = []
    for image_id, (w, h) in SIZES.items():
        write_image(tmp_path / f"im{image_id}.png", w, h, seed=image_id)
        image = {"id": image_id, "file_name": f"im{image_id}.png", "width": w, "height": h}
        if image_id in drop_sizes:
            del image["width"], image["height"]
        images.append(image)
    annotations = [{"id": i + 1, "image_id": i + 1, "bbox": [5, 5, 20, 30], "area": 600, "category_id": 7,
                    "iscrowd": 0} for i in range(len(SIZES))]
    path = tmp_path / "instances_train.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 7, "name": "thing"}]}))
    return path


def _register(register, name, *args):
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register(name, *args)
    return name


def test_missing_sizes_come_from_the_files_and_the_rest_is_detectron2s(tmp_path):
    json_file = write_coco(tmp_path)
    name = _register(register_coco_with_sizes, "sniper_test_coco_sized", str(json_file), str(tmp_path))
    dicts = DatasetCatalog.get(name)
    assert [(d["image_id"], d["width"], d["height"]) for d in dicts] == [(i, w, h) for i, (w, h) in SIZES.items()]
    # identical to Detectron2's register_coco_instances when every image has its size
    complete = write_coco(tmp_path, drop_sizes=())
    reference = _register(register_coco_instances, "sniper_test_coco_reference", {}, str(complete), str(tmp_path))
    assert dicts == DatasetCatalog.get(reference)
    meta = MetadataCatalog.get(name)
    assert meta.json_file == str(json_file) and meta.image_root == str(tmp_path) and meta.evaluator_type == "coco"
    assert meta.thing_classes == ["thing"] and meta.thing_dataset_id_to_contiguous_id == {7: 0}


def test_missing_file_of_an_image_without_size_is_named(tmp_path):
    json_file = write_coco(tmp_path)
    (tmp_path / "im3.png").unlink()
    name = _register(register_coco_with_sizes, "sniper_test_coco_gone", str(json_file), str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"(?s)instances_train\.json: 1 image.*dataset 'sniper_test_coco_gone', "
                                                r"image_id 3 \(.*im3\.png\).*add width/height to the JSON"):
        DatasetCatalog.get(name)


def test_tools_register_coco_files_with_sizes(tmp_path):
    json_file = write_coco(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text("SNIPER:\n  CHIP_SIZE: 256\n")
    name = "sniper_test_coco_tool"
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    args = argparse.Namespace(config_file=str(config), register_coco=[[name, str(json_file), str(tmp_path)]], opts=[])
    tool_config(args)
    assert [d["width"] for d in DatasetCatalog.get(name)] == [w for w, _ in SIZES.values()]


def test_register_coco_flag_refuses_a_registered_name(tmp_path):
    json_file = write_coco(tmp_path)
    with pytest.raises(ValueError, match=r"--register-coco: a dataset named 'sniper_shapes_val' is already registered"):
        register_coco_datasets([("sniper_shapes_val", str(json_file), str(tmp_path))])
