"""train_net.py --register-coco: a user's COCO files (images without width/height included) train
without writing Python."""
import json
import os
import sys

from detectron2.data import DatasetCatalog, MetadataCatalog

from sniper_test_data import write_image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
import train_net  # noqa: E402

SIZES = {1: (90, 60), 2: (50, 70)}


def write_coco(root):
    """A COCO file whose second image has no width/height."""
    images = []
    for image_id, (w, h) in SIZES.items():
        write_image(root / f"im{image_id}.png", w, h, seed=image_id)
        images.append({"id": image_id, "file_name": f"im{image_id}.png", **({"width": w, "height": h} if image_id == 1 else {})})
    annotations = [{"id": i, "image_id": i, "bbox": [5, 5, 20, 30], "area": 600, "category_id": 7, "iscrowd": 0}
                   for i in SIZES]
    path = root / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 7, "name": "thing"}]}))
    return path


def test_register_coco_flag_registers_every_dataset_with_sizes(tmp_path):
    json_file = write_coco(tmp_path)
    args = train_net.argument_parser().parse_args([
        "--config-file", os.path.join(REPO, "configs/demo/sniper_shapes_R18_FPN.yaml"),
        "--register-coco", "cli_train", str(json_file), str(tmp_path),
        "--register-coco", "cli_val", str(json_file), str(tmp_path),
        "DATASETS.TRAIN", "('cli_train',)", "DATASETS.TEST", "('cli_val',)", "MODEL.ROI_HEADS.NUM_CLASSES", "1",
    ])
    try:
        cfg = train_net.build_config(args)  # check_sniper_config passes: both names are registered
        assert cfg.DATASETS.TRAIN == ("cli_train",)
        records = DatasetCatalog.get("cli_train")
        assert {r["image_id"]: (r["width"], r["height"]) for r in records} == SIZES
        assert len(DatasetCatalog.get("cli_val")) == 2 and MetadataCatalog.get("cli_val").thing_classes == ["thing"]
    finally:
        for name in ("cli_train", "cli_val"):
            if name in DatasetCatalog.list():
                DatasetCatalog.remove(name)
                MetadataCatalog.remove(name)
