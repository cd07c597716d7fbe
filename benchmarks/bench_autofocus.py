#!/usr/bin/env python
"""AutoFocus against the full SNIPER pyramid and single-scale: AP, pixels and CPU time per image.

Trains, at the same budget of training CPU seconds (bench_accuracy.py's children: one thread, a
pilot run to calibrate the iterations, negative mining counted):

  single     Detectron2 single-scale training and test (the baseline beside every SNIPER figure)
  autofocus  SNIPER with the FocusPixel branch (SniperAutoFocusRCNN, --autofocus-config)

then tests the AutoFocus model, one CPU thread, on the test dataset:

  (a) each test scale alone (whole image, no range filter): the model deployed single-scale
  (b) the full SNIPER pyramid: every scale on the whole image, valid ranges, soft-NMS
  (c) AutoFocus: the coarsest scale whole, finer scales only on FocusChips (SNIPER.TEST.AUTOFOCUS),
      once per --settings entry (FocusPixel thresholds, finest first)

and prints, per test: COCO AP/AP50/APs/APm/APl, scaled px processed per image, CPU s per image,
the pixels and time against (b), and for AutoFocus the recall of FocusChips: per pruned scale, the
share of the test boxes that only that scale or a finer one can find (their size is below every
coarser scale's valid range) lying whole inside one of its FocusChips, and the same for COCO-small
boxes (< 32 px) at the finest scale. Goal (issue 20): AutoFocus AP within 0.5 of (b), APs within 1.0,
at <= 0.5x its pixels and time.

    python benchmarks/bench_autofocus.py                          # built-in dataset, 600 CPU s per model
    python benchmarks/bench_autofocus.py --weights output/bench_autofocus/autofocus_seed0/model_final.pth \\
        --settings 0.2,0.1 0.1,0.05 0.05,0.02                     # test a trained model only
    python benchmarks/bench_autofocus.py --train NAME --test NAME --register-coco NAME JSON ROOT ...

Outputs under --output: autofocus.md (the table) and autofocus.json. A script that prints figures,
not a test.
"""
import argparse
import importlib.util
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRICS = ("AP", "AP50", "APs", "APm", "APl")


