"""The training-set report of ``tools/analyze_dataset.py``: object sizes, what each scale covers,
boxes no scale covers, chips and pixels per image, and (optionally) suggested scales and ranges.

:func:`analyze_training_set` returns the numbers as a JSON-ready dict; :func:`format_report`
renders that dict as text. Sizes are sqrt(area) in original px unless a key says ``chip_px``.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from tabulate import tabulate

from ..chips import ChipGenerator
from ..data import ChipPlanner
from .chip_statistics import chip_statistics
from .pixel_cost import pyramid_pixels, single_scale_pixels
from .scale_coverage import DatasetBoxes, ScaleCoverage, image_factors, scale_coverage
from .scale_suggestion import ScaleSuggestion, SizeDependence, anchor_size_band, suggest_for_dataset
from .size_distribution import size_distribution

__all__ = ["DatasetAnalysis", "analyze_training_set", "format_report", "suggest_for_config", "suggest_for_planner"]


@dataclass(frozen=True)
class DatasetAnalysis:
    """``report``: the JSON-ready numbers; ``sizes``: sqrt(area) of the non-crowd boxes, original px."""

    report: dict
    sizes: np.ndarray


def _percentiles(values: np.ndarray, qs=(5, 50, 95)) -> Dict[str, float]:
    if len(values) == 0:
        return {}
    return {f"p{q}": float(v) for q, v in zip(qs, np.percentile(values, qs))}


def _box_examples(mask: np.ndarray, boxes: DatasetBoxes, planner: ChipPlanner, limit: int) -> dict:
    """``{"count": n, "examples": [...]}`` for the boxes selected by ``mask`` (first ``limit``)."""
    ids = np.flatnonzero(mask)
    examples = []
    for k in ids[:limit].tolist():
        ann = planner.table[int(boxes.image_index[k])]
        examples.append({
            "dataset": ann.dataset,
            "image_id": ann.image_id,
            "file_name": ann.file_name,
            "box_index": int(k - boxes.first_box[ann.index]),
            "box_xyxy": [round(float(v), 2) for v in boxes.boxes[k]],
            "sqrt_area": round(float(boxes.shapes.sizes[k]), 2),
        })
    return {"count": int(len(ids)), "examples": examples}


def _scale_rows(generator: ChipGenerator, coverage: ScaleCoverage, boxes: DatasetBoxes, image_sizes) -> List[dict]:
    factors = image_factors(image_sizes, generator)
    rows = []
    for s, (spec, valid_range) in enumerate(zip(generator.scales, generator.valid_ranges)):
        driving = coverage.driving[:, s]
        rows.append({
            "scale": str(spec),
            "valid_range": list(valid_range.as_config()),
            "factor": _percentiles(factors[:, s]),
            "boxes_in_range": int(coverage.in_range[:, s].sum()),
            "boxes_driving_chips": int(driving.sum()),
            "driving_box_chip_px": _percentiles(boxes.shapes.sizes[driving] * coverage.factors[driving, s]),
        })
    return rows


def _uncovered(coverage: ScaleCoverage, boxes: DatasetBoxes, planner: ChipPlanner, limit: int) -> dict:
    assignable = ~boxes.crowd
    return {
        "in_no_valid_range": _box_examples(coverage.in_no_range & assignable, boxes, planner, limit),
        "drive_no_chip": _box_examples(coverage.drives_nowhere & assignable, boxes, planner, limit),
    }


def _widest_stride(cfg, generator: ChipGenerator) -> int:
    stride_range = cfg.SNIPER.TRAIN.CHIP_STRIDE_RANGE
    return int(max(stride_range)) if stride_range else generator.stride


def suggest_for_planner(
    cfg, planner: ChipPlanner, target_chip_px: Optional[Tuple[float, float]] = None, max_factor: float = 3.0,
    boxes: Optional[DatasetBoxes] = None,
) -> Tuple[ScaleSuggestion, SizeDependence]:
    """Scales and valid ranges suggested for the training set of ``planner`` (built from ``cfg``),
    and how much its object size follows image size (:func:`suggest_for_dataset`). ``boxes``:
    the planner's boxes if already gathered."""
    generator, table = planner.generator, planner.table
    boxes = boxes if boxes is not None else DatasetBoxes.from_table(table)
    assignable = ~boxes.crowd
    return suggest_for_dataset(
        boxes.shapes.sizes[assignable],
        boxes.image_index[assignable],
        table.sizes,
        generator.chip_size,
        _widest_stride(cfg, generator),
        target_chip_px=target_chip_px or anchor_size_band(cfg),
        max_factor=max_factor,
        neg_min_proposals=generator.neg_min_proposals,
    )


