"""The per-worker cache of decoded images (SNIPER.TRAIN.DECODE_CACHE_MB)."""
import pickle

import cv2
import numpy as np
import pytest
import torch
from detectron2.data import transforms as T
from detectron2.utils.events import EventStorage

from sniper_d2.chips import Chip, ValidRange
from sniper_d2.data import ChipDataset, DecodedImageCache, build_chip_planner
from sniper_d2.data.build import build_sniper_train_loader
from sniper_d2.data.chip_mapper import SniperChipMapper
from sniper_d2.data.chip_plan import encode_chip_key

from sniper_test_data import small_sniper_cfg


def test_cached_reads_give_the_pixels_and_boxes_of_uncached_reads(tmp_path):
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (300, 400, 3)).astype(np.uint8), (0, 0), 2)
    cv2.imwrite(str(tmp_path / "im.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    cv2.imwrite(str(tmp_path / "im.png"), image)
    boxes = np.array([[10.0, 20.0, 90.0, 120.0], [200.0, 150.0, 380.0, 290.0]])
    chips = [Chip(7, i % 3, scale, origin, size, np.array([0, 1]), False) for i, (scale, origin, size) in enumerate([
        (2.0, (10, 30), (128, 96)), (1.0, (200, 100), (128, 128)), (0.45, (0, 0), (180, 135)),
        (0.2, (7, 3), (64, 48)), (2.0, (10, 30), (128, 96)), (0.45, (20, 10), (64, 64)), (1.0, (0, 0), (96, 96)),
    ])]
    kwargs = dict(valid_ranges=[ValidRange()] * 3, min_box_size=1, augmentations=[T.RandomFlip(prob=1.0)])
    plain, cached = SniperChipMapper(**kwargs), SniperChipMapper(**kwargs, decode_cache_mb=16)
    for ext in ("jpg", "png"):
        for chip in chips:
            d = {"file_name": str(tmp_path / f"im.{ext}"), "image_id": 7, "width": 400, "height": 300,
                 "sniper_ref": "im", "sniper_boxes": boxes, "sniper_classes": np.array([0, 1]),
                 "sniper_crowd": np.zeros(2, bool), "sniper_chip": chip, "sniper_image_chips": len(chips),
                 "sniper_epoch": 0, "sniper_epoch_stats": {}}
            a, b = plain(dict(d)), cached(dict(d))
            assert torch.equal(a["image"], b["image"])
            assert torch.equal(a["instances"].gt_boxes.tensor, b["instances"].gt_boxes.tensor)
    cache = cached.decode_cache
    # jpg: full, 1/2 and 1/8 decodes; png: full size only
    assert len(cache) == 4 and cache.misses == 4 and cache.hits == 2 * len(chips) - 4


def _image(mib):
    return np.zeros((int(mib * 2**20),), np.uint8)


def test_budget_admission_and_eviction_order():
    cache = DecodedImageCache(budget_mb=3)
    cache.put("once", _image(1), reads=1.5)  # expected to be read fewer than twice: not kept
    cache.put("huge", _image(4), reads=100)  # larger than the whole budget
    assert len(cache) == 0
    cache.put("a", _image(1), reads=10)
    cache.put("b", _image(1), reads=3)
    cache.put("c", _image(1), reads=10)
    cache.get("a", reads=10)  # now c is the least recently used of the two 10s
    cache.put("d", _image(1), reads=10)  # evicts b (fewest reads)
    assert set(cache._entries) == {"a", "c", "d"} and cache.used_bytes <= cache.budget_bytes
    cache.put("e", _image(1), reads=5)  # would have to evict an entry read more often: not kept
    assert set(cache._entries) == {"a", "c", "d"}
    cache.put("f", _image(2), reads=10)  # equal reads: least recently used first (c, then a)
    assert set(cache._entries) == {"d", "f"} and cache.used_bytes == 3 * 2**20
    with pytest.raises(ValueError):  # cached images are read-only
        cache.get("d", 10)[0] = 1
    # a worker starts with an empty cache of the same budget
    copy = pickle.loads(pickle.dumps(cache))
    assert len(copy) == 0 and copy.used_bytes == 0 and copy.budget_bytes == cache.budget_bytes


def test_chip_dataset_gives_the_images_chip_count(tiny_dataset):
    planner = build_chip_planner(small_sniper_cfg())
    plan = planner.plan(0)
    dataset = ChipDataset(planner)
    counts = np.bincount(plan.image_index)
    for position in range(0, len(plan), 7):
        d = dataset[encode_chip_key(0, position)]
        assert d["sniper_image_chips"] == counts[plan.image_index[position]]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_cache_changes_no_chip_or_pixel_of_the_batches(tiny_dataset, num_workers):
    def batches(cache_mb):
        cfg = small_sniper_cfg()
        cfg.DATALOADER.NUM_WORKERS = num_workers
        cfg.SNIPER.TRAIN.DECODE_CACHE_MB = cache_mb
        cfg.INPUT.RANDOM_FLIP = "none"  # the flip draws from each process's own random state
        with EventStorage(0):
            it = iter(build_sniper_train_loader(cfg))
            return [next(it) for _ in range(8)]

    off, on = batches(0), batches(64)
    for a, b in zip(off, on):
        assert [(d["image_id"], d["sniper_chip"].origin, d["sniper_chip"].scale) for d in a] == \
            [(d["image_id"], d["sniper_chip"].origin, d["sniper_chip"].scale) for d in b]
        assert all(torch.equal(x["image"], y["image"]) for x, y in zip(a, b))
