"""SniperAutoFocusRCNN: Detectron2's R-CNN plus the FocusPixel branch of the demo AutoFocus config,
on the tiny R-18 FPN of conftest (CPU, seconds): its training loss, its maps, its training run."""
import copy
import functools
import json
import math

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage
from torch.nn import functional as F

import sniper_d2.cli.train as cli_train
from sniper_d2 import model_zoo
from sniper_d2.config import check_sniper_config
from sniper_d2.modeling import SniperAutoFocusRCNN, focus_pixel_labels
from sniper_test_data import register_dataset, tiny_records

from .conftest import IMAGE_SIZES, batched_inputs, model_pair, tiny_cfg, train_step

DEMO = "demo/sniper_autofocus_shapes_R18_FPN.yaml"
DETECTRON2_LOSSES = {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc"}


def autofocus_cfg():
    """conftest's tiny SNIPER FPN as a SniperAutoFocusRCNN with the demo config's branch (p3)."""
    cfg = tiny_cfg("FPN", sniper=True)
    cfg.MODEL.META_ARCHITECTURE = "SniperAutoFocusRCNN"
    cfg.SNIPER.AUTOFOCUS = model_zoo.get_config(DEMO).SNIPER.AUTOFOCUS.clone()
    return cfg


@functools.lru_cache(maxsize=None)
def _built_autofocus():
    """The tiny AutoFocus model with the weights of conftest's tiny SNIPER model (focus head aside)."""
    torch.manual_seed(0)
    model = build_model(autofocus_cfg())
    _, sniper = model_pair("FPN")
    missing, unexpected = model.load_state_dict(sniper.state_dict(), strict=False)
    assert not unexpected and missing and all(name.startswith("focus_head.") for name in missing)
    return model


@pytest.fixture
def model():
    return copy.deepcopy(_built_autofocus()).train()


def chip_targets_with_a_crowd_box(all_valid_chip_targets):
    """conftest's chip targets; the small box (12 x 10 px) of image 1 is crowd."""
    all_valid_chip_targets[1].gt_crowd = torch.tensor([False, True])
    return all_valid_chip_targets


def expected_labels(targets, grid_size, use_crowd=True):
    sizes = model_zoo.get_config(DEMO).SNIPER.AUTOFOCUS
    return torch.stack([
        focus_pixel_labels(t.gt_boxes.tensor, t.gt_crowd if use_crowd else None, t.image_size, grid_size, 8,
                           sizes.DC_LOW, sizes.SMALL_THRESH, sizes.DC_HIGH)
        for t in targets
    ])


def focus_logits(model, inputs):
    """The branch's logits on the padded batch, computed apart from the model's forward."""
    with torch.no_grad():
        return model.focus_head(model.backbone(model.preprocess_image(inputs).tensor))


def test_demo_config_builds_an_autofocus_model_on_p3():
    cfg = model_zoo.get_config(DEMO)
    cfg.DATASETS.TRAIN = cfg.DATASETS.TEST = ()
    check_sniper_config(cfg)
    torch.manual_seed(0)
    model = build_model(cfg)
    assert isinstance(model, SniperAutoFocusRCNN)
    assert model.focus_stride == 8 and model.focus_head.in_feature == "p3"
    assert model.focus_head.conv.out_channels == 64


def test_training_adds_loss_focus_and_leaves_detectron2s_losses_unchanged(model, all_valid_chip_targets):
    _, sniper = model_pair("FPN")
    targets = chip_targets_with_a_crowd_box(all_valid_chip_targets)
    stock_losses, _, _ = train_step(sniper, targets, ())
    losses, grads, logged = train_step(model, targets, ("sniper/focus_pixels_per_chip",))
    assert stock_losses.keys() == DETECTRON2_LOSSES and losses.keys() == DETECTRON2_LOSSES | {"loss_focus"}
    for name in DETECTRON2_LOSSES:
        assert torch.equal(losses[name], stock_losses[name]), name
    assert grads["focus_head.predictor.weight"].abs().sum() > 0

    grid_size = focus_logits(model, batched_inputs(targets)).shape[-2:]
    assert tuple(grid_size) == (12, 12)  # the batch pads to 96 x 96 px; stride 8
    labels = expected_labels(targets, grid_size)
    assert not torch.equal(labels, expected_labels(targets, grid_size, use_crowd=False))  # the crowd box counts
    assert logged["sniper/focus_pixels_per_chip"] == (labels == 1).sum().item() / 2 > 0


def test_loss_focus_is_the_weighted_mean_cross_entropy_over_labelled_cells(model, all_valid_chip_targets):
    model.focus_loss_weight = 2.5
    targets = chip_targets_with_a_crowd_box(all_valid_chip_targets)
    inputs = batched_inputs(targets)
    with EventStorage():
        loss = model(inputs)["loss_focus"]
    logits = focus_logits(model, inputs)
    labels = expected_labels(targets, logits.shape[-2:])
    labelled = labels >= 0
    assert 0 < labelled.sum() < labels.numel()
    expected = 2.5 * F.binary_cross_entropy_with_logits(logits[labelled], labels[labelled].float())
    assert torch.allclose(loss, expected, rtol=1e-5)


def test_objects_too_small_for_the_ground_truth_are_focus_pixels_too(model, all_valid_chip_targets):
    # a 3 x 5 px object (sqrt(area) 3.9, a FocusPixel size) that the chip mapper left out of the
    # detector's ground truth for its 3 px side: its cells are positive, not background
    inputs = batched_inputs(all_valid_chip_targets)
    without = model._focus_labels(inputs[0], (12, 12), torch.device("cpu"))
    inputs[0]["sniper_small_boxes"] = torch.tensor([[65.0, 2.0, 68.0, 7.0]])
    with_small = model._focus_labels(inputs[0], (12, 12), torch.device("cpu"))
    assert without[0, 8] == 0 and with_small[0, 8] == 1
    changed = (with_small != without).nonzero().tolist()
    assert changed == [[0, 8]]  # px 65-68 x 2-7: cell (0, 8) only
    inputs[0]["sniper_small_boxes"] = torch.zeros((0, 4))
    assert torch.equal(model._focus_labels(inputs[0], (12, 12), torch.device("cpu")), without)


def test_no_labelled_cell_gives_a_zero_loss_still_in_the_graph(model, all_valid_chip_targets):
    """One crowd box over each whole chip: every cell is don't care."""
    for chip in all_valid_chip_targets:
        h, w = chip.image_size
        chip.gt_boxes.tensor[0] = torch.tensor([0.0, 0.0, w, h])
        chip.gt_crowd = torch.ones(len(chip), dtype=torch.bool)
        chip.gt_valid = torch.zeros(len(chip), dtype=torch.bool)
    losses, grads, logged = train_step(model, all_valid_chip_targets, ("sniper/focus_pixels_per_chip",))
    assert losses["loss_focus"] == 0 and logged["sniper/focus_pixels_per_chip"] == 0
    assert torch.count_nonzero(grads["focus_head.predictor.weight"]) == 0  # reached by backward, zero


def test_loss_focus_decreases_under_plain_sgd_on_a_fixed_batch(model, all_valid_chip_targets):
    """SGD on loss_focus alone, through the head and the backbone (the tiny detector's own losses
    diverge under plain SGD without the demo's gradient clipping)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    focus_losses = []
    for step in range(6):
        torch.manual_seed(step)
        with EventStorage():
            loss = model(batched_inputs(all_valid_chip_targets))["loss_focus"]
        focus_losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(b < a for a, b in zip(focus_losses, focus_losses[1:])), focus_losses
    assert focus_losses[-1] < 0.7 * focus_losses[0], focus_losses


def test_training_inputs_without_instances_fail_naming_them(model, all_valid_chip_targets):
    inputs = batched_inputs(all_valid_chip_targets)
    del inputs[1]["instances"]
    with EventStorage(), pytest.raises(ValueError, match=r"inputs \[1\] of the batch have none"):
        model(inputs)


@pytest.mark.parametrize("do_postprocess", [True, False])
def test_inference_with_focus_is_inference_plus_cropped_maps(model, do_postprocess):
    model.eval()
    generator = torch.Generator().manual_seed(3)
    sizes = ((90, 75), IMAGE_SIZES[1])  # 90 x 75: not whole cells of 8 px
    inputs = [{"image": torch.randint(0, 256, (3, h, w), generator=generator, dtype=torch.uint8)} for h, w in sizes]
    with torch.no_grad():
        plain = model.inference(inputs, do_postprocess=do_postprocess)
        results, maps = model.inference_with_focus(inputs, do_postprocess=do_postprocess)
    assert not model.backbone._forward_hooks
    assert len(results) == len(plain) == 2
    for got, want in zip(results, plain):
        got, want = (got["instances"], want["instances"]) if do_postprocess else (got, want)
        assert len(want) > 0 and got.get_fields().keys() == want.get_fields().keys()
        for name, value in want.get_fields().items():
            value, other = getattr(value, "tensor", value), getattr(got.get(name), "tensor", got.get(name))
            assert torch.equal(other, value), name
    assert [tuple(m.shape) for m in maps] == [(12, 10), (8, 12)]  # ceil(px / 8)
    probabilities = focus_logits(model, inputs).sigmoid()
    for focus_map, probs in zip(maps, probabilities):
        assert focus_map.dtype == torch.float32 and 0 <= focus_map.min() and focus_map.max() <= 1
        assert torch.equal(focus_map, probs[: focus_map.shape[0], : focus_map.shape[1]])


def test_unknown_in_feature_or_head_fails_naming_the_key():
    cfg = autofocus_cfg()
    cfg.SNIPER.AUTOFOCUS.IN_FEATURE = "res4"
    with pytest.raises(ValueError, match=r"SNIPER.AUTOFOCUS.IN_FEATURE 'res4' .*\['p2', 'p3', 'p4', 'p5', 'p6'\]"):
        build_model(cfg)
    cfg = autofocus_cfg()
    cfg.SNIPER.AUTOFOCUS.HEAD_NAME = "NoSuchHead"
    with pytest.raises(KeyError, match="SNIPER.AUTOFOCUS.HEAD_NAME 'NoSuchHead' .*FocusPixelHead"):
        build_model(cfg)


def test_config_without_sniper_keys_fails_with_the_fix():
    cfg = get_cfg()
    cfg.MODEL.META_ARCHITECTURE = "SniperAutoFocusRCNN"
    with pytest.raises(KeyError, match="add_sniper_config"):
        build_model(cfg)


def test_train_net_trains_the_demo_autofocus_config(tmp_path, monkeypatch):
    name = register_dataset("sniper_test_autofocus", tiny_records(tmp_path, num_images=6, seed=1))
    monkeypatch.chdir(tmp_path)  # the demo's relative OUTPUT_DIR goes here
    cli_train.run([
        "--config-file", model_zoo.get_config_file(DEMO),
        "DATASETS.TRAIN", f"('{name}',)", "DATASETS.TEST", "()", "SOLVER.MAX_ITER", "2",
        "SOLVER.IMS_PER_BATCH", "4", "DATALOADER.NUM_WORKERS", "0", "SNIPER.CHIP_SIZE", "64",
        "SNIPER.TRAIN.SCALES", "(2.0, 1.0, 'longest:64')", "SNIPER.TRAIN.VALID_RANGES", "((-1, 16), (8, 40), (32, -1))",
        "SNIPER.TRAIN.CHIP_STRIDE", "8", "SNIPER.TRAIN.MIN_BOX_SIZE", "2",
    ])
    output = tmp_path / "output" / "demo_autofocus"
    assert (output / "model_final.pth").is_file()
    last = [json.loads(line) for line in (output / "metrics.json").read_text().splitlines()][-1]
    assert math.isfinite(last["loss_focus"]) and last["sniper/focus_pixels_per_chip"] >= 0