def _bench_accuracy():
    spec = importlib.util.spec_from_file_location("bench_accuracy", os.path.join(ROOT, "benchmarks", "bench_accuracy.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-file", default=os.path.join(ROOT, "configs/demo/sniper_shapes_R18_FPN.yaml"))
    p.add_argument("--autofocus-config", default=os.path.join(ROOT, "configs/demo/sniper_autofocus_shapes_R18_FPN.yaml"),
                   help="merged over --config-file for the AutoFocus model")
    p.add_argument("--train", default="sniper_shapes_train")
    p.add_argument("--test", default="sniper_shapes_val")
    p.add_argument("--register-coco", nargs=3, action="append", default=[], metavar=("NAME", "JSON", "IMAGE_ROOT"))
    p.add_argument("--budget", type=float, default=600.0, help="training CPU seconds per model (mining included)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", default=None,
                   help="test this AutoFocus model only (no training, no single-scale baseline row)")
    p.add_argument("--settings", nargs="+", default=None, metavar="T_FINEST,T_NEXT,...",
                   help="AutoFocus tests to run, each the FocusPixel thresholds of the pruned scales (finest "
                        "first, comma-separated); default: the config's SNIPER.TEST.AUTOFOCUS.THRESHOLDS")
    p.add_argument("--output", default=os.path.join(ROOT, "output/bench_autofocus"))
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides (training and test)")
    return p.parse_args(argv)


def _accuracy_args(args, bench):
    argv = ["--config-file", args.config_file, "--autofocus-config", args.autofocus_config,
            "--train", args.train, "--test", args.test, "--budget", str(args.budget), "--tests", "main",
            "--output", args.output]
    for triple in args.register_coco:
        argv += ["--register-coco", *triple]
    return bench.parse_args(argv + list(args.opts))


def _train_both(args, bench, accuracy_args):
    """Train the single-scale baseline and the AutoFocus model at once; their result.json dicts."""
    print(f"bench_autofocus: training single-scale and SNIPER + AutoFocus, {args.budget:.0f} CPU s each "
          f"(train {args.train}, test {args.test})", flush=True)
    with ThreadPoolExecutor(2) as pool:
        single, autofocus = pool.map(lambda v: bench._run_one(accuracy_args, v, args.seed), ("single", "autofocus"))
    return single, autofocus


class _Recorder:
    """Runs the multi-scale wrapper image by image and keeps each image's FocusChips (original px)."""

    def __init__(self, wrapper):
        self.wrapper, self.chips = wrapper, {}

    def __call__(self, batched_inputs):
        outputs = self.wrapper(batched_inputs)
        for inputs, chips in zip(batched_inputs, self.wrapper.last_focus_chips):
            self.chips[inputs["image_id"]] = chips
        return outputs


def _as_module(recorder):
    """``inference_on_dataset`` wants an nn.Module (it toggles eval mode)."""
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = recorder.wrapper

        def forward(self, batched_inputs):
            return recorder(batched_inputs)

    return Wrapped()


def _test(cfg, model, test_name, label):
    """One test of the AutoFocus model: metrics, px and CPU s per image, FocusChips per image."""
    from detectron2.evaluation import COCOEvaluator, inference_on_dataset

    from sniper_d2 import SniperTrainer
    from sniper_d2.inference import SniperMultiScaleInference

    wrapper = SniperMultiScaleInference(cfg, model)
    wrapper.eval()
    recorder = _Recorder(wrapper)
    loader = SniperTrainer.build_test_loader(cfg, test_name)
    evaluator = COCOEvaluator(test_name, output_dir=None)
    start = time.process_time()
    results = inference_on_dataset(_as_module(recorder), loader, evaluator)
    cpu = time.process_time() - start
    counts = wrapper.pixel_counts
    images = max(counts.images, 1)
    print(f"  tested: {label}", flush=True)
    return {
        "label": label,
        "metrics": {k: float(results["bbox"][k]) for k in METRICS},
        "px_per_image": sum(counts.processed) / images,
        "full_px_per_image": sum(counts.full_pyramid) / images,
        "cpu_per_image": cpu / images,
        "chips": recorder.chips,
        "scales": [str(s) for s in cfg.SNIPER.TEST.SCALES],
        # valid ranges in original px (per image when SNIPER.RANGE_REFERENCE: not reported then)
        "ranges": [(r.lo, r.hi) for r in wrapper.valid_ranges] if wrapper.range_reference is None else None,
    }


def _chip_recall(test, dataset_dicts, pruned):
    """Per pruned scale index: (boxes that only it or a finer scale can find, share inside its FocusChips);
    plus COCO-small boxes inside the finest scale's chips. Boxes in original px."""
    import numpy as np

    ranges = test["ranges"]
    if ranges is None:
        return {}
    out = {}
    finest = min(pruned) if pruned else None
    for k in sorted(pruned):
        coarser_lo = min(lo for lo, _ in ranges[k + 1:])  # smaller boxes are below every coarser range
        needed, inside = 0, 0
        small_needed, small_inside = 0, 0
        for d in dataset_dicts:
            chips = test["chips"].get(d["image_id"])
            chips = np.zeros((0, 4)) if chips is None or chips[k] is None else np.asarray(chips[k], dtype=float)
            for a in d.get("annotations", []):
                if a.get("iscrowd", 0):
                    continue
                x, y, w, h = a["bbox"]
                size = math.sqrt(w * h)
                within = bool(len(chips)) and bool(np.any(
                    (chips[:, 0] <= x) & (chips[:, 1] <= y) & (chips[:, 2] >= x + w) & (chips[:, 3] >= y + h)))
                if size <= coarser_lo and ranges[k][0] < size:
                    needed += 1
                    inside += within
                if k == finest and size < 32:
                    small_needed += 1
                    small_inside += within
        out[f"scale {test['scales'][k]}"] = (needed, inside / needed if needed else math.nan)
        if k == finest:
            out["COCO-small at the finest scale"] = (small_needed, small_inside / small_needed if small_needed else math.nan)
    return out


def _single_row(single, dataset_dicts):
    """The single-scale baseline's row from its bench_accuracy result (its own test, one thread)."""
    from sniper_d2.chips.scales import parse_scale, scaled_size

    scale = parse_scale(tuple(single["single_size"]))
    px = [math.prod(scaled_size(d["width"], d["height"], scale.factor(d["width"], d["height"]))) for d in dataset_dicts]
    return {
        "label": f"single-scale training + test {tuple(single['single_size'])} ({single['iterations']} it)",
        "metrics": single["tests"]["config"]["metrics"],
        "px_per_image": sum(px) / len(px),
        "cpu_per_image": single["tests"]["config"]["cpu_s"] / len(px),
    }


def markdown(rows, pyramid):
    lines = ["| test | " + " | ".join(METRICS) + " | px / image | x pyramid px | CPU s / image | x pyramid time |",
             "|---|" + "---|" * (len(METRICS) + 4)]
    for r in rows:
        lines.append(
            f"| {r['label']} | " + " | ".join(f"{r['metrics'][m]:.1f}" for m in METRICS)
            + f" | {r['px_per_image'] / 1e3:.0f}k | {r['px_per_image'] / pyramid['px_per_image']:.2f} "
            + f"| {r['cpu_per_image']:.2f} | {r['cpu_per_image'] / pyramid['cpu_per_image']:.2f} |"
        )
    return "\n".join(lines)


def verdict(autofocus_rows, pyramid):
    lines = []
    for r in autofocus_rows:
        d_ap = r["metrics"]["AP"] - pyramid["metrics"]["AP"]
        d_aps = r["metrics"]["APs"] - pyramid["metrics"]["APs"]
        px = r["px_per_image"] / pyramid["px_per_image"]
        cpu = r["cpu_per_image"] / pyramid["cpu_per_image"]
        met = d_ap >= -0.5 and d_aps >= -1.0 and px <= 0.5 and cpu <= 0.5
        lines.append(
            f"{r['label']}: AP {d_ap:+.1f}, APs {d_aps:+.1f} vs the full pyramid at x{px:.2f} its pixels and x{cpu:.2f} "
            f"its CPU time: goal {'met' if met else 'NOT met'} (AP >= -0.5, APs >= -1.0, <= x0.50 pixels and time)."
        )
        for name, (count, recall) in r.get("recall", {}).items():
            share = f"{recall:.1%} of {count} boxes lie" if count else "no test box lies in its range, none"
            lines.append(f"  FocusChip recall, {name}: {share} whole inside a FocusChip.")
    return lines


def main(argv=None):
    args = parse_args(argv)
    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.data import DatasetCatalog
    from detectron2.utils.logger import setup_logger

    import sniper_d2  # noqa: F401  (registers components and built-in datasets)
    from sniper_d2 import SniperTrainer
    from sniper_d2.data import register_coco_datasets

    setup_logger(name="sniper_d2")
    torch.set_num_threads(1)
    register_coco_datasets(args.register_coco)
    for name in (args.train, args.test):
        if name not in DatasetCatalog.list():
            raise SystemExit(f"Dataset '{name}' is not registered: use a built-in name or --register-coco NAME JSON ROOT.")
    dataset_dicts = DatasetCatalog.get(args.test)
    DatasetCatalog.get(args.train)  # generates a built-in dataset once, before the children start
    os.makedirs(args.output, exist_ok=True)
    bench = _bench_accuracy()
    accuracy_args = _accuracy_args(args, bench)
    single = None
    weights = args.weights
    if weights is None:
        single, trained = _train_both(args, bench, accuracy_args)
        weights = os.path.join(args.output, f"autofocus_seed{args.seed}", "model_final.pth")
    cfg = bench._variant_cfg(accuracy_args, "autofocus", args.seed, args.output)
    cfg.MODEL.WEIGHTS = weights
    model = SniperTrainer.build_model(cfg)
    DetectionCheckpointer(model).load(weights)
    model.eval()

    rows = []
    for i, scale in enumerate(cfg.SNIPER.TEST.SCALES):
        c = cfg.clone()
        c.SNIPER.TEST.SCALES, c.SNIPER.TEST.VALID_RANGES = (scale,), ((-1, -1),)
        c.SNIPER.TEST.AUTOFOCUS.ENABLED = False
        c.SNIPER.TEST.AUTOFOCUS.PRUNE, c.SNIPER.TEST.AUTOFOCUS.THRESHOLDS = (False,), (0.0,)
        c.SNIPER.TEST.AUTOFOCUS.DILATIONS, c.SNIPER.TEST.AUTOFOCUS.MIN_CHIP_SIZES = (1,), (1,)
        rows.append(_test(c, model, args.test, f"(a) AutoFocus model at scale {scale} alone"))
    c = cfg.clone()
    c.SNIPER.TEST.AUTOFOCUS.ENABLED = False
    pyramid = _test(c, model, args.test, "(b) full SNIPER pyramid")
    rows.append(pyramid)
    pruned = [k for k, p in enumerate(cfg.SNIPER.TEST.AUTOFOCUS.PRUNE) if p]
    settings = args.settings or [",".join(str(cfg.SNIPER.TEST.AUTOFOCUS.THRESHOLDS[k]) for k in pruned)]
    autofocus_rows = []
    for setting in settings:
        values = [float(v) for v in setting.split(",")]
        if len(values) != len(pruned):
            raise SystemExit(f"--settings {setting}: give {len(pruned)} thresholds (one per pruned scale, finest first).")
        thresholds = list(cfg.SNIPER.TEST.AUTOFOCUS.THRESHOLDS)
        for k, v in zip(pruned, values):
            thresholds[k] = v
        c = cfg.clone()
        c.SNIPER.TEST.AUTOFOCUS.ENABLED = True
        c.SNIPER.TEST.AUTOFOCUS.THRESHOLDS = tuple(thresholds)
        row = _test(c, model, args.test, f"(c) AutoFocus, thresholds {tuple(values)}")
        row["recall"] = _chip_recall(row, dataset_dicts, pruned)
        autofocus_rows.append(row)
    rows += autofocus_rows
    if single is not None:
        rows.insert(0, _single_row(single, dataset_dicts))

    text = markdown(rows, pyramid) + "\n\n" + "\n".join(verdict(autofocus_rows, pyramid)) + "\n"
    head = (f"Train {args.train}, test {args.test}; AutoFocus model: {weights}"
            + (f" ({trained['iterations']} it, {trained['train_cpu_s'] + trained['mining_cpu_s']:.0f} training CPU s; "
               f"single-scale {single['iterations']} it, {single['train_cpu_s']:.0f} CPU s)" if single else "")
            + "; tests on one CPU thread")
    print("\n" + head + "\n\n" + text)
    with open(os.path.join(args.output, "autofocus.md"), "w") as f:
        f.write(head + "\n\n" + text)
    with open(os.path.join(args.output, "autofocus.json"), "w") as f:
        json.dump([{k: v for k, v in r.items() if k != "chips"} for r in rows], f, indent=1)
    print(f"Written: {args.output}/autofocus.md, autofocus.json")


if __name__ == "__main__":
    main()
