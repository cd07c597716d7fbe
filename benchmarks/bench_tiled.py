"""Tiled inference on huge images (SNIPER.TEST.TILE_SIZE): memory, time and what tiling changes.
A script that prints figures, not a test.

    .venv/bin/python benchmarks/bench_tiled.py [--size 8000] [--scale 0.5] [--tile-size 1024] [--overlap 128]
        [--compare-size 2000] [--compare-scale 1.0] [--config-file CFG] [--weights W]

The model is the config's (default: the demo's R-18 FPN, configs/demo/sniper_shapes_R18_FPN.yaml)
with random weights (seed 0) unless --weights; one test scale with an open valid range, the
config's per-scale post-processing and soft-NMS merge; one CPU thread; MODEL.DEVICE cpu.
Images: a textured background with rectangles, ellipses and triangles of 10-300 px.

1. Memory and time on one --size x --size image at --scale: untiled (the whole scaled image at
   once) and tiled (--tile-size px tiles, --overlap px), each in its own process: peak RSS growth
   during inference above the process's RSS with the image and the model loaded (Linux: VmHWM,
   reset through /proc/self/clear_refs), wall and CPU seconds, tiles, largest detector input.
   Untiled runs only when its scaled image is at most --untiled-max-mpx (default 20 Mpx; the
   R-18 needs about 0.2 GB per scaled Mpx); above, it is reported as not run.
2. Same detections? On a --compare-size image at --compare-scale, the same model untiled and
   tiled, in this process. Untiled gets the tiles' proposals per px (SNIPER.TEST.PROPOSALS_PER_SCALE
   and MODEL.RPN.PRE_NMS_TOPK_TEST times the scaled image's area in mean tile areas); no cap on
   detections after the merge. Prints, per untiled detection, whether a tiled one of
   its class overlaps it with IoU > 0.9, separately for detections centred near an interior
   tile edge (within the overlap) and elsewhere, and the same for the 100 best; tiled-only
   detections likewise. Random weights score every class near 1/4, so which boxes survive the
   merge is fragile; --weights of a trained model gives the comparison that matters.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import cv2
import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.structures import Boxes, pairwise_iou

from sniper_d2 import add_sniper_config, build_inference_model
from sniper_d2.chips.scales import scaled_size
from sniper_d2.inference.tiling import BORDER_TOLERANCE, tile_grid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(REPO, "configs", "demo", "sniper_shapes_R18_FPN.yaml")


def synthetic_image(size: int, seed: int = 0) -> np.ndarray:
    """``size`` x ``size`` BGR uint8 image: gradient and noise background, random lines, and about
    one shape per 40,000 px (sqrt(area) 10-300 px, log-uniform). Built in bands of rows, so the
    only large allocation is the image itself."""
    rng = np.random.default_rng(seed)
    image = np.empty((size, size, 3), np.uint8)
    noise = rng.normal(0, 12, size=(256, 256, 3)).astype(np.float32)
    c0, c1 = rng.uniform(40, 215, size=(2, 3)).astype(np.float32)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)[None, :, None]
    for y in range(0, size, 256):
        band = c0 * (1 - ramp) + c1 * ramp + np.tile(noise, (1, math.ceil(size / 256), 1))[:, :size]
        rows = min(256, size - y)
        image[y : y + rows] = np.clip(band[:rows], 0, 255).astype(np.uint8)
    for _ in range(size // 200):
        p0, p1 = (tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(2))
        cv2.line(image, p0, p1, tuple(int(v) for v in rng.integers(0, 256, 3)), int(rng.integers(1, 4)))
    for _ in range(size * size // 40000):
        side = float(np.exp(rng.uniform(np.log(10), np.log(300))))
        w, h = side * np.exp(rng.uniform(-0.4, 0.4, 2))
        x, y = rng.uniform(0, size - w), rng.uniform(0, size - h)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        kind = rng.integers(0, 3)
        if kind == 0:
            cv2.rectangle(image, (int(x), int(y)), (int(x + w), int(y + h)), colour, -1)
        elif kind == 1:
            cv2.ellipse(image, (int(x + w / 2), int(y + h / 2)), (int(w / 2), int(h / 2)), 0, 0, 360, colour, -1)
        else:
            points = np.array([[x + w / 2, y], [x, y + h], [x + w, y + h]], np.int32)
            cv2.fillPoly(image, [points], colour)
    return image


def bench_cfg(args, scale, tiled: bool):
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.MODEL.DEVICE = "cpu"
    cfg.SNIPER.TEST.SCALES = (scale,)
    cfg.SNIPER.TEST.VALID_RANGES = ((-1, -1),)
    cfg.SNIPER.TEST.TILE_SIZE = args.tile_size if tiled else 0
    cfg.SNIPER.TEST.TILE_OVERLAP = args.overlap
    cfg.SNIPER.TEST.TILE_ABOVE = 0
    return cfg


def load_model(cfg, weights):
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    if weights:
        DetectionCheckpointer(model).load(weights)
    return model


def chw(image: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def run_child(args) -> dict:
    """One memory/time measurement (part 1) in this process: ``args.child`` is tiled or untiled."""
    torch.set_num_threads(1)
    tiled = args.child == "tiled"
    image = chw(synthetic_image(args.size))
    cfg = bench_cfg(args, args.scale, tiled)
    wrapper = build_inference_model(cfg, load_model(cfg, args.weights))
    model = wrapper.model
    sizes = []
    inference = model.inference
    model.inference = lambda batch, do_postprocess=True: (
        sizes.extend(tuple(x["image"].shape[1:]) for x in batch) or inference(batch, do_postprocess=do_postprocess))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    rss = _status_mib("VmRSS")
    wall, cpu = time.perf_counter(), time.process_time()
    detections = len(wrapper([{"image": image, "height": args.size, "width": args.size}])[0]["instances"])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"rss_mib": rss, "peak_growth_mib": _status_mib("VmHWM") - rss, "wall_s": wall, "cpu_s": cpu,
            "calls": len(sizes), "largest_input": max(max(s) for s in sizes), "detections": detections,
            "input_mpx": sum(h * w for h, w in sizes) / 1e6}


def measure(args, mode) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--child", mode, "--size", str(args.size),
               "--scale", str(args.scale), "--tile-size", str(args.tile_size), "--overlap", str(args.overlap),
               "--config-file", args.config_file] + (["--weights", args.weights] if args.weights else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{mode} run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def part_memory(args):
    scaled_w, scaled_h = scaled_size(args.size, args.size, args.scale)
    mpx = scaled_w * scaled_h / 1e6
    print(f"1. {args.size}x{args.size} image at scale {args.scale:g} (scaled {scaled_w}x{scaled_h}, {mpx:.1f} Mpx), "
          f"tiles {args.tile_size} px, overlap {args.overlap} px; one thread, own process each")
    rows = [("tiled", measure(args, "tiled"))]
    if mpx <= args.untiled_max_mpx:
        rows.insert(0, ("untiled", measure(args, "untiled")))
    for name, r in rows:
        print(f"   {name:8s} peak RSS growth {r['peak_growth_mib']:8,.0f} MiB "
              f"(above {r['rss_mib']:,.0f} MiB with image "
              f"and model), wall {r['wall_s']:6.1f} s, CPU {r['cpu_s']:6.1f} s, {r['calls']} detector call(s), "
              f"largest input {r['largest_input']} px, {r['input_mpx']:.1f} Mpx in all, {r['detections']} detections")
    if len(rows) == 1:
        print(f"   untiled  not run: {mpx:.0f} Mpx scaled is above --untiled-max-mpx {args.untiled_max_mpx:g}")
    else:
        untiled, tiled = rows[0][1], rows[1][1]
        print(f"   tiled / untiled: memory x{tiled['peak_growth_mib'] / untiled['peak_growth_mib']:.2f}, "
              f"CPU x{tiled['cpu_s'] / untiled['cpu_s']:.2f} "
              f"(the overlaps: x{tiled['input_mpx'] / untiled['input_mpx']:.2f} "
              "the detector's input pixels)")


def edge_distance(boxes: torch.Tensor, tiles, size: int) -> torch.Tensor:
    """Distance of each box's centre to the nearest interior tile edge, original px (inf: none)."""
    xs = sorted({t.x0 for t in tiles if t.x0 > 0} | {t.x1 for t in tiles if t.x1 < size})
    ys = sorted({t.y0 for t in tiles if t.y0 > 0} | {t.y1 for t in tiles if t.y1 < size})
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    distance = torch.full((len(boxes),), math.inf)
    for x in xs:
        distance = torch.minimum(distance, (cx - x).abs())
    for y in ys:
        distance = torch.minimum(distance, (cy - y).abs())
    return distance


