#!/usr/bin/env python
"""AutoFocus against the full SNIPER pyramid and single-scale: AP, pixels and CPU time per image.

Trains, at the same budget of training CPU seconds (bench_accuracy.py's children: one thread, a
pilot run to calibrate the iterations, negative mining counted):

  single     Detectron2 single-scale training and test (the baseline beside every SNIPER figure)
  autofocus  SNIPER with the FocusPixel branch (SniperAutoFocusRCNN, --autofocus-config)

then tests, one CPU thread, on the held-out test dataset (--test):

  single-scale  the baseline model at its own test size (Detectron2's single-scale test)
  (a) each test scale alone (whole image, no range filter): the AutoFocus model deployed single-scale
  (b) the full SNIPER pyramid: every scale on the whole image, valid ranges, soft-NMS
  (c) AutoFocus: the coarsest scale whole, finer scales only on FocusChips (SNIPER.TEST.AUTOFOCUS),
      once per --settings entry (FocusPixel thresholds, finest first)
  (d) AutoFocus on ground-truth FocusPixel maps (held-out test only): the maps a perfect branch would
      give, with the config's dilation and least chip sizes: what the cascade and its chip rules cost
      and find when the branch makes no error, the ceiling of (c)

(a)-(d) run image by image in turn (the order rotating per image), so that their CPU times share
the machine's conditions. First (b) and (c) run on the tuning dataset (--tune): the setting chosen
there (the least CPU time among those meeting the goal) is the one whose verdict on --test counts;
the test figures of the others are printed beside it. Per test: COCO AP/AP50/APs/APm/APl, scaled px
processed per image, CPU s per image, the pixels and time against (b), and for AutoFocus the
recall of FocusChips: per pruned scale, the share of the test boxes that only that scale or a
finer one can find (their size is below every coarser scale's valid range) lying whole inside one
of its FocusChips, and the same for COCO-small boxes (< 32 px) at the finest scale. Goal (issue
20): AutoFocus AP within 0.5 of (b), APs within 1.0, at <= 0.5x its pixels and time.

    python benchmarks/bench_autofocus.py                          # built-in dataset, 600 CPU s per model
    python benchmarks/bench_autofocus.py --weights output/bench_autofocus/autofocus_seed0/model_final.pth \
        --single-weights output/bench_autofocus/single_seed0/model_final.pth \
        --settings 0.2,0.1 0.1,0.05 0.05,0.02                     # test trained models only
    python benchmarks/bench_autofocus.py --train NAME --tune NAME --test NAME --register-coco NAME JSON ROOT ...

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
    p.add_argument("--tune", default="sniper_shapes_val",
                   help="dataset the AutoFocus setting is chosen on ('' to skip: a verdict per setting on --test)")
    p.add_argument("--test", default="sniper_shapes_test", help="held-out dataset of the reported figures")
    p.add_argument("--register-coco", nargs=3, action="append", default=[], metavar=("NAME", "JSON", "IMAGE_ROOT"))
    p.add_argument("--budget", type=float, default=600.0, help="training CPU seconds per model (mining included)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", default=None, help="test this AutoFocus model (no training)")
    p.add_argument("--single-weights", default=None,
                   help="with --weights: the single-scale baseline to test beside it (trained by this script "
                        "with the same budget; without it, no single-scale row)")
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


def _run_tests(tests, dataset_name):
    """Test ``(label, cfg, wrapper)`` tuples (a ``SniperMultiScaleInference`` built from ``cfg``) on
    one dataset, image by image in turn (the order rotating per image) so that their CPU times share
    the machine's conditions; per test its metrics, px and CPU s per image, and each image's
    FocusChips (original px)."""
    import torch
    from detectron2.evaluation import COCOEvaluator

    from sniper_d2 import SniperTrainer

    loader = SniperTrainer.build_test_loader(tests[0][1], dataset_name)  # loads the dataset: its json for COCOEvaluator
    wrappers = [wrapper.eval() for _, _, wrapper in tests]
    for wrapper in wrappers:  # a wrapper may have run on another dataset before
        wrapper.reset_pixel_counts()
    evaluators = [COCOEvaluator(dataset_name, output_dir=None) for _ in tests]
    for evaluator in evaluators:
        evaluator.reset()
    cpu = [0.0] * len(tests)
    chips = [{} for _ in tests]
    with torch.no_grad():
        for image_index, batched_inputs in enumerate(loader):
            for k in (i % len(tests) for i in range(image_index, image_index + len(tests))):
                start = time.process_time()
                outputs = wrappers[k](batched_inputs)
                cpu[k] += time.process_time() - start
                evaluators[k].process(batched_inputs, outputs)
                for inputs, image_chips in zip(batched_inputs, wrappers[k].last_focus_chips):
                    chips[k][inputs["image_id"]] = image_chips
    rows = []
    for (label, cfg, _), wrapper, evaluator, seconds, test_chips in zip(tests, wrappers, evaluators, cpu, chips):
        counts = wrapper.pixel_counts
        images = max(counts.images, 1)
        box_metrics = evaluator.evaluate()["bbox"]  # once: COCOEvaluator maps its predictions' ids in place
        rows.append({
            "label": label,
            "metrics": {k: float(box_metrics[k]) for k in METRICS},
            "px_per_image": sum(counts.processed) / images,
            "full_px_per_image": sum(counts.full_pyramid) / images,
            "cpu_per_image": seconds / images,
            "chips": test_chips,
            "scales": [str(s) for s in cfg.SNIPER.TEST.SCALES],
            # valid ranges in original px (per image when SNIPER.RANGE_REFERENCE: not reported then)
            "ranges": [(r.lo, r.hi) for r in wrapper.valid_ranges] if wrapper.range_reference is None else None,
        })
    print(f"  tested on {dataset_name}: " + "; ".join(label for label, _, _ in tests), flush=True)
    return rows


def _single_test(cfg, model, dataset_name, iterations):
    """The single-scale baseline's row: Detectron2's single-scale test at its INPUT.MIN_SIZE_TEST /
    MAX_SIZE_TEST, one CPU thread; px per image of its resized inputs."""
    import torch
    from detectron2.evaluation import COCOEvaluator

    from sniper_d2 import SniperTrainer

    loader = SniperTrainer.build_test_loader(cfg, dataset_name)
    evaluator = COCOEvaluator(dataset_name, output_dir=None)
    evaluator.reset()
    cpu, px, images = 0.0, 0, 0
    with torch.no_grad():
        for batched_inputs in loader:
            start = time.process_time()
            outputs = model(batched_inputs)
            cpu += time.process_time() - start
            evaluator.process(batched_inputs, outputs)
            px += sum(x["image"].shape[-2] * x["image"].shape[-1] for x in batched_inputs)
            images += len(batched_inputs)
    size = (cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)
    box_metrics = evaluator.evaluate()["bbox"]
    return {
        "label": f"single-scale training + test {size}" + (f" ({iterations} it)" if iterations else ""),
        "metrics": {k: float(box_metrics[k]) for k in METRICS},
        "px_per_image": px / max(images, 1),
        "cpu_per_image": cpu / max(images, 1),
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


def goal_met(row, pyramid):
    """Issue 20's goal for one AutoFocus row against the pyramid's (same dataset and run)."""
    return (row["metrics"]["AP"] - pyramid["metrics"]["AP"] >= -0.5
            and row["metrics"]["APs"] - pyramid["metrics"]["APs"] >= -1.0
            and row["px_per_image"] <= 0.5 * pyramid["px_per_image"]
            and row["cpu_per_image"] <= 0.5 * pyramid["cpu_per_image"])


def choose(autofocus_rows, pyramid):
    """Index of the AutoFocus row meeting the goal at the least CPU time (None if none does)."""
    met = [i for i, r in enumerate(autofocus_rows) if goal_met(r, pyramid)]
    return min(met, key=lambda i: autofocus_rows[i]["cpu_per_image"]) if met else None


def verdict(autofocus_rows, pyramid):
    lines = []
    for r in autofocus_rows:
        d_ap = r["metrics"]["AP"] - pyramid["metrics"]["AP"]
        d_aps = r["metrics"]["APs"] - pyramid["metrics"]["APs"]
        px = r["px_per_image"] / pyramid["px_per_image"]
        cpu = r["cpu_per_image"] / pyramid["cpu_per_image"]
        lines.append(
            f"{r['label']}: AP {d_ap:+.1f}, APs {d_aps:+.1f} vs the full pyramid at x{px:.2f} its pixels and x{cpu:.2f} "
            f"its CPU time: goal {'met' if goal_met(r, pyramid) else 'NOT met'} (AP >= -0.5, APs >= -1.0, "
            "<= x0.50 pixels and time)."
        )
        for name, (count, recall) in r.get("recall", {}).items():
            share = f"{recall:.1%} of {count} boxes lie" if count else "no test box lies in its range, none"
            lines.append(f"  FocusChip recall, {name}: {share} whole inside a FocusChip.")
    return lines


def _ground_truth_wrapper(cfg, model, dataset_dicts):
    """AutoFocus as ``cfg`` runs it, but every FocusPixel map replaced by the one a perfect branch
    would give (:meth:`~sniper_d2.inference.autofocus.FocusMap.ground_truth` of the test image's
    boxes, the label sizes of ``cfg.SNIPER.AUTOFOCUS``): the chip rules' and the cascade's own cost
    and accuracy, without the branch's errors."""
    import numpy as np
    from detectron2.structures import BoxMode

    from sniper_d2.inference import SniperMultiScaleInference

    truth = {}
    for d in dataset_dicts:
        annotations = d.get("annotations", [])
        boxes = np.array([BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in annotations],
                         dtype=np.float32).reshape(-1, 4)
        truth[d["image_id"]] = (boxes, np.array([bool(a.get("iscrowd", 0)) for a in annotations], dtype=bool))
    focus = cfg.SNIPER.AUTOFOCUS
    label_sizes = (focus.DC_LOW, focus.SMALL_THRESH, focus.DC_HIGH)

    class GroundTruthFocus(SniperMultiScaleInference):
        def _focus_chips(self, batched_inputs, scale_index, focus_maps):
            perfect = [m.ground_truth(*truth[x["image_id"]], label_sizes) for m, x in zip(focus_maps, batched_inputs)]
            return super()._focus_chips(batched_inputs, scale_index, perfect)

    return GroundTruthFocus(cfg, model)


