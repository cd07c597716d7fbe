"""Chip mapper throughput and the decode cache (sniper_d2.data). A script that prints figures, not a test.

    .venv/bin/python benchmarks/bench_loader.py [--images 48] [--workers 2] [--huge-images 3]
        [--huge-size 6000] [--huge-boxes 60] [--off-chips 0] [--cache-mb 1024 ...] [--repeats 2] [--skip-coco]

COCO-like JPEGs (640x480 / 480x640, textured, quality 90, ~7 boxes with COCO's size mix, the
workload of bench_chips.py) are written to a temporary directory; the epoch's positive chips at
the COCO settings (3.0, 1.667, longest:512; chip 512; stride 32) are then mapped
(read + crop + scale + flip + ground truth) by

1. decoding alone (detectron2's read_image of the whole file, once per chip): the floor a mapper
   that decodes the full image for every chip cannot beat;
2. SniperChipMapper in this process, overall and per scale; then with ``MODEL.MASK_ON`` (each box
   has a 24-vertex polygon, COCO's typical outline), chips/s and the cost per chip relative to
   boxes only;
3. Detectron2's training loader with N worker processes (chips/s overall and per worker).

Single-process figures are given as CPU time of this process (robust to other jobs on the
machine) and wall time; the multi-worker figure is wall time only. The start-up image check
(header, EXIF orientation, last bytes of every file) is timed on the same JPEGs.

Then, huge images (``--huge-images`` textured JPEGs of ``--huge-size`` px square, each with
``--huge-boxes`` boxes, mostly small, as aerial or document images have): one epoch of chips in
the training order, mapped with the decode cache off and on (``SNIPER.TRAIN.DECODE_CACHE_MB``),
each in a fresh process: loader CPU s per epoch, its ratio to the cost of decoding each image once
(full size), peak RSS above the process's start, and with the cache on the next epoch's CPU
(data-loader workers live for the whole run, so their caches stay warm); then the training loader with ``--workers``
workers and the cache on (CPU of all workers, the largest worker's peak RSS). ``--off-chips N``
maps only the first N chips with the cache off and scales the CPU to the epoch (for dense sets,
where decoding every chip's image takes many minutes). Each row is the fastest of ``--repeats`` runs.
"""
import argparse
import multiprocessing
import os
import resource
import tempfile
import time

import cv2
import numpy as np
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, build_detection_train_loader
from detectron2.data.detection_utils import read_image
from detectron2.structures import BoxMode
from torch.utils.data import Sampler

from bench_chips import coco_like_image, random_boxes
from sniper_d2.config import add_sniper_config
from sniper_d2.data import ChipDataset, SniperChipMapper, build_chip_planner, check_training_images
from sniper_d2.data.chip_image import decode_reduction
from sniper_d2.data.chip_plan import encode_chip_key
from sniper_d2.data.chip_sampler import ChipSampler


def textured_jpeg(rng, path, width, height):
    """A JPEG whose decode cost resembles a photo's: smooth colour fields plus fine noise."""
    base = cv2.resize(rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8), (width, height))
    image = np.empty_like(base)
    for y in range(0, height, 256):  # in bands: the float noise of a whole 6000 px image takes 0.9 GB
        band = base[y:y + 256] + rng.normal(0, 18, (min(256, height - y), width, 3))
        image[y:y + 256] = np.clip(band, 0, 255)
    cv2.imwrite(path, image, [cv2.IMWRITE_JPEG_QUALITY, 90])


def outline_polygon(box, vertices=24):
    """A COCO-like object outline in ``box`` (XYXY px): an ellipse of ``vertices`` points."""
    x0, y0, x1, y1 = box
    angle = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    points = np.stack([(x0 + x1) / 2 + (x1 - x0) / 2 * np.cos(angle), (y0 + y1) / 2 + (y1 - y0) / 2 * np.sin(angle)], 1)
    return [points.ravel().tolist()]