def best_iou_same_class(a, b) -> torch.Tensor:
    """For each detection of ``a``, the highest IoU with a detection of ``b`` of the same class."""
    best = torch.zeros(len(a))
    for cls in a.pred_classes.unique().tolist():
        ia, ib = a.pred_classes == cls, b.pred_classes == cls
        if ib.any():
            best[ia] = pairwise_iou(Boxes(a.pred_boxes.tensor[ia]), Boxes(b.pred_boxes.tensor[ib])).max(dim=1).values
    return best


def part_same_detections(args):
    torch.set_num_threads(1)
    size, scale = args.compare_size, args.compare_scale
    image = chw(synthetic_image(size, seed=1))
    tiled_cfg = bench_cfg(args, scale, tiled=True)
    stride = build_inference_model(tiled_cfg, load_model(tiled_cfg, "")).feature_stride
    tiles = tile_grid(size, size, scale, args.tile_size, args.overlap, stride)
    tiled_cfg.SNIPER.TEST.DETECTIONS_PER_IMAGE = 10**6
    untiled_cfg = bench_cfg(args, scale, tiled=False)
    untiled_cfg.SNIPER.TEST.DETECTIONS_PER_IMAGE = 10**6
    per_scale = tiled_cfg.SNIPER.TEST.PROPOSALS_PER_SCALE or tiled_cfg.MODEL.RPN.POST_NMS_TOPK_TEST
    # proposals per px of detector input as in a tile (the mean tile's)
    tile_px = sum(math.prod(scaled_size(t.width, t.height, scale)) for t in tiles) / len(tiles)
    tiles_per_image = math.prod(scaled_size(size, size, scale)) / tile_px
    untiled_cfg.SNIPER.TEST.PROPOSALS_PER_SCALE = round(per_scale * tiles_per_image)
    untiled_cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = round(tiled_cfg.MODEL.RPN.PRE_NMS_TOPK_TEST * tiles_per_image)
    inputs = [{"image": image, "height": size, "width": size}]
    side = max(max(scaled_size(t.width, t.height, scale)) for t in tiles)
    print(f"2. {size}x{size} image at scale {scale:g}, {len(tiles)} tiles of at most {args.tile_size} px ({side} here), "
          f"overlap {args.overlap} px; untiled with the tiles' proposals per px; one thread")
    outputs = {}
    for name, cfg in (("untiled", untiled_cfg), ("tiled", tiled_cfg)):
        wrapper = build_inference_model(cfg, load_model(cfg, args.weights))
        start = time.process_time()
        outputs[name] = wrapper(inputs)[0]["instances"]
        print(f"   {name}: {len(outputs[name])} detections, {time.process_time() - start:.1f} CPU s")
    overlap = args.overlap / scale  # original px
    bins = [0.0, 0.5, 1.0, 2.0, 4.0, math.inf]  # distance to the nearest interior tile edge, in overlaps
    labels = [f"{lo:g}-{hi:g}" if hi < math.inf else f">={lo:g}" for lo, hi in zip(bins, bins[1:])]
    print(f"   share of detections with a same-class detection of the other run at IoU > 0.9, by the distance of "
          f"their centre to the nearest interior tile edge, in overlaps ({overlap:g} original px):")
    print("   " + " " * 26 + "".join(f"{label:>16s}" for label in labels) + f"{'100 best':>16s}")
    whole_up_to = overlap - 2 * BORDER_TOLERANCE / scale
    for name, other in (("untiled", "tiled"), ("tiled", "untiled")):
        found = outputs[name]
        boxes = found.pred_boxes.tensor
        matched = best_iou_same_class(found, outputs[other]) > 0.9
        distance = edge_distance(boxes, tiles, size) / overlap
        small = torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) <= whole_up_to
        best = torch.arange(len(found)) < 100  # sorted by score
        for group, in_group in (("small", small), ("large", ~small)):
            masks = [in_group & (distance >= lo) & (distance < hi) for lo, hi in zip(bins, bins[1:])]
            masks.append(in_group & best)
            cells = []
            for mask in masks:
                n, hits = int(mask.sum()), int((matched & mask).sum())
                cells.append(f"{hits}/{n} {100 * hits / n:3.0f}%" if n else "-")
            print(f"   {name + ' ' + group:26s}" + "".join(f"{c:>16s}" for c in cells))
    print(f"   small: both sides <= {whole_up_to:g} original px (the overlap less 2 x {BORDER_TOLERANCE:g} scaled px: "
          "what tiling keeps whole); large: the rest, dropped where a tile edge cuts them")
    print(f"   weights: {args.weights or 'random (seed 0): see the docstring on what this comparison can say'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=8000, help="side of the part-1 image, px (default 8000)")
    parser.add_argument("--scale", type=float, default=0.5, help="part-1 test scale factor (default 0.5)")
    parser.add_argument("--tile-size", type=int, default=1024, help="SNIPER.TEST.TILE_SIZE, scaled px (default 1024)")
    parser.add_argument("--overlap", type=int, default=128, help="SNIPER.TEST.TILE_OVERLAP, scaled px (default 128)")
    parser.add_argument("--untiled-max-mpx", type=float, default=20.0,
                        help="part 1 runs untiled only up to this many scaled Mpx (default 20)")
    parser.add_argument("--compare-size", type=int, default=2000, help="side of the part-2 image, px (default 2000)")
    parser.add_argument("--compare-scale", type=float, default=1.0, help="part-2 test scale factor (default 1.0)")
    parser.add_argument("--config-file", default=DEFAULT_CONFIG, help="model config (default: the CPU demo's)")
    parser.add_argument("--weights", default="", help="trained weights (default: random, seed 0)")
    parser.add_argument("--parts", default="1,2", help="which parts to run (default 1,2)")
    parser.add_argument("--child", choices=("tiled", "untiled"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(run_child(args)))
        return
    parts = set(args.parts.split(","))
    if "1" in parts:
        part_memory(args)
    if "2" in parts:
        part_same_detections(args)


if __name__ == "__main__":
    main()
