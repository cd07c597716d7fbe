"""SNIPER ROI-head labels on hand-built proposals and chip targets (chip px), C4 and FPN heads."""
import math

import pytest
import torch
from detectron2.layers import ShapeSpec
from detectron2.modeling.roi_heads import build_roi_heads
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from sniper_d2.chip_instances import ChipInstances

IMAGE_SIZE = (64, 64)
INPUT_SHAPES = {
    "C4": {"res4": ShapeSpec(channels=256, stride=16)},
    "FPN": {f"p{i}": ShapeSpec(channels=16, stride=2**i) for i in range(2, 6)},
}
BACKGROUND = 3  # NUM_CLASSES of the tiny config


@pytest.fixture
def build_heads(tiny_cfg, arch):
    def build(sniper=True, append_gt=False):
        cfg = tiny_cfg(arch, sniper=sniper)
        cfg.MODEL.ROI_HEADS.PROPOSAL_APPEND_GT = append_gt
        cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 512  # with POSITIVE_FRACTION 1: keep them all
        cfg.MODEL.ROI_HEADS.POSITIVE_FRACTION = 1.0
        return build_roi_heads(cfg, INPUT_SHAPES[arch]).train()

    return build


def chip(boxes, classes, valid, crowd=None, valid_range=(0.0, math.inf)):
    targets = ChipInstances(IMAGE_SIZE, valid_range=valid_range)
    targets.gt_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    targets.gt_classes = torch.tensor(classes, dtype=torch.int64)
    targets.gt_valid = torch.tensor(valid, dtype=torch.bool)
    targets.gt_crowd = torch.tensor(crowd if crowd is not None else [False] * len(valid))
    return targets


def proposals(boxes):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    logits = torch.zeros(len(boxes))
    return Instances(IMAGE_SIZE, proposal_boxes=Boxes(boxes), objectness_logits=logits)


def sample(heads, proposals_per_image, targets_per_image):
    with EventStorage() as storage:
        sampled = heads.label_and_sample_proposals(proposals_per_image, targets_per_image)
        return sampled, storage.latest()


def labels_by_box(sampled, appended=False):
    """{box: class} of the sampled rows; ``appended``: only ground truth added as proposals."""
    is_gt = sampled.objectness_logits > 20  # appended ground truth has logit ~23
    return {
        tuple(box): cls
        for box, cls, gt in zip(
            sampled.proposal_boxes.tensor.tolist(), sampled.gt_classes.tolist(), is_gt.tolist()
        )
        if gt == appended
    }


def square(x, y, side):
    return (x, y, x + side, y + side)


def test_proposals_outside_the_valid_range_take_no_part(build_heads):
    """Range [16, 32): 15.5 out, 16 in, 31.5 in, 32 out, even when it would be foreground."""
    targets = chip([square(0.0, 0.0, 20.0)], [1], [True], valid_range=(16.0, 32.0))
    boxes = [square(0.0, 0.0, 20.0), square(0.0, 0.0, 15.5), square(30.0, 30.0, 16.0),
             square(30.0, 30.0, 32.0), square(30.0, 30.0, 31.5)]
    (sampled,), _ = sample(build_heads(), [proposals(boxes)], [targets])
    assert labels_by_box(sampled) == {boxes[0]: 1, boxes[2]: BACKGROUND, boxes[4]: BACKGROUND}


@pytest.mark.parametrize("append_gt", [True, False])
def test_ground_truth_joins_the_proposals_only_when_in_range(build_heads, append_gt):
    valid_in_range = square(0.0, 0.0, 20.0)
    invalid_too_big = square(24.0, 0.0, 40.0)
    invalid_in_range = square(0.0, 30.0, 24.0)
    crowd_in_range = square(40.0, 40.0, 20.0)
    targets = chip(
        [valid_in_range, invalid_too_big, invalid_in_range, crowd_in_range],
        [0, 1, 2, 1],
        [True, False, False, False],
        crowd=[False, False, False, True],
        valid_range=(16.0, 32.0),
    )
    (sampled,), _ = sample(build_heads(append_gt=append_gt), [proposals([])], [targets])
    expected = {valid_in_range: 0, invalid_in_range: 2} if append_gt else {}
    assert labels_by_box(sampled, appended=True) == expected
    assert len(sampled) == len(expected)


