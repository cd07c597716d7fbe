"""Per-scale valid-range filter and the cross-scale merge."""
import math

import pytest
import torch
from detectron2.structures import Boxes, Instances

from sniper_d2.chips.valid_range import ValidRange
from sniper_d2.inference import filter_by_valid_range, merge_scale_detections

IMAGE_SIZE = (400, 600)


def detections(boxes, scores, classes, **extra):
    instances = Instances(
        IMAGE_SIZE,
        pred_boxes=Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)),
        scores=torch.tensor(scores, dtype=torch.float32),
        pred_classes=torch.tensor(classes, dtype=torch.int64),
    )
    for name, value in extra.items():
        instances.set(name, value)
    return instances


def squares(sides):
    """Square boxes with the given side (= sqrt(area)), original px, disjoint from each other."""
    boxes, x = [], 0.0
    for side in sides:
        boxes.append([x, 0.0, x + side, side])
        x += side + 10
    return boxes


def test_range_filter_bounds_are_open_below_closed_above():
    sides = [31.0, 32.0, 33.0, 89.0, 90.0, 91.0]
    found = detections(squares(sides), [0.9] * 6, [0] * 6)
    kept = filter_by_valid_range(found, ValidRange.from_config((32, 90)))
    assert sorted(kept.pred_boxes.area().sqrt().tolist()) == [33.0, 89.0, 90.0]


def test_range_filter_unbounded_ends():
    sides = [0.5, 32.0, 500.0]
    found = detections(squares(sides), [0.9] * 3, [0] * 3)
    below = filter_by_valid_range(found, ValidRange.from_config((-1, 32)))
    assert below.pred_boxes.area().sqrt().tolist() == [0.5, 32.0]
    above = filter_by_valid_range(found, ValidRange.from_config((32, -1)))
    assert above.pred_boxes.area().sqrt().tolist() == [500.0]
    everything = filter_by_valid_range(found, ValidRange.from_config((-1, -1)))
    assert len(everything) == 3


def test_range_filter_measures_sqrt_area_not_side():
    # 16 x 64 px: sqrt(area) = 32, longest side 64.
    found = detections([[0.0, 0.0, 16.0, 64.0]], [0.9], [0])
    assert len(filter_by_valid_range(found, ValidRange.from_config((-1, 32)))) == 1
    assert len(filter_by_valid_range(found, ValidRange.from_config((32, 64)))) == 0


def test_each_scale_contributes_only_its_range():
    small, large = [10.0, 10.0, 30.0, 30.0], [100.0, 100.0, 300.0, 300.0]
    fine = detections([small, large], [0.8, 0.6], [1, 1])
    coarse = detections([small, large], [0.7, 0.9], [1, 1])
    merged = merge_scale_detections(
        [fine, coarse], [ValidRange.from_config((-1, 50)), ValidRange.from_config((50, -1))]
    )
    assert merged.pred_boxes.tensor.tolist() == [large, small]
    assert merged.scores.tolist() == pytest.approx([0.9, 0.8])


def test_soft_nms_merge_decays_duplicates_across_scales():
    box, shifted = [0.0, 0.0, 100.0, 100.0], [0.0, 0.0, 100.0, 50.0]  # IoU 0.5
    all_sizes = [ValidRange.from_config((-1, -1))] * 2
    merged = merge_scale_detections(
        [detections([box], [0.9], [2]), detections([shifted, shifted], [0.8, 0.8], [2, 3])],
        all_sizes,
        method="soft_nms",
        soft_nms_sigma=0.55,
    )
    assert merged.pred_classes.tolist() == [2, 3, 2]
    assert merged.scores.tolist() == pytest.approx([0.9, 0.8, 0.8 * math.exp(-0.25 / 0.55)])


def test_hard_nms_merge_removes_duplicates_and_keeps_scores():
    box, shifted, apart = [0.0, 0.0, 100.0, 100.0], [0.0, 0.0, 100.0, 60.0], [0.0, 0.0, 100.0, 40.0]
    all_sizes = [ValidRange.from_config((-1, -1))] * 2
    merged = merge_scale_detections(
        [detections([box], [0.9], [2]), detections([shifted, apart], [0.8, 0.7], [2, 2])],
        all_sizes,
        method="nms",
        nms_thresh=0.5,
    )
    # IoU(box, shifted) = 0.6 > 0.5 is suppressed; IoU(box, apart) = 0.4 survives.
    assert merged.pred_boxes.tensor.tolist() == [box, apart]
    assert merged.scores.tolist() == pytest.approx([0.9, 0.7])


@pytest.mark.parametrize("method", ["soft_nms", "nms"])
def test_score_threshold_and_top_n(method):
    scores = torch.linspace(0.0005, 0.9, 300).tolist()
    sides = [5.0] * 300
    found = detections(squares(sides), scores, [i % 4 for i in range(300)])
    merged = merge_scale_detections(
        [found], [ValidRange.from_config((-1, -1))], method=method, score_thresh=0.001, max_detections=50
    )
    assert merged.scores.tolist() == pytest.approx(sorted(scores, reverse=True)[:50])
    everything = merge_scale_detections(
        [found], [ValidRange.from_config((-1, -1))], method=method, score_thresh=0.001, max_detections=1000
    )
    assert len(everything) == 299 and everything.scores.min() >= 0.001


@pytest.mark.parametrize("method", ["soft_nms", "nms"])
def test_extra_fields_follow_their_detections(method):
    masks = torch.arange(3, dtype=torch.float32)[:, None, None].expand(3, 4, 4).clone()
    found = detections(squares([5.0, 6.0, 7.0]), [0.3, 0.9, 0.5], [0, 0, 0], pred_masks=masks)
    merged = merge_scale_detections([found], [ValidRange.from_config((-1, -1))], method=method)
    assert merged.pred_masks[:, 0, 0].tolist() == [1.0, 2.0, 0.0]


@pytest.mark.parametrize("method", ["soft_nms", "nms"])
def test_no_detections_gives_empty_instances_with_all_fields(method):
    empty = detections([], [], [])
    out_of_range = detections([[0.0, 0.0, 300.0, 300.0]], [0.9], [0])
    merged = merge_scale_detections(
        [empty, out_of_range],
        [ValidRange.from_config((-1, -1)), ValidRange.from_config((-1, 100))],
        method=method,
    )
    assert len(merged) == 0 and merged.image_size == IMAGE_SIZE
    assert merged.pred_boxes.tensor.shape == (0, 4)
    assert merged.scores.dtype == torch.float32 and merged.pred_classes.dtype == torch.int64


def test_rejects_mismatched_ranges_and_unknown_method():
    found = detections(squares([5.0]), [0.9], [0])
    with pytest.raises(ValueError, match="one valid range per test scale"):
        merge_scale_detections([found, found], [ValidRange()])
    with pytest.raises(ValueError, match="soft_nms"):
        merge_scale_detections([found], [ValidRange()], method="softnms")
