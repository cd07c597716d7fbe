"""Multi-scale inference cost (sniper_d2.inference). A script that prints figures, not a test.

    .venv/bin/python benchmarks/bench_inference.py [--model r18|r50] [--images 4] [--device cpu]
    .venv/bin/python benchmarks/bench_inference.py --weights MODEL.pth --config-file CFG [--dataset NAME]

1. Merge cost per image: valid-range filter + cross-scale merge (``merge_scale_detections``) of
   synthetic detections on a 640x480 image (sqrt(area) log-uniform 4-600 px, aspect 1/3-3,
   scores uniform), COCO test ranges (-1,90), (32,180), (75,-1), soft-NMS sigma 0.55, score
   threshold 0.001, top 200. Workloads: 3 scales x 1000 detections over 80 classes (the target),
   3 x 5000 over 80 classes (heavier), 3 x 300 and 3 x 1000 in a single class (a crowd of one
   class: the sequential selection runs its full 200 steps), and the hard-NMS merge of the
   target workload. CPU time of this process per image, one thread (the fastest of a few runs
   of each image, median over images), so other jobs sharing the machine distort it less than
   wall-clock time would. Hard NMS is Detectron2's ``batched_nms``, which on CPU runs one NMS
   per class once there are more than 1000 boxes.
2. Whole-model throughput, same model and images, same run: multi-scale SNIPER inference at the
   COCO test scales (1400,2000), (800,1280), (480,512) against Detectron2's single-scale
   inference at 800x1333 (INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST; images resized before timing, as
   the data loader does; the wrapper's own resizes are timed). The model is a randomly
   initialised Faster R-CNN with FPN (R-18 or R-50, 2x1024 FC box head, 1000 proposals) with the
   Detectron2 per-scale post-processing (SNIPER.TEST.RAW_SCALE_DETECTIONS False, SCORE_THRESH_TEST
   0.01, 300 detections): random weights cost the same compute as trained ones, but their flat
   class scores would pass the authors' 0.001 threshold for every class of every proposal, a
   detection count no trained model produces (part 3 measures real counts). Prints wall-clock images/s with all of torch's threads, CPU seconds
   per image, and the merge's share, then the same merges with one thread (with several, each
   small tensor op of the merge can wait for torch's worker threads; on a busy machine that
   multiplies its cost).
3. With ``--weights`` (a trained model and its config): on ``--images`` images of ``--dataset``
   (default: the config's first DATASETS.TEST), the whole multi-scale test with the authors'
   per-scale post-processing (no NMS, no cap, score >= SNIPER.TEST.SCORE_THRESH; 300 proposals)
   against Detectron2's (the config's ROI_HEADS / TEST keys): detections per scale reaching the
   merge, merge CPU ms per image (1 thread) and whole-test CPU s per image, same run.
"""
import argparse
import math
import statistics
import time

import detectron2.data.transforms as T
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances

from sniper_d2.chips.scales import scaled_size
from sniper_d2.chips.valid_range import parse_valid_ranges
from sniper_d2.config import add_sniper_config
from sniper_d2.inference import SniperMultiScaleInference, merge_scale_detections, multi_scale

COCO_TEST_RANGES = ((-1, 90), (32, 180), (75, -1))
IMAGE_HEIGHT, IMAGE_WIDTH = 480, 640


def synthetic_detections(generator, num, num_classes):
    """One scale's detections on a 640x480 image, original px."""
    size = torch.exp(torch.empty(num).uniform_(math.log(4.0), math.log(600.0), generator=generator))
    aspect = torch.exp(torch.empty(num).uniform_(-math.log(3.0), math.log(3.0), generator=generator))
    w = torch.clamp(size * aspect.sqrt(), max=IMAGE_WIDTH)
    h = torch.clamp(size / aspect.sqrt(), max=IMAGE_HEIGHT)
    x = torch.rand(num, generator=generator) * (IMAGE_WIDTH - w)
    y = torch.rand(num, generator=generator) * (IMAGE_HEIGHT - h)
    return Instances(
        (IMAGE_HEIGHT, IMAGE_WIDTH),
        pred_boxes=Boxes(torch.stack([x, y, x + w, y + h], dim=1)),
        scores=torch.rand(num, generator=generator),
        pred_classes=torch.randint(0, num_classes, (num,), generator=generator),
    )


def chw(image):
    """HWC uint8 numpy image -> CHW tensor, as DatasetMapper produces."""
    return torch.as_tensor(image.transpose(2, 0, 1).copy())