def _autofocus_tests(cfg, model, settings):
    """(label, cfg, wrapper) of the full pyramid and of AutoFocus at each setting (thresholds of the pruned scales)."""
    from sniper_d2.inference import SniperMultiScaleInference

    pruned = [k for k, p in enumerate(cfg.SNIPER.TEST.AUTOFOCUS.PRUNE) if p]
    c = cfg.clone()
    c.SNIPER.TEST.AUTOFOCUS.ENABLED = False
    tests = [("(b) full SNIPER pyramid", c, SniperMultiScaleInference(c, model))]
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
        tests.append((f"(c) AutoFocus, thresholds {tuple(values)}", c, SniperMultiScaleInference(c, model)))
    return tests, pruned


def _scale_tests(cfg, model):
    """(label, cfg, wrapper) of each test scale alone: whole image, no range filter."""
    from sniper_d2.inference import SniperMultiScaleInference

    tests = []
    for scale in cfg.SNIPER.TEST.SCALES:
        c = cfg.clone()
        c.SNIPER.TEST.SCALES, c.SNIPER.TEST.VALID_RANGES = (scale,), ((-1, -1),)
        c.SNIPER.TEST.AUTOFOCUS.ENABLED = False
        c.SNIPER.TEST.AUTOFOCUS.PRUNE, c.SNIPER.TEST.AUTOFOCUS.THRESHOLDS = (False,), (0.0,)
        c.SNIPER.TEST.AUTOFOCUS.DILATIONS, c.SNIPER.TEST.AUTOFOCUS.MIN_CHIP_SIZES = (1,), (1,)
        tests.append((f"(a) AutoFocus model at scale {scale} alone", c, SniperMultiScaleInference(c, model)))
    return tests


