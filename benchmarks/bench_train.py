"""Training cost per image: SNIPER chips vs the full image pyramid vs single-scale 800x1333.
A script that prints figures, not a test.

    .venv/bin/python benchmarks/bench_train.py [--images 4] [--pyramid-images 2] [--depth 18]
        [--batch 1] [--repeats 2] [--device cpu|cuda] [--modes single,sniper,pyramid]
        [--dataset NAME [--register-coco NAME JSON_FILE IMAGE_ROOT] [--proposal-file FILE]]

Workload: COCO-like JPEGs (the seeded generator of bench_chips.py: 640x480 / 480x640, ~7 boxes
with COCO's small/medium/large mix, 300 proposals per image; textured like bench_loader.py's),
registered as a Detectron2 dataset, the proposals written as a Detectron2 proposal file
(SNIPER.NEG.PROPOSAL_FILES) so that the epoch has negative chips too.
With ``--dataset``: a seeded random sample of --images images of a registered Detectron2 dataset
instead (e.g. ``coco_2017_train`` under $DETECTRON2_DATASETS, or one registered here with
``--register-coco``; boxes, classes and crowd flags only), its negative chips from
``--proposal-file`` (Detectron2's proposal-file format, as ``train_net.py --mine-negatives``
writes it) or none without one. The synthetic objects are placed uniformly at random; real photos
cluster them, which changes how many chips cover them: measure the goal on the data you train on.

Model, the same in every mode: Faster R-CNN ResNet-FPN from configs/Base-SNIPER-FPN.yaml
(SniperRPN + SniperStandardROIHeads, BN, 80 classes, its RPN/ROI sampling sizes and 1024-d box
head; RPN proposals kept per input as each kind of training does it: 300 per chip from that
config, 1000 per whole image from configs/baseline_R_50_FPN_1x_single_scale.yaml) with a
ResNet-18 backbone by default (--depth 50 for R-50; too slow for a default run on a 2-core CPU),
random init with the same seed, train mode; one step = forward + backward + SGD step (at lr 0)
on a batch of --batch inputs (chips in SNIPER mode, whole images otherwise).
Modes (each in a fresh subprocess, so that its peak memory is its own):

* ``sniper``: every chip of epoch 0 (positive + negative) from sniper_d2's chip planner and
  SniperChipMapper at the COCO settings (scales 3.0, 1.667, longest:512; chip 512; stride 32);
  batches in the planner's shuffled order, as the SNIPER loader gives them.
* ``pyramid``: every image whole at each of the same three scales (3.0 turns 640x480 into
  1920x1440), Detectron2's DatasetMapper with all boxes as targets; batches hold one scale and
  one orientation (aspect-ratio grouping).
* ``single``: every image whole at ResizeShortestEdge(800, max 1333), Detectron2's DatasetMapper.

Time per original image = time of all steps of the mode / number of images. Mapping (JPEG
decode, crop, resize) is done between steps and not timed with them (a real loader does it in
worker processes); its CPU time is printed apart. One untimed warm-up step precedes the timing.
Each batch is stepped --repeats times (same weights: lr 0) and its fastest step counts:
on a shared 2-core VM single steps sometimes cost up to 9x their CPU time (seen here: 34 CPU s
for a 4 CPU s chip step, most likely a preempted thread leaving the other spinning at OpenMP
barriers).
On CPU, times are CPU seconds of the benchmark process (all its threads) and wall seconds; the
ratios use CPU seconds. On CUDA, wall seconds with synchronisation, AMP as in the config. Peak
memory: the process's peak RSS on CPU, torch.cuda.max_memory_allocated on CUDA.
"""
import argparse
import json
import math
import os
import pickle
import random
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, DatasetMapper, MetadataCatalog
from detectron2.data.datasets import register_coco_instances
from detectron2.data import transforms as T
from detectron2.modeling import build_model
from detectron2.solver import build_optimizer
from detectron2.structures import BoxMode
from detectron2.utils.events import EventStorage

import sniper_d2  # noqa: F401  (registers SniperRPN / SniperStandardROIHeads)
from bench_chips import coco_like_image
from bench_loader import textured_jpeg
from sniper_d2.chips import ChipGenerator
from sniper_d2.chips.scales import parse_scale, scaled_size
from sniper_d2.config import add_sniper_config
from sniper_d2.data import AnnotationTable, ChipDataset, ChipPlanner, SniperChipMapper, build_chip_planner
from sniper_d2.data.chip_plan import encode_chip_key
from sniper_d2.data.negative_proposals import load_negative_proposals

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE_CONFIG = os.path.join(REPO, "configs", "Base-SNIPER-FPN.yaml")
BASELINE_CONFIG = os.path.join(REPO, "configs", "baseline_R_50_FPN_1x_single_scale.yaml")
DATASET_NAME = "bench_train_coco_like"
MODES = ("single", "sniper", "pyramid")
NUM_CLASSES = 80
SIZE_DIVISIBILITY = 32  # FPN backbone: inputs are padded to a multiple of this, px