def time_merge(per_scale_num, num_classes, method, images, repeats, seed=0):
    """CPU ms per image (fastest of ``repeats`` runs of each image, median over images) and mean
    detections kept."""
    generator = torch.Generator().manual_seed(seed)
    ranges = parse_valid_ranges(COCO_TEST_RANGES, 3)
    workloads = [
        [synthetic_detections(generator, per_scale_num, num_classes) for _ in range(3)] for _ in range(images)
    ]
    merge_scale_detections(workloads[0], ranges, method=method)  # warm-up
    times, kept = [], []
    for per_scale in workloads:
        runs = []
        for _ in range(repeats):
            start = time.process_time()
            merged = merge_scale_detections(per_scale, ranges, method=method)
            runs.append(time.process_time() - start)
        times.append(min(runs))
        kept.append(len(merged))
    return 1000 * statistics.median(times), statistics.mean(kept)


def model_cfg(name, device):
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.MODEL.DEVICE = device
    cfg.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
    cfg.MODEL.RESNETS.DEPTH = {"r18": 18, "r50": 50}[name]
    if name == "r18":
        cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[32], [64], [128], [256], [512]]
    cfg.MODEL.RPN.IN_FEATURES = ["p2", "p3", "p4", "p5", "p6"]
    cfg.MODEL.ROI_HEADS.NAME = "StandardROIHeads"
    cfg.MODEL.ROI_HEADS.IN_FEATURES = ["p2", "p3", "p4", "p5"]
    cfg.MODEL.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
    cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 2
    cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 7
    # Per-scale test settings of configs/Base-SNIPER-FPN.yaml (also used for single scale).
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.01
    cfg.TEST.DETECTIONS_PER_IMAGE = 300
    cfg.SNIPER.TEST.RAW_SCALE_DETECTIONS = False
    cfg.SNIPER.TEST.PROPOSALS_PER_SCALE = 0
    return cfg