def suggest_for_config(cfg, **kwargs) -> ScaleSuggestion:
    """The suggestion for ``cfg.DATASETS.TRAIN`` (image files need not exist); ``kwargs`` as
    :func:`suggest_for_planner`. Apply it with ``cfg.merge_from_list`` over ``config_items()``."""
    from .training_set import load_training_planner

    return suggest_for_planner(cfg, load_training_planner(cfg), **kwargs)[0]


def _suggestion_report(
    suggestion: ScaleSuggestion, dependence: SizeDependence, generator: ChipGenerator, stride: int,
    boxes: DatasetBoxes, planner, limit: int,
) -> dict:
    """The suggested values and how they cover this dataset with grid step ``stride`` chip px
    (vectorised check, no chips drawn)."""
    suggested = ChipGenerator(
        suggestion.scales, suggestion.valid_ranges, generator.chip_size, generator.stride,
        suggestion.neg_min_proposals, range_reference=suggestion.range_reference,
    )
    coverage = scale_coverage(boxes, planner.table.sizes, suggested, stride)
    return {
        "size_dependence": dependence.as_dict(),
        "config": {key: value for key, value in suggestion.config_items()},
        "target_chip_px": list(suggestion.target_chip_px),
        "typical_factors": list(suggestion.typical_factors),
        "scales": _scale_rows(suggested, coverage, boxes, planner.table.sizes),
        "uncovered": _uncovered(coverage, boxes, planner, limit),
        "yaml": suggestion.yaml(),
        "overrides": suggestion.override_line(),
    }


def analyze_training_set(
    cfg,
    planner: ChipPlanner,
    *,
    epoch: int = 0,
    suggest: bool = False,
    target_chip_px: Optional[Tuple[float, float]] = None,
    max_factor: float = 3.0,
    max_examples: int = 20,
    workers: int = 1,
) -> DatasetAnalysis:
    """Analyse the training set of ``planner`` (built from ``cfg``) with the chips of ``epoch``.

    Args:
        suggest: also propose scales and valid ranges (:func:`suggest_scales`).
        target_chip_px: (min, max) object size in chip px for the suggestion; default: the
            smallest and largest anchor size of ``cfg``.
        max_factor: largest finest-scale factor the suggestion may use.
        max_examples: boxes listed per "uncovered" category.
        workers: processes that generate the epoch's chips (same result for any number).
    """
    generator, table = planner.generator, planner.table
    boxes = DatasetBoxes.from_table(table)
    chips = chip_statistics(planner, boxes, epoch, workers)
    coverage = scale_coverage(boxes, table.sizes, generator, chips.stride)
    assignable = ~boxes.crowd
    sizes = boxes.shapes.sizes[assignable]
    num_images = len(table)
    images_with_boxes = np.zeros(num_images, bool)
    images_with_boxes[boxes.image_index[assignable]] = True

    scales = _scale_rows(generator, coverage, boxes, table.sizes)
    for s, row in enumerate(scales):
        row["boxes_valid_in_chips"] = int(chips.valid[:, s].sum())
        row["positive_chips"] = int(chips.positive[:, s].sum())
        row["negative_chips"] = int(chips.negative[:, s].sum())
        row["autofocus_chips"] = int(chips.focus[:, s].sum())
    uncovered = _uncovered(coverage, boxes, planner, max_examples)
    uncovered["valid_in_no_chip"] = _box_examples(~chips.valid.any(axis=1) & assignable, boxes, planner, max_examples)

    positive = chips.positive.sum(axis=1)
    negative = chips.negative.sum(axis=1)
    focus = chips.focus.sum(axis=1)
    single = single_scale_pixels(table.sizes, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)
    pyramid = pyramid_pixels(table.sizes, generator)
    padded = int(positive.sum() + negative.sum() + focus.sum()) * generator.chip_size**2  # batches pad chips to chip_size^2
    denominator = max(num_images, 1)
    report = {
        "config": {
            "datasets": list(table.dataset_names),
            "scales": [str(spec) for spec in generator.scales],
            "valid_ranges": [list(r.as_config()) for r in generator.valid_ranges],
            "chip_size": generator.chip_size,
            "chip_stride": chips.stride,
            "negative_proposal_files": list(cfg.SNIPER.NEG.PROPOSAL_FILES),
        },
        "images": {
            "count": num_images,
            "without_boxes": int(num_images - images_with_boxes.sum()),
            "longest_side": _percentiles(table.sizes.max(axis=1) if num_images else np.zeros(0), (10, 50, 90)),
        },
        "boxes": {"count": len(boxes), "crowd": int(boxes.crowd.sum()), "analysed": int(len(sizes))},
        "sizes": size_distribution(sizes),
        "scales": scales,
        "uncovered": uncovered,
        "chips": {
            "epoch": chips.epoch,
            "positive": int(positive.sum()),
            "negative": int(negative.sum()),
            "positive_per_image": float(positive.sum() / denominator),
            "negative_per_image": float(negative.sum() / denominator),
            "autofocus": int(focus.sum()),
            "autofocus_per_image": float(focus.sum() / denominator),
            "positive_per_image_percentiles": _percentiles(positive, (50, 90, 99, 100)),
            "images_without_chips": int(((positive + negative + focus) == 0).sum()),
        },
        "pixels": {
            "chips_per_image": float(chips.pixels.sum() / denominator),
            "padded_chips_per_image": float(padded / denominator),
            "single_scale_per_image": float(single.sum() / denominator),
            "single_scale_resize": [int(cfg.INPUT.MIN_SIZE_TEST), int(cfg.INPUT.MAX_SIZE_TEST)],
            "pyramid_per_image": float(pyramid.sum() / denominator),
            "chips_vs_single_scale": float(chips.pixels.sum() / max(single.sum(), 1)),
            "chips_vs_pyramid": float(chips.pixels.sum() / max(pyramid.sum(), 1)),
            "padded_chips_vs_single_scale": float(padded / max(single.sum(), 1)),
        },
    }
    if suggest:
        suggestion, dependence = suggest_for_planner(cfg, planner, target_chip_px, max_factor, boxes)
        report["suggestion"] = _suggestion_report(
            suggestion, dependence, generator, _widest_stride(cfg, generator), boxes, planner, max_examples
        )
    return DatasetAnalysis(report=report, sizes=sizes)