def make_dataset(root, num_images, seed=0):
    rng = np.random.default_rng(seed)
    records = []
    for i in range(num_images):
        width, height, boxes, _ = coco_like_image(rng)
        path = os.path.join(root, f"{i:05d}.jpg")
        textured_jpeg(rng, path, width, height)
        annos = [{"bbox": b.tolist(), "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0,
                  "segmentation": outline_polygon(b)} for b in boxes]
        records.append({"file_name": path, "image_id": i, "width": width, "height": height, "annotations": annos})
    return records


def make_huge_dataset(root, num_images, size, num_boxes, seed=0):
    """Square JPEGs of ``size`` px; 90 % of the boxes 12-60 px (sqrt(area)), 10 % 60-1500 px."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(num_images):
        path = os.path.join(root, f"huge{i:03d}.jpg")
        textured_jpeg(rng, path, size, size)
        small = int(round(num_boxes * 0.9))
        boxes = np.concatenate([random_boxes(rng, small, size, size, 12, 60),
                                random_boxes(rng, num_boxes - small, size, size, 60, 1500)])
        annos = [{"bbox": b.tolist(), "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0} for b in boxes]
        records.append({"file_name": path, "image_id": i, "width": size, "height": size, "annotations": annos})
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


def coco_part(args):
    with tempfile.TemporaryDirectory() as root:
        records = make_dataset(root, args.images)
        name = "bench_loader_coco_like"
        DatasetCatalog.register(name, lambda: records)
        cfg = coco_cfg(name, args.workers)
        cfg.SNIPER.TRAIN.DECODE_CACHE_MB = 0  # each image has ~6 chips: nothing to gain
        cfg.OUTPUT_DIR = os.path.join(root, "output")
        planner = build_chip_planner(cfg)
        plan = planner.plan(0)
        dataset = ChipDataset(planner)
        keys = [encode_chip_key(0, p) for p in range(len(plan))]
        inputs = [dataset[k] for k in keys]
        print(f"{args.images} COCO-like JPEGs, {len(plan)} positive chips "
              f"({len(plan) / args.images:.2f}/image; per scale {np.bincount(plan.scale_index).tolist()})")

        cpu, _, _ = timed(lambda _: check_training_images([(name, records)]), range(5))
        print(f"{'start-up image check (header, EXIF, tail)':44s} {1e3 * cpu / 5 / len(records):7.3f} ms CPU/image")

        n = len(inputs)
        for label, fn in [
            ("decode alone, detectron2 read_image (PIL)", lambda d: read_image(d["file_name"], format="BGR")),
            ("decode alone, cv2.imread", lambda d: cv2.imread(d["file_name"])),
        ]:
            cpu, wall, _ = timed(fn, inputs)
            print(f"{label:44s} {rate(n, cpu):7.1f} chips/s CPU ({rate(n, wall):6.1f} wall)")

        mapper = SniperChipMapper(cfg, True)
        cpu, wall, per_item = min((timed(mapper, inputs) for _ in range(2)), key=lambda t: t[0])
        print(f"{'SniperChipMapper, 1 process':44s} {rate(n, cpu):7.1f} chips/s CPU ({rate(n, wall):6.1f} wall)")
        scale_of = np.array([d["sniper_chip"].scale_index for d in inputs])
        for s in np.unique(scale_of):
            times = np.array(per_item)[scale_of == s]
            print(f"   scale {s}: {len(times):4d} chips, {1e3 * times.mean():.2f} ms CPU/chip")
        mask_cfg = cfg.clone()
        mask_cfg.MODEL.MASK_ON = True
        mask_mapper = SniperChipMapper(mask_cfg, True)
        mask_cpu, mask_wall, _ = min((timed(mask_mapper, inputs) for _ in range(2)), key=lambda t: t[0])
        boxes_per_chip = np.mean([len(mask_mapper(d)["instances"]) for d in inputs[:200]])
        print(f"{'SniperChipMapper + masks (polygon), 1 process':44s} {rate(n, mask_cpu):7.1f} chips/s CPU "
              f"({rate(n, mask_wall):6.1f} wall); {mask_cpu / cpu:.2f}x the CPU per chip of boxes only "
              f"({boxes_per_chip:.1f} masks/chip)")

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


def _rss_mib(field):
    """VmRSS / VmHWM (peak) of this process, MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _in_fresh_process(fn, *args):
    """fn(*args) in a forked process (its own CPU clock, peak RSS and caches); returns its result."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)

    def run():
        torch.set_num_threads(1)
        child.send(fn(*args))

    p = ctx.Process(target=run)
    p.start()
    result = parent.recv()
    p.join()
    return result


def _map_epoch(cfg, dataset, keys, cache_mb, next_keys=()):
    """Map ``keys`` in order with the decode cache at ``cache_mb``: CPU s, peak RSS over the start,
    cache stats; then ``next_keys`` (the next epoch, cache warm): their CPU s."""
    cfg = cfg.clone()
    cfg.SNIPER.TRAIN.DECODE_CACHE_MB = cache_mb
    mapper = SniperChipMapper(cfg, True)
    start_rss = _rss_mib("VmRSS")
    c0 = time.process_time()
    for key in keys:
        mapper(dataset[key])
    cpu = time.process_time() - c0
    cache = mapper.decode_cache
    stats = None if cache is None else (cache.hits, cache.misses, len(cache), cache.used_bytes / 2**20)
    c0 = time.process_time()
    for key in next_keys:
        mapper(dataset[key])
    return {"cpu": cpu, "peak_rss": _rss_mib("VmHWM") - start_rss, "cache": stats,
            "next_cpu": time.process_time() - c0}


class _OneEpoch(Sampler):
    """The chip keys of epoch 0, then the end (so that workers stop after one epoch)."""

    def __init__(self, keys):
        self.keys = keys

    def __iter__(self):
        return iter(self.keys)

    def __len__(self):
        return len(self.keys)


def _load_epoch_with_workers(cfg, dataset, keys, cache_mb):
    """One epoch through Detectron2's training loader: CPU s of all workers, largest worker peak RSS."""
    cfg = cfg.clone()
    cfg.SNIPER.TRAIN.DECODE_CACHE_MB = cache_mb
    loader = build_detection_train_loader(cfg, mapper=SniperChipMapper(cfg, True), dataset=dataset,
                                          sampler=_OneEpoch(keys), aspect_ratio_grouping=False)
    chips = sum(len(batch) for batch in loader)
    del loader
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"cpu": usage.ru_utime + usage.ru_stime, "peak_rss": usage.ru_maxrss / 1024, "chips": chips,
            "parent_rss": _rss_mib("VmRSS")}


