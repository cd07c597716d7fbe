"""Chip-generation speed and scaling (sniper_d2.chips). A script that prints figures, not a test.

    .venv/bin/python benchmarks/bench_chips.py [--images 3000] [--seed 0] [--skip-scaling]

1. COCO-like workload (seeded): 640x480 / 480x640 images, Poisson(7) boxes per image with COCO's
   41/34/24 % small (<32) / medium (32-96) / large (>96) sqrt(area) mix, 300 proposals per image
   (half jittered around the boxes, half anywhere). COCO settings: scales (3.0, 1.667, longest:512),
   chip 512, stride 32, valid ranges (-1,80), (32,150), (120,-1). Prints images/s for positive
   chips, for positive chips + negative pool + sampling 2, for valid-box assignment, chips/image and
   pixels/image against single-scale 800x1333 training.
2. Scaling: one 6000x6000 image with 3000 boxes at scales (1.0, 0.5, longest:512), valid ranges
   (-1,250), (125,500), (400,-1) (the COCO ranges' 80-250 chip px per scale, carried over); time
   and memory, then time against image area (3000 boxes) and against box count (6000x6000). The
   negative pool is also timed for the same image without ground truth, where every proposal of a
   valid size is uncovered (the random proposals here rarely escape the positive chips).

Times are CPU seconds of this process (best of 3 for the workload), so other jobs sharing the
machine distort them less than wall-clock time would.
"""
import argparse
import math
import resource
import time
import tracemalloc

import numpy as np

from sniper_d2.chips import ChipGenerator, assign_valid_boxes, sample_negative_chips

COCO_SCALES = (3.0, 1.667, "longest:512")
COCO_RANGES = ((-1, 80), (32, 150), (120, -1))
BIG_SCALES = (1.0, 0.5, "longest:512")
BIG_RANGES = ((-1, 250), (125, 500), (400, -1))


def random_boxes(rng, n, width, height, min_size, max_size):
    """n boxes with sqrt(area) log-uniform in [min_size, max_size) px, aspect ratio in [1/3, 3]."""
    size = np.exp(rng.uniform(np.log(min_size), np.log(max_size), n))
    aspect = np.exp(rng.uniform(np.log(1 / 3), np.log(3), n))
    w = np.minimum(size * np.sqrt(aspect), width)
    h = np.minimum(size / np.sqrt(aspect), height)
    x = rng.uniform(0, 1, n) * (width - w)
    y = rng.uniform(0, 1, n) * (height - h)
    return np.stack([x, y, x + w, y + h], axis=1)


def coco_like_image(rng):
    width, height = (640, 480) if rng.random() < 0.5 else (480, 640)
    n = rng.poisson(7)
    kind = rng.choice(3, size=n, p=[0.41 / 0.99, 0.34 / 0.99, 0.24 / 0.99])
    bounds = [(4, 32), (32, 96), (96, 480)]
    boxes = np.concatenate(
        [random_boxes(rng, int((kind == k).sum()), width, height, *bounds[k]) for k in range(3)]
    )
    # Proposals: half jittered around the boxes (where an RPN fires), half anywhere.
    near = rng.integers(0, max(n, 1), 150)
    if n:
        base = boxes[near]
        wh = np.repeat(base[:, 2:] - base[:, :2], 2, axis=0).reshape(-1, 4)
        jittered = base + rng.normal(0, 0.25, (150, 4)) * wh
    else:
        jittered = random_boxes(rng, 150, width, height, 8, 400)
    proposals = np.concatenate([jittered, random_boxes(rng, 150, width, height, 8, 400)])
    proposals = np.clip(proposals, 0, [width, height, width, height])
    proposals[:, 2:] = np.maximum(proposals[:, 2:], proposals[:, :2] + 1)
    return width, height, boxes, proposals


def best_time(fn, repeats=3):
    """(CPU seconds of the fastest of ``repeats`` calls, its result). CPU time of this process, so
    other jobs on the machine inflate it less than wall-clock time."""
    best, result = math.inf, None
    for _ in range(repeats):
        t0 = time.process_time()
        result = fn()
        best = min(best, time.process_time() - t0)
    return best, result