def one_thread_merge_seconds(calls, repeats):
    """The recorded merges ``[(args, kwargs)]`` again, one thread: CPU s of each, fastest of
    ``repeats`` runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    seconds = []
    for merge_args, merge_kwargs in calls:
        runs = []
        for _ in range(repeats):
            start = time.process_time()
            merge_scale_detections(*merge_args, **merge_kwargs)
            runs.append(time.process_time() - start)
        seconds.append(min(runs))
    torch.set_num_threads(threads)
    return seconds


def real_outputs(args):
    """Part 3: the authors' per-scale post-processing vs Detectron2's on a trained model."""
    import cv2

    import sniper_d2  # noqa: F401  (built-in datasets)

    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.MODEL.DEVICE = args.device
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(args.weights)
    name = args.dataset or cfg.DATASETS.TEST[0]
    records = DatasetCatalog.get(name)[: args.images]
    inputs = []
    for d in records:
        img = cv2.imread(d["file_name"])[:, :, ::-1] if cfg.INPUT.FORMAT == "RGB" else cv2.imread(d["file_name"])
        inputs.append({"image": chw(img), "height": d["height"], "width": d["width"]})
    print(f"== Real outputs: {args.weights} on {len(inputs)} images of {name}, {args.device} ==")
    results = {}
    for raw in (True, False):
        c = cfg.clone()
        c.SNIPER.TEST.RAW_SCALE_DETECTIONS = raw
        c.SNIPER.TEST.PROPOSALS_PER_SCALE = c.SNIPER.TEST.PROPOSALS_PER_SCALE if raw else 0
        wrapper = SniperMultiScaleInference(c, model)
        calls = []

        def recording(*merge_args, **merge_kwargs):
            calls.append((merge_args, merge_kwargs))
            return merge_scale_detections(*merge_args, **merge_kwargs)

        multi_scale.merge_scale_detections = recording
        _, cpu = throughput(wrapper, inputs, args.device, on_warm=calls.clear)
        multi_scale.merge_scale_detections = merge_scale_detections
        merge = one_thread_merge_seconds(calls, args.merge_repeats)
        counts = [statistics.mean(len(call[0][0][k]) for call in calls) for k in range(len(wrapper.scales))]
        label = "authors' (raw per scale)" if raw else "Detectron2 per-scale NMS/cap"
        print(
            f"  {label:30s}: detections per scale into the merge {', '.join(f'{n:.0f}' for n in counts)}; "
            f"merge {1000 * statistics.mean(merge):.2f} CPU ms/image (1 thread, max "
            f"{1000 * max(merge):.2f}); whole test {cpu:.2f} CPU s/image"
        )
        results[raw] = cpu
    print(f"  whole test, authors' / Detectron2's post-processing: {results[True] / results[False]:.3f}x CPU time")


def throughput(model, inputs, device, on_warm=lambda: None):
    """(images/s wall-clock, CPU s/image of this process), batch 1, after one warm-up image."""
    with torch.no_grad():
        model(inputs[:1])
        on_warm()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        for image in inputs:
            model([image])
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return len(inputs) / wall, cpu / len(inputs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("r18", "r50"), default="r18")
    parser.add_argument("--images", type=int, default=4, help="images for the throughput part")
    parser.add_argument("--merge-images", type=int, default=30, help="images per merge workload")
    parser.add_argument("--merge-repeats", type=int, default=3, help="runs per image; the fastest counts")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights", help="part 3 only: a trained model's weights (with --config-file)")
    parser.add_argument("--config-file", help="part 3: the trained model's config")
    parser.add_argument("--dataset", help="part 3: registered dataset (default: the config's first DATASETS.TEST)")
    args = parser.parse_args()
    if args.weights:
        if not args.config_file:
            parser.error("--weights needs --config-file")
        return real_outputs(args)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    print("== Merge (range filter + merge), CPU ms per image, 1 thread ==")
    for per_scale, classes, method, label in [
        (1000, 80, "soft_nms", "target"),
        (5000, 80, "soft_nms", "heavier"),
        (300, 1, "soft_nms", "one crowded class"),
        (1000, 1, "soft_nms", "one crowded class"),
        (1000, 80, "nms", "target, hard NMS"),
    ]:
        ms, kept = time_merge(per_scale, classes, method, args.merge_images, args.merge_repeats)
        print(
            f"  3 scales x {per_scale:5d} dets, {classes:2d} classes, {method:8s} ({label}): "
            f"{ms:7.2f} ms/image  ({kept:.0f} kept)"
        )
    torch.set_num_threads(threads)

    cfg = model_cfg(args.model, args.device)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    generator = torch.Generator().manual_seed(0)
    shape = (IMAGE_HEIGHT, IMAGE_WIDTH, 3)
    raw = [torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator).numpy() for _ in range(args.images)]
    # Single scale: Detectron2's test-time resize, done before timing (as the data loader does).
    resize = T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)
    single_inputs = [
        {"image": chw(resize.get_transform(img).apply_image(img)), "height": IMAGE_HEIGHT, "width": IMAGE_WIDTH}
        for img in raw
    ]
    # Multi-scale: original resolution in; the wrapper's per-scale resizes are timed with it.
    multi_inputs = [{"image": chw(img), "height": IMAGE_HEIGHT, "width": IMAGE_WIDTH} for img in raw]
    wrapper = SniperMultiScaleInference(cfg, model)

    merge_seconds, merge_calls = [], []

    def timed_merge(*merge_args, **merge_kwargs):
        start = time.process_time()
        merged = merge_scale_detections(*merge_args, **merge_kwargs)
        merge_seconds.append(time.process_time() - start)
        merge_calls.append((merge_args, merge_kwargs))
        return merged

    multi_scale.merge_scale_detections = timed_merge  # the wrapper's merge, timed
    single, single_cpu = throughput(model, single_inputs, args.device)
    multi, multi_cpu = throughput(
        wrapper, multi_inputs, args.device, on_warm=lambda: (merge_seconds.clear(), merge_calls.clear())
    )
    merge_one_thread = one_thread_merge_seconds(merge_calls, args.merge_repeats)
    print(
        f"== Throughput, {args.model.upper()}-FPN Faster R-CNN (random init), {IMAGE_WIDTH}x{IMAGE_HEIGHT} "
        f"images, {args.device}, {threads} threads, {args.images} images, batch 1 =="
    )
    print(
        f"  per scale: SCORE_THRESH_TEST {cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST}, "
        f"{cfg.TEST.DETECTIONS_PER_IMAGE} detections, {cfg.MODEL.RPN.POST_NMS_TOPK_TEST} proposals"
    )
    height, width = single_inputs[0]["image"].shape[1:]
    print(f"  single scale {width}x{height}: {single:6.3f} images/s, {single_cpu:6.2f} CPU s/image")
    sizes = [scaled_size(IMAGE_WIDTH, IMAGE_HEIGHT, s.factor(IMAGE_WIDTH, IMAGE_HEIGHT)) for s in wrapper.scales]
    print(
        f"  multi-scale {', '.join(f'{w}x{h}' for w, h in sizes)}: {multi:6.3f} images/s, "
        f"{multi_cpu:6.2f} CPU s/image ({multi_cpu / single_cpu:.2f}x single-scale CPU time)"
    )
    print(
        f"  of which merge: {1000 * statistics.mean(merge_seconds):.1f} CPU ms/image with {threads} threads "
        f"({statistics.mean(merge_seconds) / multi_cpu:.2%}); the same merges with 1 thread: "
        f"{1000 * statistics.mean(merge_one_thread):.1f} CPU ms/image"
    )


if __name__ == "__main__":
    main()