def _load(cfg, weights):
    from detectron2.checkpoint import DetectionCheckpointer

    from sniper_d2 import SniperTrainer

    cfg.MODEL.WEIGHTS = weights
    model = SniperTrainer.build_model(cfg)
    DetectionCheckpointer(model).load(weights)
    return model.eval()


def main(argv=None):
    args = parse_args(argv)
    import torch
    from detectron2.data import DatasetCatalog
    from detectron2.utils.logger import setup_logger

    import sniper_d2  # noqa: F401  (registers components and built-in datasets)
    from sniper_d2.data import register_coco_datasets

    setup_logger(name="sniper_d2")
    torch.set_num_threads(1)
    register_coco_datasets(args.register_coco)
    for name in (args.train, args.test) + ((args.tune,) if args.tune else ()):
        if name not in DatasetCatalog.list():
            raise SystemExit(f"Dataset '{name}' is not registered: use a built-in name or --register-coco NAME JSON ROOT.")
    if args.single_weights and not args.weights:
        raise SystemExit("--single-weights is the baseline beside --weights: give both, or neither to train both.")
    dataset_dicts = DatasetCatalog.get(args.test)
    DatasetCatalog.get(args.train)  # generates a built-in dataset once, before the children start
    os.makedirs(args.output, exist_ok=True)
    bench = _bench_accuracy()
    accuracy_args = _accuracy_args(args, bench)
    trained = single = None
    weights, single_weights = args.weights, args.single_weights
    if weights is None:
        single, trained = _train_both(args, bench, accuracy_args)
        weights = os.path.join(args.output, f"autofocus_seed{args.seed}", "model_final.pth")
        single_weights = os.path.join(args.output, f"single_seed{args.seed}", "model_final.pth")
    cfg = bench._variant_cfg(accuracy_args, "autofocus", args.seed, args.output)
    model = _load(cfg, weights)
    settings = args.settings or [",".join(
        str(t) for t, p in zip(cfg.SNIPER.TEST.AUTOFOCUS.THRESHOLDS, cfg.SNIPER.TEST.AUTOFOCUS.PRUNE) if p)]
    autofocus_tests, pruned = _autofocus_tests(cfg, model, settings)

    text = ""
    chosen = None
    if args.tune:
        tune_rows = _run_tests(autofocus_tests, args.tune)
        chosen = choose(tune_rows[1:], tune_rows[0])
        text += (f"Tuning on {args.tune}: " + (f"chosen {tune_rows[1 + chosen]['label']} (goal met at the least CPU time)"
                 if chosen is not None else "no setting meets the goal") + "\n\n"
                 + markdown(tune_rows, tune_rows[0]) + "\n\n" + "\n".join(verdict(tune_rows[1:], tune_rows[0]))
                 + f"\n\nHeld-out test on {args.test}:\n\n")
    rows = []
    if single_weights:
        single_cfg = bench._variant_cfg(accuracy_args, "single", args.seed, args.output)
        rows.append(_single_test(single_cfg, _load(single_cfg, single_weights), args.test,
                                 single["iterations"] if single else None))
    perfect_cfg = cfg.clone()
    perfect_cfg.SNIPER.TEST.AUTOFOCUS.ENABLED = True
    perfect_cfg.SNIPER.TEST.AUTOFOCUS.THRESHOLDS = tuple(  # a perfect map's cells are 0 or 1
        0.5 if p else t for t, p in zip(cfg.SNIPER.TEST.AUTOFOCUS.THRESHOLDS, cfg.SNIPER.TEST.AUTOFOCUS.PRUNE))
    autofocus_tests.append(("(d) AutoFocus on ground-truth FocusPixel maps (a perfect branch)", perfect_cfg,
                            _ground_truth_wrapper(perfect_cfg, model, dataset_dicts)))
    rows += _run_tests(_scale_tests(cfg, model) + autofocus_tests, args.test)
    pyramid_index = len(rows) - len(autofocus_tests)
    pyramid, autofocus_rows = rows[pyramid_index], rows[pyramid_index + 1:]
    for row in autofocus_rows:
        row["recall"] = _chip_recall(row, dataset_dicts, pruned)
    if chosen is not None:
        autofocus_rows[chosen]["label"] += f" (chosen on {args.tune})"
    text += markdown(rows, pyramid) + "\n\n" + "\n".join(verdict(autofocus_rows, pyramid)) + "\n"
    head = (f"Train {args.train}, test {args.test}; AutoFocus model: {weights}"
            + (f" ({trained['iterations']} it, {trained['train_cpu_s'] + trained['mining_cpu_s']:.0f} training CPU s; "
               f"single-scale {single['iterations']} it, {single['train_cpu_s']:.0f} CPU s)" if trained else "")
            + (f"; single-scale model: {single_weights}" if single_weights else "")
            + "; tests on one CPU thread")
    print("\n" + head + "\n\n" + text)
    with open(os.path.join(args.output, "autofocus.md"), "w") as f:
        f.write(head + "\n\n" + text)
    with open(os.path.join(args.output, "autofocus.json"), "w") as f:
        json.dump([{k: v for k, v in r.items() if k != "chips"} for r in rows], f, indent=1)
    print(f"Written: {args.output}/autofocus.md, autofocus.json")


if __name__ == "__main__":
    main()
