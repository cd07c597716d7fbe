"""Shared test data: small SNIPER configs and tiny registered datasets (CPU, seconds)."""
import cv2
import numpy as np
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from sniper_d2.config import add_sniper_config


def small_sniper_cfg(train=("sniper_test_tiny",)):
    """Chip size 64, scales (2.0, 1.0, longest:64): small enough for fast CPU tests."""
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.DATASETS.TRAIN = tuple(train)
    cfg.SNIPER.CHIP_SIZE = 64
    cfg.SNIPER.TRAIN.SCALES = (2.0, 1.0, "longest:64")
    cfg.SNIPER.TRAIN.VALID_RANGES = ((-1, 16), (8, 40), (32, -1))
    cfg.SNIPER.TRAIN.CHIP_STRIDE = 8
    cfg.SNIPER.TRAIN.MIN_BOX_SIZE = 2
    cfg.SNIPER.SEED = 7
    cfg.SOLVER.IMS_PER_BATCH = 4
    cfg.DATALOADER.NUM_WORKERS = 0
    return cfg


def write_image(path, width, height, seed=0):
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8))


def register_dataset(name, records):
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    DatasetCatalog.register(name, lambda: records)
    MetadataCatalog.get(name).set(thing_classes=["a", "b", "c"])
    return name


def tiny_records(root, num_images=10, seed=0):
    """PNG images 80-120 px with 0-6 boxes of sqrt(area) 4..60 px (XYWH_ABS), one crowd box."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(num_images):
        w, h = (int(v) for v in rng.integers(80, 121, size=2))
        path = root / f"img{i}.png"
        write_image(path, w, h, seed=i)
        annos = []
        for j in range(int(rng.integers(0, 7)) if i else 0):  # image 0 has no boxes
            s = float(np.exp(rng.uniform(np.log(4), np.log(60))))
            bw, bh = min(s, w - 1), min(s, h - 1)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            annos.append({"bbox": [x, y, bw, bh], "bbox_mode": BoxMode.XYWH_ABS,
                          "category_id": int(rng.integers(0, 3)), "iscrowd": int(i == 3 and j == 0)})
        records.append({"file_name": str(path), "image_id": 100 + i, "width": w, "height": h,
                        "annotations": annos})
    return records