# ---- workload (parent process) ---------------------------------------------------------------


def save_workload(root, records, proposals, info):
    """The workload the modes train on, in ``root``: dataset dicts (JSON), a proposal file if any of
    ``proposals`` ({image_id: (P, 4) XYXY original px}) belong to ``records``, and ``info`` (source,
    classes)."""
    with open(os.path.join(root, "dataset.json"), "w") as f:
        json.dump(records, f)
    ids = [r["image_id"] for r in records if r["image_id"] in proposals]
    if ids:
        with open(os.path.join(root, "proposals.pkl"), "wb") as f:
            pickle.dump({"ids": ids, "boxes": [np.asarray(proposals[i], np.float32) for i in ids],
                         "objectness_logits": [np.zeros(len(proposals[i]), np.float32) for i in ids],
                         "bbox_mode": 0}, f)
    with open(os.path.join(root, "workload.json"), "w") as f:
        json.dump(info, f)


def load_workload_info(root):
    with open(os.path.join(root, "workload.json")) as f:
        return json.load(f)


def write_synthetic_workload(root, num_images, seed):
    """COCO-like JPEGs in ``root`` and their workload files."""
    rng = np.random.default_rng(seed)
    records, proposals = [], {}
    for i in range(num_images):
        width, height, boxes, props = coco_like_image(rng)
        path = os.path.join(root, f"{i:05d}.jpg")
        textured_jpeg(rng, path, width, height)
        classes = rng.integers(0, NUM_CLASSES, len(boxes))
        annos = [{"bbox": b.tolist(), "bbox_mode": 0, "category_id": int(c)} for b, c in zip(boxes, classes)]
        records.append({"file_name": path, "image_id": i, "width": width, "height": height, "annotations": annos})
        proposals[i] = props
    description = (f"{num_images} COCO-like images (640x480 / 480x640, "
                   f"{np.mean([len(r['annotations']) for r in records]):.2f} boxes/image, 300 proposals/image)")
    save_workload(root, records, proposals, {"description": description, "num_classes": NUM_CLASSES})