def single_scale_pixels(width, height, short=800, max_long=1333):
    s = min(short / min(width, height), max_long / max(width, height))
    return round(width * s) * round(height * s)


def bench_coco(num_images, seed):
    rng = np.random.default_rng(seed)
    images = [coco_like_image(rng) for _ in range(num_images)]
    gen = ChipGenerator(COCO_SCALES, COCO_RANGES, chip_size=512, stride=32, neg_min_proposals=(25, 10, 10))
    print(f"== COCO-like workload: {num_images} images, {np.mean([len(b) for _, _, b, _ in images]):.2f} "
          f"boxes/image, 300 proposals/image, scales {COCO_SCALES}, chip 512, stride 32")

    def positive_epoch():
        rng = np.random.default_rng(seed + 1)
        return [gen.positive_chips(i, w, h, b, rng) for i, (w, h, b, _) in enumerate(images)]

    def negative_epoch():
        rng = np.random.default_rng(seed + 1)
        negatives, pools = [], []
        for i, (w, h, b, p) in enumerate(images):
            pos = gen.positive_chips(i, w, h, b, rng)
            pool = gen.negative_chip_pool(i, w, h, p, pos, rng)
            negatives.append(sample_negative_chips(pool, 2, rng))
            pools.append(pool)
        return negatives, pools

    t_pos, positives = best_time(positive_epoch)
    t_neg, (negatives, pools) = best_time(negative_epoch)
    t_assign, _ = best_time(lambda: [
        assign_valid_boxes(pos + neg, b, w, h, gen.valid_ranges, chip_size=gen.chip_size, stride=gen.stride)
        for (w, h, b, _), pos, neg in zip(images, positives, negatives)
    ])

    n_pos = np.array([len(c) for c in positives])
    n_neg = np.array([len(c) for c in negatives])
    n_pool = np.array([len(c) for c in pools])
    per_scale = np.bincount([c.scale_index for cs in positives for c in cs], minlength=3) / num_images
    padded = (n_pos + n_neg) * 512 * 512
    content = np.array([sum(c.size[0] * c.size[1] for c in cs + ns) for cs, ns in zip(positives, negatives)])
    single = np.array([single_scale_pixels(w, h) for w, h, _, _ in images])
    print(f"positive chips only:          {num_images / t_pos:8.0f} images/s  (goal >= 3000)")
    print(f"positive + negative (pool + sample 2): {num_images / t_neg:8.0f} images/s  (goal >= 1000)")
    print(f"valid-box assignment:         {num_images / t_assign:8.0f} images/s")
    print(f"chips/image: positive {n_pos.mean():.2f} (per scale {', '.join(f'{v:.2f}' for v in per_scale)}), "
          f"negative {n_neg.mean():.2f} sampled of a pool of {n_pool.mean():.2f}; "
          f"{(n_pos == 0).mean() * 100:.1f} % of images have no positive chip")
    print(f"pixels/image vs single-scale 800x1333 ({single.mean():.0f} px): "
          f"chips padded to 512x512 {padded.mean() / single.mean():.2f}x, chip content "
          f"{content.mean() / single.mean():.2f}x (positive chips only: "
          f"{(n_pos * 512 * 512).mean() / single.mean():.2f}x padded)")


def big_image(rng, side, num_boxes, num_proposals):
    boxes = random_boxes(rng, num_boxes, side, side, 8, 1200)
    proposals = random_boxes(rng, num_proposals, side, side, 8, 1200)
    return boxes, proposals


def time_big(gen, side, boxes, proposals, seed):
    """CPU seconds for positive chips, valid-box assignment, the negative pool, and the negative pool
    of the same image without ground truth (every proposal of a valid size uncovered); chip counts."""
    rng = np.random.default_rng(seed)
    t0 = time.process_time()
    pos = gen.positive_chips("big", side, side, boxes, rng)
    t1 = time.process_time()
    assign_valid_boxes(pos, boxes, side, side, gen.valid_ranges, chip_size=gen.chip_size, stride=gen.stride)
    t2 = time.process_time()
    pool = gen.negative_chip_pool("big", side, side, proposals, pos, rng)
    t3 = time.process_time()
    pool_no_gt = gen.negative_chip_pool("big", side, side, proposals, [], rng)
    t4 = time.process_time()
    return t1 - t0, t2 - t1, t3 - t2, t4 - t3, len(pos), len(pool), len(pool_no_gt)


