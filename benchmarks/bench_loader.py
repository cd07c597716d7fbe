"""Chip mapper throughput (sniper_d2.data). A script that prints figures, not a test.

    .venv/bin/python benchmarks/bench_loader.py [--images 48] [--workers 2]

COCO-like JPEGs (640x480 / 480x640, textured, quality 90, ~7 boxes with COCO's size mix, the
workload of bench_chips.py) are written to a temporary directory; the epoch's positive chips at
the COCO settings (3.0, 1.667, longest:512; chip 512; stride 32) are then mapped
(read + crop + scale + flip + ground truth) by

1. decoding alone (detectron2's read_image of the whole file, once per chip): the floor a mapper
   that decodes the full image for every chip cannot beat;
2. SniperChipMapper in this process, overall and per scale;
3. Detectron2's training loader with N worker processes (chips/s overall and per worker).

Single-process figures are given as CPU time of this process (robust to other jobs on the
machine) and wall time; the multi-worker figure is wall time only.
"""
import argparse
import os
import tempfile
import time

import cv2
import numpy as np
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, build_detection_train_loader
from detectron2.data.detection_utils import read_image
from detectron2.structures import BoxMode

from bench_chips import coco_like_image
from sniper_d2.config import add_sniper_config
from sniper_d2.data import ChipDataset, SniperChipMapper, build_chip_planner
from sniper_d2.data.chip_plan import encode_chip_key
from sniper_d2.data.chip_sampler import ChipSampler


def textured_jpeg(rng, path, width, height):
    """A JPEG whose decode cost resembles a photo's: smooth colour fields plus fine noise."""
    base = cv2.resize(rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8), (width, height))
    noise = rng.normal(0, 18, (height, width, 3))
    cv2.imwrite(path, np.clip(base + noise, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])


def make_dataset(root, num_images, seed=0):
    rng = np.random.default_rng(seed)
    records = []
    for i in range(num_images):
        width, height, boxes, _ = coco_like_image(rng)
        path = os.path.join(root, f"{i:05d}.jpg")
        textured_jpeg(rng, path, width, height)
        annos = [{"bbox": b.tolist(), "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0} for b in boxes]
        records.append({"file_name": path, "image_id": i, "width": width, "height": height, "annotations": annos})
    return records


def coco_cfg(name, workers):
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.DATASETS.TRAIN = (name,)
    cfg.SOLVER.IMS_PER_BATCH = 8
    cfg.DATALOADER.NUM_WORKERS = workers
    cfg.SNIPER.SEED = 0
    return cfg


def rate(n, seconds):
    return n / seconds if seconds > 0 else float("inf")


def timed(fn, items):
    """(CPU seconds, wall seconds, per-item CPU seconds) of fn over items, in this process."""
    per_item = []
    c0, w0 = time.process_time(), time.perf_counter()
    for item in items:
        t = time.process_time()
        fn(item)
        per_item.append(time.process_time() - t)
    return time.process_time() - c0, time.perf_counter() - w0, per_item


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as root:
        records = make_dataset(root, args.images)
        name = "bench_loader_coco_like"
        DatasetCatalog.register(name, lambda: records)
        cfg = coco_cfg(name, args.workers)
        planner = build_chip_planner(cfg)
        plan = planner.plan(0)
        dataset = ChipDataset(planner)
        keys = [encode_chip_key(0, p) for p in range(len(plan))]
        inputs = [dataset[k] for k in keys]
        print(f"{args.images} COCO-like JPEGs, {len(plan)} positive chips "
              f"({len(plan) / args.images:.2f}/image; per scale {np.bincount(plan.scale_index).tolist()})")

        n = len(inputs)
        for label, fn in [
            ("decode alone, detectron2 read_image (PIL)", lambda d: read_image(d["file_name"], format="BGR")),
            ("decode alone, cv2.imread", lambda d: cv2.imread(d["file_name"])),
        ]:
            cpu, wall, _ = timed(fn, inputs)
            print(f"{label:44s} {rate(n, cpu):7.1f} chips/s CPU ({rate(n, wall):6.1f} wall)")

        mapper = SniperChipMapper(cfg, True)
        cpu, wall, per_item = timed(mapper, inputs)
        print(f"{'SniperChipMapper, 1 process':44s} {rate(n, cpu):7.1f} chips/s CPU ({rate(n, wall):6.1f} wall)")
        scale_of = np.array([d["sniper_chip"].scale_index for d in inputs])
        for s in np.unique(scale_of):
            times = np.array(per_item)[scale_of == s]
            print(f"   scale {s}: {len(times):4d} chips, {1e3 * times.mean():.2f} ms CPU/chip")

        loader = build_detection_train_loader(
            cfg, mapper=mapper, dataset=dataset, sampler=ChipSampler(planner, rank=0, world_size=1),
            aspect_ratio_grouping=False,
        )
        it = iter(loader)
        next(it)  # start the workers
        batches = max(1, len(plan) // cfg.SOLVER.IMS_PER_BATCH)
        t0 = time.perf_counter()
        for _ in range(batches):
            next(it)
        loaded = time.perf_counter() - t0
        n = batches * cfg.SOLVER.IMS_PER_BATCH
        print(f"{f'training loader, {args.workers} workers':44s} {rate(n, loaded):7.1f} chips/s wall "
              f"({rate(n, loaded) / max(args.workers, 1):.1f} per worker)")
        del it, loader


if __name__ == "__main__":
    main()
