#!/usr/bin/env python
"""Accuracy of SNIPER against single-scale baselines at the same training budget, with ablations.

Every variant trains the same model (the config's) on the same dataset for the same budget of
training CPU seconds (negative mining included), in its own subprocess with one CPU thread, then is
evaluated with COCOEvaluator on the test dataset:

  single          Detectron2 single-scale: every image resized to --single-size (short, max long)
  multisize       Detectron2 multi-size training (short side drawn from --multisize-factors x the
                  single size) and its test-time augmentation (TEST.AUG: same sizes, flip)
  sniper          SNIPER as `train_net.py --mine-negatives` runs it (mining stages 1-2, then chips
                  with negatives); multi-scale test with valid ranges and soft-NMS
  sniper_noneg    ablation: positive chips only (no mining, no negative chips)
  sniper_allvalid ablation: no ignore (SNIPER.TRAIN.IGNORE_INVALID False)
  suggested       SNIPER with the scales and ranges `tools/analyze_dataset.py --suggest` proposes
                  for the training set (mining included)
  autofocus       SNIPER (mining included) with AutoFocus's FocusPixel branch (--autofocus-config
                  merged over the config; SniperAutoFocusRCNN) and its coarse-to-fine test;
                  benchmarks/bench_autofocus.py compares its tests

Test-time ablations of a SNIPER model (no extra training): each test scale alone, whole image, no
range filter (``@scale i``: which scale finds what, and the best single-scale test); the
hard-NMS merge (``@nms merge``). The multisize model is also tested single-scale.

The budget is met by calibration: a short pilot run measures the CPU seconds per iteration, and
the real run gets the iterations that fit (what is left after mining, for the SNIPER variants);
the LR drops x0.1 at 80 % of them. The table shows the training CPU seconds actually spent
(mining included, pilot and evaluation not), model Mpx seen (unpadded input pixels over
training) and the iterations. With ``--seeds N`` every variant trains N times (SEED 0..N-1) and
the table gives mean and spread (min-max / 2).

    python benchmarks/bench_accuracy.py                               # built-in dataset, all variants
    python benchmarks/bench_accuracy.py --train sniper_shapes_rescaled_train \\
        --test sniper_shapes_rescaled_val --single-size 384 640
    python benchmarks/bench_accuracy.py --variants single,sniper --budget 360 --tests main   # `make demo`
    python benchmarks/bench_accuracy.py --collect --output DIR    # the table of the runs in DIR
    python benchmarks/bench_accuracy.py --mask --variants sniper --budget 600 --tests main   # Mask R-CNN

``--mask``: Mask R-CNN (default config configs/demo/sniper_mask_shapes_R18_FPN.yaml, MODEL.MASK_ON);
every test also reports COCO segm AP (the ``segm AP`` columns) beside box AP.

Outputs under --output: results.json (every run), accuracy.md (the table), accuracy.png (bar
chart of AP and APs). A script that prints figures, not a test.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = ("single", "multisize", "sniper", "sniper_noneg", "sniper_allvalid", "suggested", "autofocus")
SNIPER_VARIANTS = ("sniper", "sniper_noneg", "sniper_allvalid", "suggested", "autofocus")
MINED_VARIANTS = ("sniper", "sniper_allvalid", "suggested", "autofocus")  # trained as --mine-negatives does
METRICS = ("AP", "AP50", "APs", "APm", "APl")
SEGM_METRICS = ("AP", "APs")  # the segm columns of the table (--mask)
PILOT_ITERS = 8  # pilot iterations; the first 2 (allocations, first epoch's chips) are not timed
LR_STEP_AT = 0.8  # fraction of the iterations after which the LR drops x0.1


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-file", default=None,
                   help="default: configs/demo/sniper_shapes_R18_FPN.yaml (--mask: sniper_mask_shapes_R18_FPN.yaml)")
    p.add_argument("--mask", action="store_true",
                   help="Mask R-CNN (MODEL.MASK_ON): report segm AP beside box AP")
    p.add_argument("--autofocus-config", default=os.path.join(ROOT, "configs/demo/sniper_autofocus_shapes_R18_FPN.yaml"),
                   help="autofocus variant: merged over --config-file (before the KEY VALUE overrides)")
    p.add_argument("--train", default="sniper_shapes_train", help="registered training dataset")
    p.add_argument("--test", default="sniper_shapes_val", help="registered test dataset")
    p.add_argument("--register-coco", nargs=3, action="append", default=[], metavar=("NAME", "JSON", "IMAGE_ROOT"),
                   help="register a COCO-format dataset first (repeatable)")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {', '.join(VARIANTS)}")
    p.add_argument("--budget", type=float, default=600.0, help="training CPU seconds per variant (mining included)")
    p.add_argument("--seeds", type=int, default=1, help="train every variant with SEED 0..N-1")
    p.add_argument("--single-size", type=int, nargs=2, default=None, metavar=("SHORT", "MAX_LONG"),
                   help="single-scale resolution; default: 1.25 x the training images' median short side, "
                        "rounded to 32, long side capped at 1.667 x short")
    p.add_argument("--single-batch", type=int, default=4, help="images per iteration of the single/multisize runs")
    p.add_argument("--single-lr", type=float, default=None, help="BASE_LR of single/multisize (default: config's)")
    p.add_argument("--multisize-factors", type=float, nargs="+", default=[0.5, 0.75, 1.0, 1.25, 1.5],
                   help="multisize: training and TTA short sides as factors of the single size")
    p.add_argument("--jobs", type=int, default=2, help="variants trained at once (one CPU thread each)")
    p.add_argument("--tests", choices=("all", "main"), default="all",
                   help="main: only each variant's own test (no per-scale / hard-NMS / single-scale ablations)")
    p.add_argument("--collect", action="store_true",
                   help="train nothing: report the runs already in --output (e.g. from several invocations)")
    p.add_argument("--output", default=os.path.join(ROOT, "output/bench_accuracy"))
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides for every variant")
    args = p.parse_args(argv)
    if args.config_file is None:
        demo = "sniper_mask_shapes_R18_FPN.yaml" if args.mask else "sniper_shapes_R18_FPN.yaml"
        args.config_file = os.path.join(ROOT, "configs/demo", demo)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        p.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    if args.budget <= 0 or args.seeds < 1 or args.jobs < 1:
        p.error("--budget, --seeds and --jobs must be positive")
    return args


# ---------------------------------------------------------------------------------------------
# Child: one variant, one seed
# ---------------------------------------------------------------------------------------------

def _base_cfg(args, seed, output_dir, extra_file=None):
    from detectron2.config import get_cfg

    from sniper_d2 import add_sniper_config

    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.merge_from_file(args.config_file)
    if extra_file:
        cfg.merge_from_file(extra_file)
    cfg.merge_from_list(args.opts)
    if args.mask:
        cfg.MODEL.MASK_ON = True
    cfg.DATASETS.TRAIN = (args.train,)
    cfg.DATASETS.TEST = ()  # evaluated after training, outside the timed part
    cfg.DATALOADER.NUM_WORKERS = 0  # all data work in the timed process
    cfg.SEED = seed
    cfg.SNIPER.SEED = -1
    cfg.TEST.EVAL_PERIOD = 0
    cfg.SOLVER.CHECKPOINT_PERIOD = 10**9
    cfg.OUTPUT_DIR = output_dir
    return cfg


def _single_size(args):
    """(short, max_long) of the single-scale baseline (see --single-size)."""
    if args.single_size:
        return tuple(args.single_size)
    import numpy as np
    from detectron2.data import DatasetCatalog

    shorts = [min(d["height"], d["width"]) for d in DatasetCatalog.get(args.train)]
    short = int(32 * round(1.25 * float(np.median(shorts)) / 32))
    return short, int(round(short * 1.667))


def _variant_cfg(args, variant, seed, output_dir):
    cfg = _base_cfg(args, seed, output_dir, args.autofocus_config if variant == "autofocus" else None)
    if variant in ("single", "multisize"):
        short, max_long = _single_size(args)
        cfg.SNIPER.TRAIN.ENABLED = False
        cfg.SNIPER.TEST.MULTI_SCALE = False
        cfg.SOLVER.IMS_PER_BATCH = args.single_batch
        if args.single_lr:
            cfg.SOLVER.BASE_LR = args.single_lr
        cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST = short, max_long
        if variant == "single":
            cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN = (short,), max_long
        else:
            sizes = tuple(int(round(short * f)) for f in args.multisize_factors)
            cfg.INPUT.MIN_SIZE_TRAIN = sizes
            cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"
            cfg.INPUT.MAX_SIZE_TRAIN = int(round(max_long * max(args.multisize_factors)))
            cfg.TEST.AUG.ENABLED = True
            cfg.TEST.AUG.MIN_SIZES = sizes
            cfg.TEST.AUG.MAX_SIZE = cfg.INPUT.MAX_SIZE_TRAIN
            cfg.TEST.AUG.FLIP = True
    elif variant == "sniper_allvalid":
        cfg.SNIPER.TRAIN.IGNORE_INVALID = False
    elif variant == "suggested":
        from sniper_d2.analysis import suggest_for_config

        for key, value in suggest_for_config(cfg).config_items():
            cfg.merge_from_list([key, value])
    return cfg


class _PixelCount:
    """Wraps a training data loader; counts the model input pixels (unpadded) it yields."""

    def __init__(self, loader):
        self.loader, self.pixels = loader, 0

    def __iter__(self):
        for batch in self.loader:
            self.pixels += sum(int(d["image"].shape[-2]) * int(d["image"].shape[-1]) for d in batch)
            yield batch


def _trainer_class():
    from detectron2.engine import HookBase

    from sniper_d2 import SniperTrainer

    class StepTimes(HookBase):
        def before_step(self):
            self._t0 = time.process_time()

        def after_step(self):
            self.trainer.step_cpu.append(time.process_time() - self._t0)

    class BenchTrainer(SniperTrainer):
        def __init__(self, cfg):
            self.step_cpu = []
            super().__init__(cfg)

        @classmethod
        def build_train_loader(cls, cfg):
            return _PixelCount(super().build_train_loader(cfg))

        def build_hooks(self):
            return super().build_hooks() + [StepTimes()]

    return BenchTrainer


def _train(cfg):
    """(trainer, training CPU s) of one run from scratch; trainer construction (chip plan,
    model) counts."""
    trainer_cls = _trainer_class()
    start = time.process_time()
    trainer = trainer_cls(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    return trainer, time.process_time() - start


def _calibrated_iterations(cfg, budget_cpu):
    """Iterations of ``cfg`` that fit ``budget_cpu`` CPU s, from a PILOT_ITERS pilot run."""
    pilot = cfg.clone()
    pilot.SOLVER.MAX_ITER = PILOT_ITERS
    pilot.SOLVER.STEPS = ()
    pilot.SOLVER.WARMUP_ITERS = 1
    pilot.OUTPUT_DIR = os.path.join(cfg.OUTPUT_DIR, "pilot")
    trainer, pilot_cpu = _train(pilot)
    per_iter = sum(trainer.step_cpu[2:]) / len(trainer.step_cpu[2:])
    overhead = pilot_cpu - sum(trainer.step_cpu)  # construction and hooks, paid again by the real run
    iters = int((budget_cpu - overhead) // per_iter)
    if iters < 10:
        raise SystemExit(
            f"Budget too small: {budget_cpu:.0f} CPU s left for training buys {iters} iterations at "
            f"{per_iter:.2f} CPU s each (+{overhead:.0f} s set-up). Raise --budget."
        )
    return iters, per_iter, pilot_cpu


def _evaluate(cfg, model, test_name, mode):
    """COCO box metrics, segm metrics (None without masks) and CPU s of one test mode: 'config' (the config's own test),
    'scale:i' (test scale i alone, whole image, no range filter), 'nms' (hard-NMS merge),
    'tta' (Detectron2's GeneralizedRCNNWithTTA), 'single' (Detectron2's single-scale test), 'pyramid' (the
    whole image at every test scale: AutoFocus off)."""
    from detectron2.evaluation import COCOEvaluator, inference_on_dataset
    from detectron2.modeling import GeneralizedRCNNWithTTA

    from sniper_d2 import SniperTrainer
    from sniper_d2.inference import build_inference_model

    cfg = cfg.clone()
    cfg.defrost()
    if mode.startswith("scale:"):
        index = int(mode.split(":")[1])
        cfg.SNIPER.TEST.SCALES = (cfg.SNIPER.TEST.SCALES[index],)
        cfg.SNIPER.TEST.VALID_RANGES = ((-1, -1),)
    elif mode == "nms":
        cfg.SNIPER.TEST.MERGE = "nms"
    elif mode == "pyramid":
        cfg.SNIPER.TEST.AUTOFOCUS.ENABLED = False
    elif mode == "single":
        cfg.TEST.AUG.ENABLED = False
    start = time.process_time()
    wrapped = GeneralizedRCNNWithTTA(cfg, model) if mode == "tta" else build_inference_model(cfg, model)
    loader = SniperTrainer.build_test_loader(cfg, test_name)
    evaluator = COCOEvaluator(test_name, output_dir=None)
    results = inference_on_dataset(wrapped, loader, evaluator)
    segm = {k: float(results["segm"][k]) for k in METRICS} if "segm" in results else None
    return {k: float(results["bbox"][k]) for k in METRICS}, segm, time.process_time() - start


def _test_modes(cfg, variant, which="all"):
    if which == "main":
        return [_main_test(variant)]
    if variant == "multisize":
        return ["tta", "single"]
    if variant == "single":
        return ["config"]
    pyramid = ["pyramid"] if cfg.SNIPER.TEST.AUTOFOCUS.ENABLED else []
    return ["config", *pyramid, "nms"] + [f"scale:{i}" for i in range(len(cfg.SNIPER.TEST.SCALES))]


def run_child(args):
    import torch
    from detectron2.utils.env import seed_all_rng
    from detectron2.utils.logger import setup_logger

    import sniper_d2  # noqa: F401  (registers components and built-in datasets)
    from sniper_d2 import SniperTrainer, check_sniper_config, register_coco_datasets
    from sniper_d2.mining import mine_negative_proposals

    torch.set_num_threads(1)
    out_dir = os.path.join(args.output, f"{args.child}_seed{args.seed}")
    os.makedirs(out_dir, exist_ok=True)
    setup_logger(out_dir)
    seed_all_rng(args.seed)
    register_coco_datasets(args.register_coco)
    cfg = _variant_cfg(args, args.child, args.seed, out_dir)
    check_sniper_config(cfg)
    mining_cpu = 0.0
    if args.child in MINED_VARIANTS:
        start = time.process_time()
        files = mine_negative_proposals(cfg, SniperTrainer)
        mining_cpu = time.process_time() - start
        cfg.SNIPER.NEG.PROPOSAL_FILES = tuple(files)
    else:
        cfg.SNIPER.NEG.PROPOSAL_FILES = ()
    iters, per_iter, pilot_cpu = _calibrated_iterations(cfg, args.budget - mining_cpu)
    cfg.SOLVER.MAX_ITER = iters
    cfg.SOLVER.STEPS = (int(LR_STEP_AT * iters),)
    cfg.SOLVER.WARMUP_ITERS = min(cfg.SOLVER.WARMUP_ITERS, max(1, iters // 10))
    cfg.freeze()
    seed_all_rng(args.seed)
    trainer, train_cpu = _train(cfg)
    model = trainer.model
    model.eval()
    tests = {}
    for mode in _test_modes(cfg, args.child, args.tests):
        metrics, segm_metrics, test_cpu = _evaluate(cfg, model, args.test, mode)
        tests[mode] = {"metrics": metrics, "cpu_s": test_cpu}
        if segm_metrics is not None:
            tests[mode]["segm_metrics"] = segm_metrics
    result = {
        "variant": args.child, "seed": args.seed, "budget": args.budget, "train": args.train, "test": args.test,
        "iterations": iters, "cpu_per_iter": per_iter,
        "mining_cpu_s": mining_cpu, "train_cpu_s": train_cpu, "pilot_cpu_s": pilot_cpu,
        "model_mpx": trainer.data_loader.pixels / 1e6, "ims_per_batch": cfg.SOLVER.IMS_PER_BATCH,
        "tests": tests, "final_loss": _final_loss(trainer),
    }
    if args.child in SNIPER_VARIANTS:
        result["train_scales"] = [str(s) for s in cfg.SNIPER.TRAIN.SCALES]
        result["test_scales"] = [str(s) for s in cfg.SNIPER.TEST.SCALES]
    else:
        result["single_size"] = [cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST]
    with open(os.path.join(out_dir, "result.json"), "w") as f:
        json.dump(result, f, indent=1)


def _final_loss(trainer):
    history = trainer.storage.histories().get("total_loss")
    return float(history.median(20)) if history else float("nan")


# ---------------------------------------------------------------------------------------------
# Parent: run children, report
# ---------------------------------------------------------------------------------------------

def _child_command(args, variant, seed):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", variant, "--seed", str(seed),
           "--config-file", args.config_file, "--autofocus-config", args.autofocus_config,
           "--train", args.train, "--test", args.test,
           "--budget", str(args.budget), "--output", args.output, "--single-batch", str(args.single_batch),
           "--multisize-factors", *map(str, args.multisize_factors),  # nargs="+": not last, the opts follow
           "--tests", args.tests, *(["--mask"] if args.mask else [])]
    if args.single_size:
        cmd += ["--single-size", *map(str, args.single_size)]
    if args.single_lr:
        cmd += ["--single-lr", str(args.single_lr)]
    for triple in args.register_coco:
        cmd += ["--register-coco", *triple]
    return cmd + list(args.opts)


def _run_one(args, variant, seed):
    out_dir = os.path.join(args.output, f"{variant}_seed{seed}")
    result_file = os.path.join(out_dir, "result.json")
    if os.path.isfile(result_file):
        os.remove(result_file)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.perf_counter()
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "child.log"), "w") as log:
        proc = subprocess.run(_child_command(args, variant, seed), stdout=log, stderr=subprocess.STDOUT, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0 or not os.path.isfile(result_file):
        with open(os.path.join(out_dir, "child.log")) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f"{variant} (seed {seed}) failed with exit code {proc.returncode}:\n{tail}")
    with open(result_file) as f:
        result = json.load(f)
    result["wall_s"] = wall
    main_test = result["tests"][_main_test(variant)]
    segm = f", segm AP {main_test['segm_metrics']['AP']:.1f}" if "segm_metrics" in main_test else ""
    print(f"  done: {variant} seed {seed} in {wall / 60:.1f} min "
          f"({result['iterations']} iterations, AP {main_test['metrics']['AP']:.1f}{segm})", flush=True)
    return result


def _main_test(variant):
    return "tta" if variant == "multisize" else "config"


def _rows(results):
    """[(label, variant, test mode)] in table order."""
    by_variant = {}
    for r in results:
        by_variant.setdefault(r["variant"], r)
    labels = {
        "single": "(a) single-scale", "multisize": "(b) multi-size train + TTA",
        "sniper": "(c) SNIPER", "sniper_noneg": "(c) no negative chips",
        "sniper_allvalid": "(c) every box valid (no ignore)", "suggested": "SNIPER, analyze_dataset --suggest",
        "autofocus": "SNIPER + AutoFocus",
    }
    rows = []
    for variant in VARIANTS:
        if variant not in by_variant:
            continue
        r = by_variant[variant]
        rows.append((labels[variant], variant, _main_test(variant)))
        if variant == "multisize" and "single" in r["tests"]:
            rows.append(("(b) tested single-scale", variant, "single"))
        if "pyramid" in r["tests"]:
            rows.append((f"{labels[variant]}, full pyramid (AutoFocus off)", variant, "pyramid"))
        if variant in ("sniper", "suggested", "autofocus") and "nms" in r["tests"]:
            rows.append((f"{labels[variant]}, hard-NMS merge", variant, "nms"))
            for i, scale in enumerate(r["test_scales"]):
                rows.append((f"{labels[variant]}, tested at scale {scale} alone", variant, f"scale:{i}"))
    return rows


def _stat(values):
    """(mean, half spread) of a list; NaN-safe."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan, 0.0
    return sum(values) / len(values), (max(values) - min(values)) / 2


def summarise(results):
    """Table rows: label, variant, mode, {metric: (mean, half spread)}, train CPU s, Mpx, iterations."""
    table = []
    for label, variant, mode in _rows(results):
        runs = [r for r in results if r["variant"] == variant]
        metrics = {m: _stat([r["tests"][mode]["metrics"][m] for r in runs]) for m in METRICS}
        with_segm = [r["tests"][mode]["segm_metrics"] for r in runs if "segm_metrics" in r["tests"][mode]]
        segm = {m: _stat([s[m] for s in with_segm]) for m in SEGM_METRICS} if with_segm else None
        table.append({
            "label": label, "variant": variant, "mode": mode, "metrics": metrics, "segm_metrics": segm,
            "seeds": len(runs),
            "train_cpu_s": _stat([r["train_cpu_s"] + r["mining_cpu_s"] for r in runs])[0],
            "mining_cpu_s": _stat([r["mining_cpu_s"] for r in runs])[0],
            "model_mpx": _stat([r["model_mpx"] for r in runs])[0],
            "iterations": _stat([r["iterations"] for r in runs])[0],
            "test_cpu_s": _stat([r["tests"][mode]["cpu_s"] for r in runs])[0],
        })
    return table


def markdown(table):
    def cell(mean, spread):
        if math.isnan(mean):
            return "n/a"
        return f"{mean:.1f}" + (f" ±{spread:.1f}" if spread else "")

    segm = any(row.get("segm_metrics") for row in table)
    segm_header = "".join(f" segm {m} |" for m in SEGM_METRICS) if segm else ""
    lines = ["| variant | " + " | ".join(METRICS) + f" |{segm_header} train CPU s (mining) | model Mpx | iterations "
             "| test CPU s |",
             "|---|" + "---|" * (len(METRICS) + 4 + (len(SEGM_METRICS) if segm else 0))]
    for row in table:
        segm_cells = ""
        if segm:
            segm_cells = "".join(
                f" {cell(*row['segm_metrics'][m]) if row.get('segm_metrics') else 'n/a'} |" for m in SEGM_METRICS
            )
        lines.append(
            f"| {row['label']} | " + " | ".join(cell(*row["metrics"][m]) for m in METRICS)
            + f" |{segm_cells} {row['train_cpu_s']:.0f} ({row['mining_cpu_s']:.0f}) | {row['model_mpx']:.0f} "
            + f"| {row['iterations']:.0f} | {row['test_cpu_s']:.0f} |"
        )
    return "\n".join(lines)


def verdict(table):
    """Lines comparing SNIPER with the best baseline (the issue's goals)."""
    main = {(r["variant"], r["mode"]): r for r in table}
    base = [main[k] for k in (("single", "config"), ("multisize", "tta")) if k in main]
    lines = []
    for variant in ("sniper", "suggested", "autofocus"):
        if (variant, "config") not in main:
            continue
        s = main[(variant, "config")]
        if base:
            best = max(base, key=lambda r: r["metrics"]["AP"][0])
            best_s = max(base, key=lambda r: r["metrics"]["APs"][0])
            d_ap = s["metrics"]["AP"][0] - best["metrics"]["AP"][0]
            d_aps = s["metrics"]["APs"][0] - best_s["metrics"]["APs"][0]
            cpu = s["train_cpu_s"] / max(r["train_cpu_s"] for r in base)
            won = "SNIPER has the higher AP" if d_ap > 0 else "the baseline has the higher AP"
            spread = max(s["metrics"]["AP"][1], best["metrics"]["AP"][1])
            if s["seeds"] < 2 or best["seeds"] < 2:
                noise = "; one seed: --seeds 3 shows the spread"
            elif abs(d_ap) <= 2 * spread:
                noise = f"; within the seeds' spread (+-{spread:.1f})"
            else:
                noise = f"; beyond the seeds' spread (+-{spread:.1f})"
            lines.append(
                f"{s['label']}: AP {d_ap:+.1f} vs the best baseline ({best['label']}), APs {d_aps:+.1f} vs "
                f"{best_s['label']}, training CPU x{cpu:.2f}: {won}{noise} (goal: +2 AP, +3 APs, CPU <= x1.00)."
            )
        singles = [r for k, r in main.items() if k[0] == variant and k[1].startswith("scale:")]
        if singles:
            best_single = max(singles, key=lambda r: r["metrics"]["AP"][0])
            gap = s["metrics"]["AP"][0] - best_single["metrics"]["AP"][0]
            lines.append(
                f"{s['label']}: multi-scale test {gap:+.1f} AP vs its best single-scale test "
                f"({best_single['label'][best_single['label'].index('tested at'):]}; goal: >= 0)."
            )
    return lines


def bar_chart(table, path, title="Same training CPU budget per model"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in table if r["mode"] in ("config", "tta") or r["variant"] == "sniper"]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows) + 2), 4.2))
    width = 0.38
    for k, metric in enumerate(("AP", "APs")):
        means = [r["metrics"][metric][0] for r in rows]
        errs = [r["metrics"][metric][1] for r in rows]
        xs = [i + (k - 0.5) * width for i in range(len(rows))]
        ax.bar(xs, means, width, yerr=errs if any(errs) else None, label=metric, capsize=3)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r["label"].replace(", ", ",\n") for r in rows], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("COCO AP (%)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return run_child(args)
    import sniper_d2  # noqa: F401  (registers the built-in datasets)
    from detectron2.data import DatasetCatalog

    from sniper_d2.data import register_coco_datasets

    register_coco_datasets(args.register_coco)
    for name in (args.train, args.test):
        if name not in DatasetCatalog.list():
            raise SystemExit(f"Dataset '{name}' is not registered: use a built-in name or --register-coco NAME JSON ROOT.")
        DatasetCatalog.get(name)  # generates a built-in dataset once, before the children start
    os.makedirs(args.output, exist_ok=True)
    if args.collect:
        return report(args, _collected(args.output), time.perf_counter())
    jobs = [(v, s) for s in range(args.seeds) for v in args.variants]
    print(f"bench_accuracy: {len(jobs)} runs ({', '.join(args.variants)}; {args.seeds} seed(s)), "
          f"{args.budget:.0f} training CPU s each, {args.jobs} at a time; train {args.train}, test {args.test}",
          flush=True)
    start = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda job: _run_one(args, *job), jobs))
    return report(args, results, start)