def _fmt_range(pair) -> str:
    lo, hi = pair
    return f"[{0 if lo == -1 else lo:g}, {'inf' if hi == -1 else format(hi, 'g')})"


def _fmt_percentiles(values: Dict[str, float], digits: int = 0) -> str:
    return "/".join(f"{v:.{digits}f}" for v in values.values()) if values else "-"


def _fmt_examples(title: str, entry: dict, total: int, shown: int = 5) -> List[str]:
    count = entry["count"]
    share = f" ({100.0 * count / total:.1f} % of {total})" if total else ""
    lines = [f"{title}: {count}{share}" + (", e.g.:" if count else "")]
    for ex in entry["examples"][:shown]:
        box = ", ".join(f"{v:g}" for v in ex["box_xyxy"])
        lines.append(
            f"  {ex['dataset']} image_id {ex['image_id']!r} box {ex['box_index']} [{box}] "
            f"sqrt(area) {ex['sqrt_area']:g} px ({ex['file_name']})"
        )
    return lines


def _scale_table(rows: List[dict], with_chips: bool) -> str:
    headers = ["scale", "factor p50", "valid range", "in range", "drive chips"]
    if with_chips:
        headers += ["valid in chips", "pos chips", "neg chips"]
    headers.append("driving boxes p5/p50/p95 chip px")
    body = []
    for row in rows:
        line = [row["scale"], f"{row['factor'].get('p50', float('nan')):.3g}", _fmt_range(row["valid_range"]),
                row["boxes_in_range"], row["boxes_driving_chips"]]
        if with_chips:
            line += [row["boxes_valid_in_chips"], row["positive_chips"], row["negative_chips"]]
        line.append(_fmt_percentiles(row["driving_box_chip_px"]))
        body.append(line)
    return tabulate(body, headers=headers, tablefmt="simple")