def test_negative_chip_is_background_except_near_invalid_boxes(build_heads):
    """Classes come from every kept box: an in-range proposal on an invalid box takes its class."""
    invalid = square(10.0, 10.0, 20.0)
    targets = chip([invalid], [2], [False])
    on_invalid, near_invalid = square(11.0, 10.0, 20.0), square(22.0, 10.0, 20.0)
    far = square(40.0, 40.0, 20.0)
    (sampled,), _ = sample(build_heads(), [proposals([on_invalid, near_invalid, far])], [targets])
    assert labels_by_box(sampled) == {on_invalid: 2, near_invalid: BACKGROUND, far: BACKGROUND}
    foreground = sampled.gt_classes == 2
    assert sampled.gt_boxes.tensor[foreground].tolist() == [list(invalid)]


def test_crowd_box_is_never_a_positive(build_heads):
    valid, crowd = square(0.0, 0.0, 20.0), square(30.0, 30.0, 30.0)
    targets = chip([valid, crowd], [0, 1], [True, False], crowd=[False, True])
    on_crowd, near_crowd = square(31.0, 31.0, 29.0), square(45.0, 30.0, 30.0)  # IoU 0.93 / 0.33
    boxes = [square(1.0, 0.0, 20.0), on_crowd, near_crowd]
    (sampled,), _ = sample(build_heads(append_gt=True), [proposals(boxes)], [targets])
    assert labels_by_box(sampled) == {boxes[0]: 0, near_crowd: BACKGROUND}
    assert labels_by_box(sampled, appended=True) == {valid: 0}


def test_chip_without_boxes_trains_background(build_heads):
    boxes = [square(0.0, 0.0, 20.0), square(30.0, 30.0, 10.0)]
    targets = chip([], [], [], valid_range=(0.0, 25.0))
    (sampled,), _ = sample(build_heads(append_gt=True), [proposals(boxes)], [targets])
    assert labels_by_box(sampled) == {boxes[0]: BACKGROUND, boxes[1]: BACKGROUND}
    assert not sampled.has("gt_boxes")


def test_sample_counts_are_logged_per_image(build_heads):
    first = chip([square(0.0, 0.0, 20.0)], [1], [True])
    second = chip([], [], [])
    batch = [proposals([square(0.0, 0.0, 20.0), square(40.0, 40.0, 20.0)]),
             proposals([square(0.0, 0.0, 20.0)])]
    _, logged = sample(build_heads(), batch, [first, second])
    assert logged["roi_head/num_fg_samples"][0] == 0.5
    assert logged["roi_head/num_bg_samples"][0] == 1.0


def test_plain_image_in_a_chip_batch_is_labelled_as_stock(build_heads):
    plain = Instances(IMAGE_SIZE, gt_boxes=Boxes(torch.tensor([square(0.0, 0.0, 20.0)])),
                      gt_classes=torch.tensor([1]))
    boxes = [square(1.0, 1.0, 20.0), square(30.0, 30.0, 4.0), square(0.0, 0.0, 60.0)]
    (stock,), _ = sample(build_heads(sniper=False, append_gt=True), [proposals(boxes)], [plain])
    bounded = chip([square(30.0, 30.0, 10.0)], [0], [True], valid_range=(8.0, 12.0))
    (mixed, _), _ = sample(
        build_heads(append_gt=True), [proposals(boxes), proposals(boxes)], [plain, bounded]
    )
    for appended in (False, True):
        assert labels_by_box(mixed, appended) == labels_by_box(stock, appended)


def test_bad_chip_targets_are_reported_with_the_image(build_heads):
    good = chip([square(0.0, 0.0, 20.0)], [1], [True])
    missing_valid = chip([square(0.0, 0.0, 20.0)], [1], [True])
    missing_valid.remove("gt_valid")
    with pytest.raises(ValueError, match=r"image 1 .*gt_valid"):
        sample(build_heads(), [proposals([]), proposals([])], [good, missing_valid])
    empty_range = chip([square(0.0, 0.0, 20.0)], [1], [True], valid_range=(30.0, 30.0))
    with pytest.raises(ValueError, match=r"image 0 .*valid_range"):
        sample(build_heads(), [proposals([])], [empty_range])