def _collected(output):
    """The result.json of every run under ``output``."""
    results = []
    for name in sorted(os.listdir(output)):
        path = os.path.join(output, name, "result.json")
        if os.path.isfile(path):
            with open(path) as f:
                results.append(json.load(f))
    if not results:
        raise SystemExit(f"No run results (*/result.json) under {output}.")
    return results


def report(args, results, start):
    """Write results.json, accuracy.md and accuracy.png under --output and print the table."""
    table = summarise(results)
    with open(os.path.join(args.output, "results.json"), "w") as f:
        json.dump({"args": {k: v for k, v in vars(args).items() if k not in ("child",)}, "runs": results}, f, indent=1)
    text = markdown(table) + "\n\n" + "\n".join(verdict(table)) + "\n"
    with open(os.path.join(args.output, "accuracy.md"), "w") as f:
        f.write(text)
    first = results[0]
    bar_chart(table, os.path.join(args.output, "accuracy.png"),
              f"{first.get('train', args.train)} -> {first.get('test', args.test)}: "
              f"{first.get('budget', args.budget):.0f} training CPU s per model")
    seeds = max(sum(r["variant"] == v for r in results) for v in {r["variant"] for r in results})
    print(f"\nTrain {first.get('train', args.train)}, test {first.get('test', args.test)}; "
          f"{first.get('budget', args.budget):.0f} training CPU s per model (one thread), {seeds} seed(s); "
          f"{(time.perf_counter() - start) / 60:.1f} min wall\n")
    print(text)
    print(f"Written: {args.output}/accuracy.md, accuracy.png, results.json")
    return table


if __name__ == "__main__":
    main()