def format_report(report: dict) -> str:
    """The report of :func:`analyze_training_set` as text for the terminal."""
    cfg, images, boxes = report["config"], report["images"], report["boxes"]
    analysed = boxes["analysed"]
    sizes = report["sizes"]
    lines = [
        f"Training set {', '.join(cfg['datasets'])}: {images['count']} images ({images['without_boxes']} without "
        f"boxes), {boxes['count']} boxes ({boxes['crowd']} crowd, counted apart). Longest image side p10/p50/p90: "
        f"{_fmt_percentiles(images['longest_side'])} px.",
        f"Chips {cfg['chip_size']} px, grid stride {cfg['chip_stride']} px, epoch {report['chips']['epoch']}.",
        "",
        "Object sizes, sqrt(area) in original px (non-crowd boxes):",
        "  " + "  ".join(f"{k} {v:.1f}" for k, v in sizes["percentiles"].items()),
        "  COCO classes: " + ", ".join(
            f"{name} {100.0 * sizes['shares'][name]:.1f} % ({sizes['counts'][name]})"
            for name in ("small", "medium", "large")
        ) + "  (small < 32 <= medium < 96 <= large)",
        "",
        "Scales: boxes whose size is in the valid range, that drive positive chips (range and size rules,"
        " incl. fitting in a chip), and that are valid in some chip of the epoch:",
        _scale_table(report["scales"], with_chips=True),
        "",
    ]
    uncovered = report["uncovered"]
    lines += _fmt_examples(
        "Boxes in no valid range (never positives, ignored everywhere)", uncovered["in_no_valid_range"], analysed
    )
    lines += _fmt_examples("Boxes that drive no chip at any scale", uncovered["drive_no_chip"], analysed)
    lines += _fmt_examples(
        f"Boxes valid in no chip of epoch {report['chips']['epoch']}", uncovered["valid_in_no_chip"], analysed
    )
    chips, pixels = report["chips"], report["pixels"]
    negatives = (
        f"{chips['negative_per_image']:.2f} negative" if cfg["negative_proposal_files"]
        else "no negative chips (SNIPER.NEG.PROPOSAL_FILES is empty)"
    )
    if chips["autofocus"]:
        negatives += f", {chips['autofocus_per_image']:.2f} AutoFocus training"
    short, long_ = pixels["single_scale_resize"]
    lines += [
        "",
        f"Chips per image: {chips['positive_per_image']:.2f} positive (p50/p90/p99/max "
        f"{_fmt_percentiles(chips['positive_per_image_percentiles'], 1)}), {negatives}; "
        f"{chips['images_without_chips']} images get no chip.",
        "Pixels per image (Mpx; chips of the epoch vs. training on whole images):",
        tabulate(
            [
                ["chips", pixels["chips_per_image"] / 1e6, pixels["chips_vs_single_scale"]],
                [f"chips padded to {cfg['chip_size']}x{cfg['chip_size']} (as batched)",
                 pixels["padded_chips_per_image"] / 1e6, pixels["padded_chips_vs_single_scale"]],
                [f"single scale (shortest edge {short}, longest <= {long_})",
                 pixels["single_scale_per_image"] / 1e6, 1.0],
                ["whole pyramid (every training scale)", pixels["pyramid_per_image"] / 1e6,
                 pixels["pyramid_per_image"] / max(pixels["single_scale_per_image"], 1)],
            ],
            headers=["", "Mpx/image", "x single scale"],
            floatfmt=".3f",
        ),
    ]
    if "suggestion" in report:
        lines += ["", *_format_suggestion(report["suggestion"], analysed)]
    return "\n".join(lines)


def _format_suggestion(suggestion: dict, analysed: int) -> List[str]:
    low, high = suggestion["target_chip_px"]
    uncovered = suggestion["uncovered"]
    dep = suggestion["size_dependence"]
    short, long_ = dep["reference"]
    spread = (
        f"Resizing every image to {short}x{long_} (short side, long side cap) changes the spread of log "
        f"object sizes from {dep['spread_original']:.2f} to {dep['spread_normalised']:.2f} (slope of log size "
        f"on log image size {dep['slope']:.2f})"
    )
    if dep["follows"]:
        lines = [
            f"Object size follows image size: {spread}. Scales are therefore resolutions (short, max long) and "
            f"valid ranges are sqrt(area) in px of the image resized to {short}x{long_} "
            "(SNIPER.RANGE_REFERENCE); factor scales would keep the images' size differences.",
        ]
    else:
        lines = [f"Object size does not follow image size: {spread}. Scales are factors, ranges in original px."]
    lines += [
        f"Suggested scales and valid ranges (objects at {low:g}-{high:g} chip px; heuristic in "
        "sniper_d2/analysis/scale_suggestion.py):",
        _scale_table(suggestion["scales"], with_chips=False),
    ]
    lines += _fmt_examples("With these, boxes in no valid range", uncovered["in_no_valid_range"], analysed)
    lines += _fmt_examples(
        "With these, boxes that drive no chip (too thin or too elongated)", uncovered["drive_no_chip"], analysed
    )
    lines += [
        "Paste into your config:",
        suggestion["yaml"],
        "or append to the command line (train_net.py, this tool):",
        suggestion["overrides"],
        "Re-run this tool with those overrides to see the chips and pixels they cost.",
    ]
    return lines
