"""Whole tiny Faster R-CNN models: SNIPER heads against stock Detectron2 heads.

With every box valid and an unbounded valid range, SNIPER labelling is stock labelling, so
losses, gradients and logged sample counts must be bit-identical on the same inputs and seeds.
"""
import math

import pytest
import torch
from detectron2.utils.events import EventStorage

from sniper_d2.chip_instances import ChipInstances

from .conftest import train_step

LOGGED = ("rpn/num_pos_anchors", "rpn/num_neg_anchors", "roi_head/num_fg_samples",
          "roi_head/num_bg_samples")


@pytest.fixture(name="train_step")
def train_step_fixture():
    """``train_step(model, targets, seed=5)``: losses, parameter gradients and the logged sample counts."""
    return lambda model, targets, seed=5: train_step(model, targets, LOGGED, seed)


def assert_identical_steps(step_a, step_b):
    (losses_a, grads_a, logged_a), (losses_b, grads_b, logged_b) = step_a, step_b
    assert losses_a.keys() == losses_b.keys()
    for name in losses_a:
        assert torch.equal(losses_a[name], losses_b[name]), name
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 0
    for name in grads_a:
        assert torch.equal(grads_a[name], grads_b[name]), name
    assert logged_a == logged_b


@pytest.mark.parametrize("seed", [5, 11])
def test_all_valid_chip_targets_train_exactly_as_stock(
    model_pair, train_step, plain_targets, all_valid_chip_targets, seed
):
    stock, sniper = model_pair
    stock_step = train_step(stock, plain_targets, seed)
    assert stock_step[2]["rpn/num_pos_anchors"] > 0 and stock_step[2]["roi_head/num_fg_samples"] > 0
    assert_identical_steps(stock_step, train_step(sniper, all_valid_chip_targets, seed))


def test_plain_instances_train_exactly_as_stock(model_pair, train_step, plain_targets):
    stock, sniper = model_pair
    assert_identical_steps(train_step(stock, plain_targets), train_step(sniper, plain_targets))


def test_chip_labels_reach_the_heads_through_the_model(
    model_pair, train_step, plain_targets, all_valid_chip_targets
):
    """All boxes crowd: no positive anchor, no foreground proposal, no box-regression loss."""
    stock, sniper = model_pair
    for chip in all_valid_chip_targets:
        chip.gt_valid = torch.zeros(len(chip), dtype=torch.bool)
        chip.gt_crowd = torch.ones(len(chip), dtype=torch.bool)
    losses, _, logged = train_step(sniper, all_valid_chip_targets)
    assert logged["rpn/num_pos_anchors"] == 0 and logged["roi_head/num_fg_samples"] == 0
    assert logged["rpn/num_neg_anchors"] > 0 and logged["roi_head/num_bg_samples"] > 0
    assert losses["loss_rpn_loc"] == 0 and losses["loss_box_reg"] == 0
    assert train_step(stock, plain_targets)[2]["rpn/num_pos_anchors"] > 0


def bounded_chips(all_valid_chip_targets):
    """A bounded range, an invalid box and a crowd box per chip: every SNIPER rule in play."""
    targets = []
    for chip in all_valid_chip_targets:
        bounded = ChipInstances(chip.image_size, valid_range=(6.0, 60.0))
        for name, value in chip.get_fields().items():
            bounded.set(name, value.clone() if torch.is_tensor(value) else value)
        bounded.gt_valid[0] = False
        bounded.gt_valid[-1] = False
        bounded.gt_crowd[-1] = True
        targets.append(bounded)
    return targets


def test_bfloat16_autocast_training_step_is_finite(
    model_pair, batched_inputs, all_valid_chip_targets
):
    _, sniper = model_pair
    torch.manual_seed(3)
    with EventStorage() as storage, torch.autocast("cpu", dtype=torch.bfloat16):
        losses = sniper(batched_inputs(bounded_chips(all_valid_chip_targets)))
        logged = storage.latest()
    sum(losses.values()).backward()
    assert set(losses) == {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc"}
    assert all(math.isfinite(v.item()) for v in losses.values())
    assert all(torch.isfinite(p.grad).all() for p in sniper.parameters() if p.grad is not None)
    assert logged["roi_head/num_fg_samples"][0] + logged["roi_head/num_bg_samples"][0] > 0


def test_inference_is_stock(model_pair, batched_inputs):
    stock, sniper = model_pair
    stock.eval()
    sniper.eval()
    with torch.no_grad():
        expected = stock(batched_inputs([None, None]))
        actual = sniper(batched_inputs([None, None]))
    assert len(expected) == len(actual) == 2
    for exp, act in zip(expected, actual):
        exp, act = exp["instances"], act["instances"]
        assert len(exp) > 0
        assert torch.equal(exp.pred_boxes.tensor, act.pred_boxes.tensor)
        assert torch.equal(exp.scores, act.scores)
        assert torch.equal(exp.pred_classes, act.pred_classes)