def huge_part(args):
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        records = make_huge_dataset(root, args.huge_images, args.huge_size, args.huge_boxes)
        name = "bench_loader_huge"
        DatasetCatalog.register(name, lambda: records)
        cfg = coco_cfg(name, args.workers)
        cfg.OUTPUT_DIR = os.path.join(root, "output")
        planner = build_chip_planner(cfg)
        plan = planner.plan(0)
        dataset = ChipDataset(planner)
        keys = [encode_chip_key(0, p) for p in range(len(plan))]
        mb = np.mean([os.path.getsize(r["file_name"]) for r in records]) / 1e6
        per_image = np.bincount(plan.image_index, minlength=len(records))
        print(f"\n{args.huge_images} JPEGs {args.huge_size}x{args.huge_size} ({mb:.1f} MB each, {args.huge_boxes} "
              "boxes "
              f"each; written in {time.perf_counter() - t0:.0f} s); epoch 0: {len(plan)} chips, per image "
              f"{per_image.tolist()}, per scale {np.bincount(plan.scale_index).tolist()}")

        # decoding each image once: full size, and at each reduction its chips need
        reductions = sorted({decode_reduction(s, True) for s in np.unique(plan.scale)})
        once = {}
        for k in reductions:
            flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                    8: cv2.IMREAD_REDUCED_COLOR_8}[k]

            def decode(r, flag=flag):
                with open(r["file_name"], "rb") as f:
                    cv2.imdecode(np.frombuffer(f.read(), np.uint8), flag)

            once[k] = min(timed(decode, records)[0] for _ in range(2))
        decode_once = once[1]
        print(f"{'decoding each image once, full size':44s} {decode_once:7.2f} CPU s "
              f"(at the reductions the chips use, {reductions}: {sum(once.values()):.2f} CPU s)")

        def best_of(fn, *fn_args):  # the machine's other jobs only ever add CPU time
            return min((_in_fresh_process(fn, *fn_args) for _ in range(args.repeats)), key=lambda r: r["cpu"])

        off_keys = keys[:args.off_chips] if 0 < args.off_chips < len(keys) else keys
        off = best_of(_map_epoch, cfg, dataset, off_keys, 0)
        off_cpu = off["cpu"] * len(keys) / len(off_keys)
        note = f", estimated from the first {len(off_keys)} chips" if len(off_keys) < len(keys) else ""
        print(f"{'cache off: loader CPU per epoch':44s} {off_cpu:7.2f} CPU s = {off_cpu / decode_once:5.1f}x "
              "decode-once; "
              f"{1e3 * off_cpu / len(keys):.1f} ms/chip; peak RSS +{off['peak_rss']:.0f} MiB{note}")
        next_keys = [encode_chip_key(1, p) for p in range(len(planner.plan(1)))]
        for cache_mb in args.cache_mb:
            on = best_of(_map_epoch, cfg, dataset, keys, cache_mb, next_keys)
            hits, misses, entries, used = on["cache"]
            print(f"{f'cache on ({cache_mb:g} MiB): loader CPU per epoch':44s} {on['cpu']:7.2f} CPU s = "
                  f"{on['cpu'] / decode_once:5.1f}x decode-once; {1e3 * on['cpu'] / len(keys):.1f} ms/chip; peak RSS "
                  f"+{on['peak_rss']:.0f} MiB; {hits} hits, {misses} decodes, {entries} kept ({used:.0f} MiB); "
                  f"{off_cpu / on['cpu']:.1f}x less CPU than off")
            print(f"{'':44s} next epoch ({len(next_keys)} chips, cache warm): {on['next_cpu']:.2f} CPU s = "
                  f"{on['next_cpu'] / decode_once:.1f}x decode-once")
        if args.workers > 0:
            w = best_of(_load_epoch_with_workers, cfg, dataset, keys, args.cache_mb[0])
            print(f"{f'training loader, {args.workers} workers, cache on':44s} {w['cpu']:7.2f} CPU s of the workers "
                  f"per epoch = {w['cpu'] / decode_once:5.1f}x decode-once (start-up included; each worker decodes "
                  f"its images once); largest worker peak RSS {w['peak_rss']:.0f} MiB (main process "
                  f"{w['parent_rss']:.0f} MiB, shared with the workers at the start)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-coco", action="store_true", help="only the huge-image part")
    parser.add_argument("--huge-images", type=int, default=3, help="0: skip the huge-image part")
    parser.add_argument("--huge-size", type=int, default=6000)
    parser.add_argument("--huge-boxes", type=int, default=60)
    parser.add_argument("--off-chips", type=int, default=0, help="cache off: map only this many chips (0: all)")
    parser.add_argument("--cache-mb", type=float, nargs="+", default=[1024.0],
                        help="decode cache budgets to measure (MiB per process); the first for the workers")
    parser.add_argument("--repeats", type=int, default=2, help="huge part: fastest of this many runs per row")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.skip_coco:
        coco_part(args)
    if args.huge_images > 0:
        huge_part(args)


if __name__ == "__main__":
    main()