def bench_scaling(seed):
    gen = ChipGenerator(BIG_SCALES, BIG_RANGES, chip_size=512, stride=32, neg_min_proposals=(25, 10, 10))
    print(f"\n== One large image: scales {BIG_SCALES}, valid ranges {BIG_RANGES}, chip 512, stride 32, "
          "box sqrt(area) log-uniform in [8, 1200) px")
    rng = np.random.default_rng(seed)
    boxes, proposals = big_image(rng, 6000, 3000, 3000)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    time_big(gen, 6000, boxes, proposals, seed)
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    t_pos, t_assign, t_neg, t_no_gt, n_pos, n_pool, n_no_gt = time_big(gen, 6000, boxes, proposals, seed)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"6000x6000, 3000 boxes, 3000 proposals: positive chips {t_pos:.3f} s ({n_pos} chips), "
          f"assignment {t_assign:.3f} s, negative pool {t_neg:.3f} s ({n_pool} chips); "
          f"total {t_pos + t_assign + t_neg:.3f} s (goal < 2 s); negative pool of the same image "
          f"without ground truth {t_no_gt:.3f} s ({n_no_gt} chips)")
    print(f"memory: chip work allocates at most {traced_peak:.1f} MiB (tracemalloc peak); process peak RSS "
          f"{rss_peak:.0f} MiB, of which {rss_before:.0f} MiB before the chip work (Python, numpy and the "
          "torch/detectron2 that importing sniper_d2 loads) (goal < 1 GB)")

    print("\ntime vs image area (3000 boxes, 3000 proposals):")
    print("   side  positive s  assign s  negative s  no-GT neg s  pos chips  no-GT neg chips   total s")
    base = None
    for side in (1500, 3000, 6000, 12000):
        rng = np.random.default_rng(seed)
        b, p = big_image(rng, side, 3000, 3000)
        t_pos, t_assign, t_neg, t_no_gt, n_pos, _, n_no_gt = min(
            (time_big(gen, side, b, p, seed) for _ in range(2)), key=lambda r: sum(r[:4])
        )
        total = t_pos + t_assign + t_neg + t_no_gt
        base = base or (side, total)
        print(f"  {side:5d}  {t_pos:10.3f}  {t_assign:8.3f}  {t_neg:10.3f}  {t_no_gt:11.3f}  {n_pos:9d}  {n_no_gt:15d}"
              f"  {total:8.3f}  (x{total / base[1]:.1f} time for x{(side / base[0]) ** 2:.0f} area)")

    print("\ntime vs box count (6000x6000, proposals = boxes):")
    print("  boxes  positive s  assign s  negative s  no-GT neg s  pos chips  no-GT neg chips   total s")
    base = None
    for n in (750, 1500, 3000, 6000, 12000):
        rng = np.random.default_rng(seed)
        b, p = big_image(rng, 6000, n, n)
        t_pos, t_assign, t_neg, t_no_gt, n_pos, _, n_no_gt = min(
            (time_big(gen, 6000, b, p, seed) for _ in range(2)), key=lambda r: sum(r[:4])
        )
        total = t_pos + t_assign + t_neg + t_no_gt
        base = base or (n, total)
        print(f"  {n:5d}  {t_pos:10.3f}  {t_assign:8.3f}  {t_neg:10.3f}  {t_no_gt:11.3f}  {n_pos:9d}  {n_no_gt:15d}"
              f"  {total:8.3f}  (x{total / base[1]:.1f} time for x{n // base[0]} boxes)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000, help="COCO-like images to time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-scaling", action="store_true", help="only the COCO-like workload")
    args = parser.parse_args()
    bench_coco(args.images, args.seed)
    if not args.skip_scaling:
        bench_scaling(args.seed)


if __name__ == "__main__":
    main()
