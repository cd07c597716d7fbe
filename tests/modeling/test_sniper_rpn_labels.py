"""Where anchors are ignored: SniperRPN labels on hand-built anchors and chip targets (chip px)."""
import pytest
import torch
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_proposal_generator
from detectron2.structures import Boxes, Instances

from sniper_d2.chip_instances import ChipInstances

IMAGE_SIZE = (64, 64)
INPUT_SHAPE = {"res4": ShapeSpec(channels=8, stride=16)}


@pytest.fixture
def build_rpn(tiny_cfg):
    def build(sniper=True, invalid_iou_thresh=0.3, boundary_thresh=-1, batch_size=256):
        cfg = tiny_cfg("C4", sniper=sniper)
        cfg.SNIPER.TRAIN.RPN_INVALID_IOU_THRESH = invalid_iou_thresh
        cfg.MODEL.RPN.BOUNDARY_THRESH = boundary_thresh
        cfg.MODEL.RPN.BATCH_SIZE_PER_IMAGE = batch_size
        return build_proposal_generator(cfg, INPUT_SHAPE)

    return build


def chip(boxes, valid, crowd=None):
    targets = ChipInstances(IMAGE_SIZE)
    targets.gt_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    targets.gt_classes = torch.zeros(len(targets.gt_boxes), dtype=torch.int64)
    targets.gt_valid = torch.tensor(valid, dtype=torch.bool)
    targets.gt_crowd = torch.tensor(crowd if crowd is not None else [False] * len(valid))
    return targets


def label(rpn, anchors, targets):
    labels, matched = rpn.label_and_sample_anchors([Boxes(torch.tensor(anchors))], [targets])
    return labels[0].tolist(), matched[0]


VALID = [0.0, 0.0, 10.0, 10.0]
INVALID = [20.0, 0.0, 30.0, 10.0]


def test_anchor_is_ignored_just_above_the_invalid_iou_and_negative_just_below(build_rpn):
    anchors = [VALID, [20.0, 0.0, 23.1, 10.0], [20.0, 0.0, 22.9, 10.0]]  # IoU 0.31 / 0.29
    labels, _ = label(build_rpn(), anchors, chip([VALID, INVALID], [True, False]))
    assert labels == [1, -1, 0]


def test_invalid_overlap_overrides_a_positive(build_rpn):
    invalid = [5.0, 0.0, 15.0, 10.0]  # IoU 1/3 with VALID
    anchors = [VALID, [-1.0, 0.0, 9.0, 10.0]]  # IoU 0.82 to VALID, 0.25 to the invalid box
    labels, _ = label(build_rpn(), anchors, chip([VALID, invalid], [True, False]))
    assert labels == [-1, 1]


@pytest.mark.parametrize("flagged_valid", [False, True])
def test_crowd_box_is_an_ignore_region_even_if_flagged_valid(build_rpn, flagged_valid):
    anchors = [VALID, INVALID, [40.0, 40.0, 50.0, 50.0]]
    targets = chip([VALID, INVALID], [True, flagged_valid], crowd=[False, True])
    labels, matched = label(build_rpn(), anchors, targets)
    assert labels == [1, -1, 0]
    assert matched[0].tolist() == VALID


def test_positives_regress_to_the_valid_box_not_to_an_earlier_invalid_one(build_rpn):
    anchors = [[0.0, 0.0, 10.0, 11.0], [40.0, 40.0, 50.0, 50.0]]
    labels, matched = label(build_rpn(), anchors, chip([INVALID, VALID], [False, True]))
    assert labels == [1, 0]
    assert matched[0].tolist() == VALID


def test_negative_chip_is_background_except_near_invalid_boxes(build_rpn):
    anchors = [VALID, [21.0, 0.0, 31.0, 10.0], [40.0, 40.0, 50.0, 50.0]]
    labels, matched = label(build_rpn(), anchors, chip([INVALID], [False]))
    assert labels == [0, -1, 0]
    assert torch.equal(matched, torch.zeros(3, 4))


def test_ignoring_happens_before_subsampling(build_rpn):
    """One positive slot: it must always go to the positive that is not near an invalid box."""
    rpn = build_rpn(batch_size=2)  # POSITIVE_FRACTION 0.5 -> at most one positive
    anchors = [VALID, [-1.0, 0.0, 9.0, 10.0]]  # both positive; IoU 0.33 / 0.25 to the invalid box
    targets = chip([VALID, [5.0, 0.0, 15.0, 10.0]], [True, False])
    for seed in range(10):
        torch.manual_seed(seed)
        assert label(rpn, anchors, targets)[0] == [-1, 1]


@pytest.mark.parametrize("boundary_thresh, expected", [(-1, [1, 0]), (0, [1, -1])])
def test_anchor_boundary_thresh_is_kept(build_rpn, boundary_thresh, expected):
    anchors = [VALID, [50.0, 50.0, 70.0, 70.0]]  # the second crosses the 64x64 chip border
    rpn = build_rpn(boundary_thresh=boundary_thresh)
    assert label(rpn, anchors, chip([VALID], [True]))[0] == expected


def test_threshold_comes_from_the_config(build_rpn):
    anchors = [VALID, [20.0, 0.0, 24.0, 10.0]]  # IoU 0.4 to the invalid box
    targets = chip([VALID, INVALID], [True, False])
    assert label(build_rpn(invalid_iou_thresh=0.3), anchors, targets)[0] == [1, -1]
    assert label(build_rpn(invalid_iou_thresh=0.5), anchors, targets)[0] == [1, 0]


def test_plain_instances_are_labelled_exactly_as_stock(build_rpn):
    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(300, 2, generator=generator) * 50
    anchors = torch.cat([xy, xy + 4 + torch.rand(300, 2, generator=generator) * 20], dim=1)
    targets = Instances(IMAGE_SIZE, gt_boxes=Boxes(torch.tensor([VALID, [12.0, 30.0, 40.0, 60.0]])))
    results = []
    for rpn in (build_rpn(sniper=False, batch_size=16), build_rpn(sniper=True, batch_size=16)):
        torch.manual_seed(0)
        results.append(rpn.label_and_sample_anchors([Boxes(anchors)], [targets]))
    (stock_labels, stock_boxes), (sniper_labels, sniper_boxes) = results
    assert torch.equal(stock_labels[0], sniper_labels[0])
    assert torch.equal(stock_boxes[0], sniper_boxes[0])
    assert (stock_labels[0] == 1).sum() > 0


def test_missing_chip_fields_are_reported_with_the_image(build_rpn):
    targets = chip([VALID], [True])
    targets.remove("gt_crowd")
    with pytest.raises(ValueError, match=r"image 1 .*gt_crowd"):
        build_rpn().label_and_sample_anchors(
            [Boxes(torch.tensor([VALID]))], [chip([VALID], [True]), targets]
        )


def test_config_errors_say_what_to_do(build_rpn, tiny_cfg):
    with pytest.raises(ValueError, match="RPN_INVALID_IOU_THRESH"):
        build_rpn(invalid_iou_thresh=1.5)
    cfg = tiny_cfg("C4", sniper=True)
    del cfg["SNIPER"]
    with pytest.raises(KeyError, match="add_sniper_config"):
        build_proposal_generator(cfg, INPUT_SHAPE)