def synthetic_population(seed, num_images=500):
    """``num_images`` other images of the synthetic generator, as (dataset dicts, proposals); no pixels."""
    rng = np.random.default_rng(seed + 1)
    records, proposals = [], {}
    for i in range(num_images):
        width, height, boxes, props = coco_like_image(rng)
        annos = [{"bbox": b.tolist(), "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0} for b in boxes]
        records.append({"file_name": f"population/{i}.jpg", "image_id": i, "width": width, "height": height,
                        "annotations": annos})
        proposals[i] = props
    return records, proposals


def box_record(d):
    """A dataset dict reduced to what the box model trains on, JSON-serialisable."""
    annos = [{"bbox": [float(v) for v in a["bbox"]], "bbox_mode": int(a["bbox_mode"]),
              "category_id": int(a["category_id"]), "iscrowd": int(a.get("iscrowd", 0))}
             for a in d.get("annotations", [])]
    return {"file_name": d["file_name"], "image_id": d["image_id"], "width": d["width"], "height": d["height"],
            "annotations": annos}


def write_dataset_sample(root, args, population_images=2000):
    """A seeded random sample of ``args.images`` images of the registered dataset ``args.dataset``
    (and its proposals, if ``args.proposal_file``) as the workload; returns the dataset dicts of up
    to ``population_images`` other images of the dataset and the proposals by image id, for chip
    statistics without pixels."""
    dicts = DatasetCatalog.get(args.dataset)
    if len(dicts) < args.images:
        raise SystemExit(f"--images {args.images}: dataset '{args.dataset}' has only {len(dicts)} images.")
    missing = [d for d in dicts if "width" not in d or "height" not in d]
    if missing:
        raise SystemExit(f"dataset '{args.dataset}': image {missing[0].get('image_id', missing[0]['file_name'])!r} "
                         "has no width/height in its dataset dict; the chip planner needs both.")
    proposals = {}
    if args.proposal_file:
        proposals = load_negative_proposals(args.proposal_file, args.dataset, dicts)
    order = np.random.default_rng(args.seed).permutation(len(dicts))
    sample = [box_record(dicts[i]) for i in order[: args.images]]
    population = [dicts[i] for i in order[args.images : args.images + population_images]]
    classes = MetadataCatalog.get(args.dataset).get("thing_classes")
    num_classes = len(classes) if classes else 1 + max(
        (a["category_id"] for d in dicts for a in d.get("annotations", [])), default=0)
    boxes = np.mean([len(r["annotations"]) for r in sample])
    description = (f"{args.images} images sampled from '{args.dataset}' ({boxes:.2f} boxes/image, "
                   + (f"proposals from {args.proposal_file})" if proposals else "no proposal file: no negative chips)"))
    save_workload(root, sample, proposals, {"description": description, "num_classes": num_classes})
    return population, proposals


def population_chip_stats(cfg, records, proposals, seed):
    """Epoch-0 chip statistics of the planner over other images of the workload's source (no pixels
    needed): how typical the timed sample's chip count is."""
    table = AnnotationTable([("population", records)], [proposals])
    negatives = 0 if not cfg.SNIPER.NEG.PROPOSAL_FILES else cfg.SNIPER.NEG.CHIPS_PER_IMAGE
    planner = ChipPlanner(table, ChipGenerator.from_config(cfg), seed=seed, negatives_per_image=negatives)
    return {**planner.plan(0).stats, "images": len(records)}


# ---- one mode (child process) ----------------------------------------------------------------


def baseline_proposals_per_image():
    """RPN proposals the single-scale baseline config keeps per whole training image
    (Detectron2's 1000; the SNIPER base config keeps the authors' 300 per chip)."""
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.merge_from_file(BASELINE_CONFIG)
    return cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN


def build_cfg(args, root, mode="sniper"):
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.merge_from_file(BASE_CONFIG)
    if mode != "sniper":
        cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = baseline_proposals_per_image()
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.DEVICE = args.device
    cfg.MODEL.RESNETS.DEPTH = args.depth
    if args.depth in (18, 34):
        cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = load_workload_info(root)["num_classes"]
    cfg.DATASETS.TRAIN = (DATASET_NAME,)
    cfg.DATASETS.TEST = ()
    cfg.SOLVER.IMS_PER_BATCH = args.batch
    # The SGD step runs in full, at lr 0: from random init, repeated steps on one chip at any real
    # lr can diverge (seen at 0.001); a step's cost does not depend on the lr.
    cfg.SOLVER.BASE_LR = 0.0
    cfg.SOLVER.AMP.ENABLED = args.device.startswith("cuda") and not args.no_amp
    cfg.SNIPER.SEED = args.seed
    proposal_file = os.path.join(root, "proposals.pkl")
    negatives = not args.no_negatives and os.path.isfile(proposal_file)
    cfg.SNIPER.NEG.PROPOSAL_FILES = (proposal_file,) if negatives else ()
    return cfg


def register_dataset(root):
    with open(os.path.join(root, "dataset.json")) as f:
        records = json.load(f)
    for r in records:
        for a in r["annotations"]:
            a["bbox_mode"] = BoxMode(a["bbox_mode"])
    DatasetCatalog.register(DATASET_NAME, lambda: records)
    return records


def sniper_batches(cfg, records, batch):
    """Epoch 0's chips in the loader's order, as batches of (mapper, chip dataset dict)."""
    planner = build_chip_planner(cfg)
    plan = planner.plan(0)
    dataset, mapper = ChipDataset(planner), SniperChipMapper(cfg, True)
    items = [(mapper, dataset[encode_chip_key(0, p)]) for p in range(len(plan))]
    info = {
        "positive_chips": int((~plan.negative).sum()),
        "negative_chips": int(plan.negative.sum()),
        "chips_per_scale": np.bincount(plan.scale_index, minlength=3).tolist(),
    }
    return [items[i : i + batch] for i in range(0, len(items), batch)], info


class ResizeToScale(T.Augmentation):
    """Resizes a whole image to one SNIPER training scale (factor, longest side or resolution)."""

    def __init__(self, scale):
        super().__init__()
        self.spec = parse_scale(scale)

    def get_transform(self, image):
        h, w = image.shape[:2]
        new_w, new_h = scaled_size(w, h, self.spec.factor(w, h))
        return T.ResizeTransform(h, w, new_h, new_w)


def full_image_batches(cfg, records, batch, mode, pyramid_images):
    """Whole-image inputs: one scale (single) or the three SNIPER scales (pyramid), batched per
    (scale, orientation) like Detectron2's aspect-ratio grouping."""
    flip = T.RandomFlip(horizontal=True, vertical=False)
    if mode == "single":
        resizes = [T.ResizeShortestEdge(800, 1333, "choice")]
    else:
        resizes = [ResizeToScale(s) for s in cfg.SNIPER.TRAIN.SCALES]
        records = records[:pyramid_images] if pyramid_images else records
    mappers = [DatasetMapper(True, augmentations=[r, flip], image_format=cfg.INPUT.FORMAT) for r in resizes]
    batches = []
    for mapper in mappers:
        for landscape in (True, False):
            group = [(mapper, r) for r in records if (r["width"] >= r["height"]) == landscape]
            batches += [group[i : i + batch] for i in range(0, len(group), batch)]
    info = {"images_timed": len(records)}
    return batches, info


def model_pixels(inputs):
    """Pixels the model computes on for one batch: every input padded to the batch's largest
    size, rounded up to the backbone's size divisibility."""
    h = max(d["image"].shape[1] for d in inputs)
    w = max(d["image"].shape[2] for d in inputs)
    return len(inputs) * math.ceil(h / SIZE_DIVISIBILITY) * math.ceil(w / SIZE_DIVISIBILITY) * SIZE_DIVISIBILITY**2


def run_mode(args, root):
    """Train one epoch of ``args.child`` and return its figures (a dict)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    records = register_dataset(root)
    mode = args.child
    cfg = build_cfg(args, root, mode)
    if mode == "sniper":
        batches, info = sniper_batches(cfg, records, args.batch)
        images_timed = len(records)
    else:
        batches, info = full_image_batches(cfg, records, args.batch, mode, args.pyramid_images)
        images_timed = info["images_timed"]

    model = build_model(cfg)
    model.train()
    optimizer = build_optimizer(cfg, model)
    cuda = args.device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda") if cfg.SOLVER.AMP.ENABLED else None

    def step(inputs):
        with torch.autocast("cuda", enabled=scaler is not None):
            losses = sum(model(inputs).values())
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(losses).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            losses.backward()
            optimizer.step()
        return float(losses.detach())

    def mapped(batch):
        t0 = time.process_time()
        inputs = [mapper(d) for mapper, d in batch]
        return inputs, time.process_time() - t0

    def sync():
        if cuda:
            torch.cuda.synchronize()

    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with EventStorage(0):  # the heads log to it, as inside Detectron2's trainer
        step(mapped(batches[0])[0])  # warm-up, untimed
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        cpu = wall = map_cpu = 0.0
        pixels = content = inputs_count = 0
        nonfinite = 0
        for batch in batches:
            inputs, t_map = mapped(batch)
            map_cpu += t_map
            pixels += model_pixels(inputs)
            content += sum(d["image"].shape[1] * d["image"].shape[2] for d in inputs)
            inputs_count += len(inputs)
            runs = []
            for _ in range(args.repeats):
                sync()
                c0, w0 = time.process_time(), time.perf_counter()
                loss = step(inputs)
                sync()
                runs.append((time.process_time() - c0, time.perf_counter() - w0))
                nonfinite += not math.isfinite(loss)
            cpu += min(c for c, _ in runs)
            wall += min(w for _, w in runs)
    return {
        "mode": mode,
        "images": images_timed,
        "inputs": inputs_count,
        "steps": len(batches),
        "cpu_s": cpu,
        "wall_s": wall,
        "map_cpu_s": map_cpu,
        "model_pixels": pixels,
        "content_pixels": content,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_model_mib": rss_model,
        "cuda_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "nonfinite_losses": nonfinite,
        "threads": torch.get_num_threads(),
        "proposals_per_input": cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN,
        "roi_batch_per_input": cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE,
        **info,
    }


# ---- report (parent process) -----------------------------------------------------------------


def run_child(mode, args, root):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", mode, "--workdir", root]
    for flag in ("images", "seed", "device", "depth", "batch", "threads", "pyramid_images", "repeats"):
        cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    cmd += ["--no-negatives"] * args.no_negatives + ["--no-amp"] * args.no_amp
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise RuntimeError(f"mode '{mode}' failed (exit code {proc.returncode}); its output is above.")
    result = json.loads(lines[-1][len("RESULT "):])
    result["process_wall_s"] = time.perf_counter() - t0
    return result


def per_input_cost(results, time_key):
    """(s per input, s per model Mpx): least-squares fit of time/image over the modes run."""
    rows = [(r["inputs"] / r["images"], r["model_pixels"] / r["images"] / 1e6) for r in results.values()]
    times = [r[time_key] / r["images"] for r in results.values()]
    (a, b), *_ = np.linalg.lstsq(np.array(rows), np.array(times), rcond=None)
    return a, b


def report(results, args, workload, population):
    cuda = args.device.startswith("cuda")
    first = next(iter(results.values()))
    print(f"== Training cost per image: {workload['description']}, seed {args.seed}"
          + (", negative chips off (--no-negatives)" if args.no_negatives else ""))
    print(f"model: Faster R-CNN R-{args.depth}-FPN (configs/Base-SNIPER-FPN.yaml: SniperRPN, SniperStandardROIHeads, "
          f"BN, {workload['num_classes']} classes), random init, train mode; step = forward + backward + SGD (lr 0) on "
          f"{args.batch} input(s), fastest of {args.repeats} step(s) per batch; device {args.device}"
          + (f" ({first['threads']} threads)" if not cuda else f", AMP {'off' if args.no_amp else 'on'}"))
    print("RPN proposals kept per input (the box head trains on up to ROI_HEADS.BATCH_SIZE_PER_IMAGE of them): "
          + ", ".join(f"{mode} {r['proposals_per_input']} (ROI batch {r['roi_batch_per_input']})"
                      for mode, r in results.items()))
    if "sniper" in results:
        s = results["sniper"]
        print(f"SNIPER epoch 0: {s['positive_chips']} positive + {s['negative_chips']} negative chips "
              f"({(s['positive_chips'] + s['negative_chips']) / s['images']:.2f} chips/image; per scale "
              f"{s['chips_per_scale']}), chips 512 px, scales (3.0, 1.667, longest:512)")
        if population["images"]:
            print(f"  the same planner on {population['images']} other images of the {population['source']} "
                  f"(no training): {population['chips_per_image']:.2f} chips/image, "
                  f"{population['pixels_per_image'] / 1e6:.3f} content Mpx/image (this sample: "
                  f"{s['content_pixels'] / s['images'] / 1e6:.3f}); a small sample's chip count varies, and "
                  "SNIPER's time follows it")
    if "pyramid" in results and results["pyramid"]["images"] < args.images:
        print(f"pyramid: capped at the first {results['pyramid']['images']} images (--pyramid-images)")
    time_key, time_name = ("wall_s", "wall") if cuda else ("cpu_s", "CPU")
    mem_name = "CUDA peak MiB" if cuda else "peak RSS MiB"
    print()
    print(f"{'mode':8s} {'images':>6s} {'inputs':>6s} {'steps':>5s} {'content Mpx/img':>15s} {'model Mpx/img':>13s} "
          f"{'s/img CPU':>9s} {'s/img wall':>10s} {'x single':>8s} {mem_name:>13s} {'map s/img':>9s}")
    single = results.get("single")
    for mode in MODES:
        if mode not in results:
            continue
        r = results[mode]
        n = r["images"]
        per_image = r[time_key] / n
        ratio = f"{per_image / (single[time_key] / single['images']):8.2f}" if single else f"{'-':>8s}"
        mem = r["cuda_peak_mib"] if cuda else r["peak_rss_mib"]
        print(f"{mode:8s} {n:6d} {r['inputs']:6d} {r['steps']:5d} {r['content_pixels'] / n / 1e6:15.3f} "
              f"{r['model_pixels'] / n / 1e6:13.3f} {r['cpu_s'] / n:9.2f} {r['wall_s'] / n:10.2f} {ratio} "
              f"{mem:13.0f} {r['map_cpu_s'] / n:9.3f}")
    print()
    per_image = {m: r[time_key] / r["images"] for m, r in results.items()}
    px = {m: r["model_pixels"] / r["images"] for m, r in results.items()}
    if single and "sniper" in results:
        print(f"SNIPER / single-scale: {per_image['sniper'] / per_image['single']:.2f}x time per image ({time_name}), "
              f"{px['sniper'] / px['single']:.2f}x model pixels (goal: time <= 1.5x; paper: 1.3x pixels on COCO)")
    if single and "pyramid" in results:
        print(f"pyramid / single-scale: {per_image['pyramid'] / per_image['single']:.2f}x time per image, "
              f"{px['pyramid'] / px['single']:.2f}x model pixels")
    if "sniper" in results and "pyramid" in results:
        print(f"SNIPER / pyramid: {per_image['sniper'] / per_image['pyramid']:.2f}x time per image, "
              f"{px['sniper'] / px['pyramid']:.2f}x model pixels")
    if len(results) >= 2:
        a, b = per_input_cost(results, time_key)
        print(f"least-squares fit over the modes: time/image ~ {a:.2f} s x inputs/image + {b:.2f} s x model Mpx/image "
              "(first term: cost of each input that does not grow with its size, e.g. proposal selection, "
              "ROI sampling, ROIAlign and the box head on a fixed number of ROIs)")
    if not cuda:
        print("CPU s = CPU time of the mode's process summed over its threads; other jobs sharing the cores "
              "inflate both CPU and wall times (a preempted thread leaves the other spinning), hence the "
              "fastest of --repeats steps per batch")
        print("peak RSS of each mode's process: " + ", ".join(
            f"{m} {r['peak_rss_mib']:.0f} MiB ({r['rss_model_mib']:.0f} before training: imports, model, optimizer)"
            for m, r in results.items()))
    bad = {m: r["nonfinite_losses"] for m, r in results.items() if r["nonfinite_losses"]}
    if bad:
        print(f"warning: non-finite losses in {bad} steps (random init); timings may be unrepresentative")
    print("columns: content = input pixels before padding; model = after padding to the batch's largest "
          "input and a multiple of 32; map = CPU s/image of decoding + cropping + resizing (not in the step time); "
          "x single = time per image relative to single-scale")
    print("process wall time per mode (model build, mapping, warm-up included): " + ", ".join(
        f"{m} {r['process_wall_s']:.0f} s" for m, r in results.items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4, help="images in the epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--depth", type=int, default=18, choices=(18, 34, 50, 101), help="ResNet depth")
    parser.add_argument("--batch", type=int, default=1, help="inputs (chips or whole images) per step")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)}")
    parser.add_argument("--pyramid-images", type=int, default=2,
                        help="time the pyramid on only the first N images (0: all); it is the slowest mode")
    parser.add_argument("--repeats", type=int, default=2,
                        help="steps per batch; the fastest counts (1: every step once, fastest run)")
    parser.add_argument("--no-negatives", action="store_true", help="SNIPER: positive chips only")
    parser.add_argument("--no-amp", action="store_true", help="CUDA: train in fp32")
    parser.add_argument("--dataset", metavar="NAME",
                        help="time a random sample of this registered Detectron2 dataset instead of synthetic images")
    parser.add_argument("--register-coco", nargs=3, metavar=("NAME", "JSON_FILE", "IMAGE_ROOT"),
                        help="register a COCO-format dataset under NAME first (then pass --dataset NAME)")
    parser.add_argument("--proposal-file", metavar="FILE",
                        help="--dataset's proposals for negative chips (Detectron2 proposal-file format, e.g. "
                             "from train_net.py --mine-negatives); without it, positive chips only")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(run_mode(args, args.workdir)))
        return
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s) {sorted(unknown)} in --modes; choose from {', '.join(MODES)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda but no GPU is available")
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: give at least 1")
    if args.proposal_file and not args.dataset:
        parser.error("--proposal-file belongs to --dataset; the synthetic workload makes its own proposals")
    if args.register_coco:
        register_coco_instances(args.register_coco[0], {}, *args.register_coco[1:])
    if args.dataset and args.dataset not in DatasetCatalog.list():
        parser.error(f"--dataset '{args.dataset}' is not registered; register a COCO-format dataset with "
                     "--register-coco NAME JSON_FILE IMAGE_ROOT, or use a built-in name such as coco_2017_train "
                     "(images and annotations under $DETECTRON2_DATASETS)")
    with tempfile.TemporaryDirectory() as root:
        if args.dataset:
            population_records, population_proposals = write_dataset_sample(root, args)
        else:
            write_synthetic_workload(root, args.images, args.seed)
            population_records, population_proposals = synthetic_population(args.seed)
        population = {"images": 0}
        if population_records:
            population = population_chip_stats(build_cfg(args, root), population_records, population_proposals,
                                               args.seed)
        population["source"] = f"dataset '{args.dataset}'" if args.dataset else "generator"
        workload = load_workload_info(root)
        results = {}
        for mode in modes:
            results[mode] = run_child(mode, args, root)
            print(f"[{mode} done in {results[mode]['process_wall_s']:.0f} s]", file=sys.stderr, flush=True)
    report(results, args, workload, population)


if __name__ == "__main__":
    main()
