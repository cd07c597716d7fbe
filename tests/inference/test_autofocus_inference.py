"""AutoFocus inference (SniperMultiScaleInference with autofocus): coarse to fine, finer scales only on
the FocusChips of the coarser scale's map, detections cut by a chip edge inside the image dropped,
the same results as plain multi-scale inference when nothing is pruned, pixel accounting, tiling,
masks, errors, and SniperPredictor running it from a config."""
import math

import cv2
import numpy as np
import pytest
import torch
from detectron2.layers import ShapeSpec
from detectron2.modeling import META_ARCH_REGISTRY, GeneralizedRCNN
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Boxes, Instances
from torch import nn
from torch.nn import functional as F

from sniper_d2.inference import SniperMultiScaleInference, SniperPredictor, scale_test_inputs
from sniper_d2.inference.autofocus import FocusMap, PixelCounts
from sniper_d2.inference.tiling import Tile, region_tile, region_tile_grid, tile_grid

from .conftest import tiny_faster_rcnn_cfg

STRIDE = 8  # px of the fake model's input per FocusPixel cell
HEIGHT, WIDTH = 200, 320  # original px of the test image
SCALES = [2.0, 1.0, 0.5]  # finest first
# each object size (sqrt(area), original px) is kept at one scale only
RANGES = [(-1, 12), (12, 40), (40, -1)]


class FakeBackbone:
    def output_shape(self):
        return {"p4": ShapeSpec(channels=1, stride=STRIDE)}


class FocusBlobDetector(nn.Module):
    """Stands in for a SniperAutoFocusRCNN (the contract of /work/notes/autofocus_interface.md) that
    sees exactly what it is given: one class-0 detection (score 0.9) per bright blob (> 128) of
    channel 0 of its input, and FocusPixel probability 1 in each cell of ``STRIDE`` px holding a
    bright px of channel 1 (else 0.05). Boxes in the input's px, post-processed to its
    ``height``/``width`` as Detectron2 does; with ``mask_on`` an all-ones 4x4 mask per box.
    Records every call's inputs in ``calls`` (one list of input dicts per call)."""

    focus_stride = STRIDE

    def __init__(self, mask_on=False):
        super().__init__()
        self.calls = []
        self.backbone = FakeBackbone()
        self.mask_on = mask_on
        self.roi_heads = nn.Module()
        self.roi_heads.mask_on = mask_on
        self.eval()

    @property
    def device(self):
        return torch.device("cpu")

    def inference_with_focus(self, batched_inputs, do_postprocess=True):
        assert not self.training and not torch.is_grad_enabled()
        self.calls.append(list(batched_inputs))
        results, maps = [], []
        for x in batched_inputs:
            image = x["image"].float()
            count, _, stats, _ = cv2.connectedComponentsWithStats((image[0] > 128).numpy().astype(np.uint8), 4)
            boxes = torch.tensor([[s[0], s[1], s[0] + s[2], s[1] + s[3]] for s in stats[1:count]],
                                 dtype=torch.float32).reshape(-1, 4)
            n = len(boxes)
            found = Instances(tuple(image.shape[1:]), pred_boxes=Boxes(boxes), scores=torch.full((n,), 0.9),
                              pred_classes=torch.zeros(n, dtype=torch.int64))
            if self.mask_on:
                found.pred_masks = torch.ones(n, 1, 4, 4)
            results.append({"instances": detector_postprocess(found, x["height"], x["width"])}
                           if do_postprocess else found)
            bright = (image[1] > 128).float()[None, None]
            focus = F.max_pool2d(bright, STRIDE, ceil_mode=True)[0, 0]
            maps.append(torch.where(focus > 0, 1.0, 0.05))
        return results, maps

    def inference(self, batched_inputs, do_postprocess=True):
        return self.inference_with_focus(batched_inputs, do_postprocess)[0]


def make_image(focus=(), objects=()):
    """CHW uint8 image of HEIGHT x WIDTH px, black, with channel 1 bright in the ``focus``
    rectangles and channel 0 in the ``objects`` rectangles, ``(x0, y0, x1, y1)`` original px."""
    image = torch.zeros((3, HEIGHT, WIDTH), dtype=torch.uint8)
    for channel, rects in ((1, focus), (0, objects)):
        for x0, y0, x1, y1 in rects:
            image[channel, y0:y1, x0:x1] = 255
    return image


def wrapper(model, prune=(True, True, False), **kwargs):
    options = dict(score_thresh=0.0, detections_per_image=100, autofocus=True, focus_prune=prune,
                   focus_thresholds=(0.5, 0.5, 0.0), focus_dilations=(1, 1, 1), focus_min_chip_sizes=(4, 4, 1))
    options.update(kwargs)
    return SniperMultiScaleInference(model, scales=SCALES, valid_ranges=RANGES, **options)


def run(inference, image):
    return inference([{"image": image, "height": HEIGHT, "width": WIDTH}])[0]["instances"]


def sorted_boxes(instances):
    boxes = instances.pred_boxes.tensor
    return boxes[torch.argsort(boxes[:, 0] * 1e5 + boxes[:, 1])].tolist()


def test_region_tiles_are_cut_only_by_edges_inside_the_image():
    inf = float("inf")
    assert region_tile((0, 10, 50, 200), (200, 320)) == Tile(0, 10, 50, 200, (-inf, 10, 50, inf))
    whole = region_tile((0, 0, 320, 200), (200, 320))
    assert region_tile_grid(whole, 0.5, 48, 16, 8) == tile_grid(320, 200, 0.5, 48, 16, 8)
    tiles = region_tile_grid(region_tile((0, 48, 64, 112), (200, 320)), 1.0, 40, 16)
    assert [(t.x0, t.y0, t.x1, t.y1) for t in tiles] == [(0, 48, 40, 88), (24, 48, 64, 88),
                                                         (0, 72, 40, 112), (24, 72, 64, 112)]
    # outer sides: the region's (open on the image border x = 0); inner sides: the tiles' cuts
    assert [t.core for t in tiles] == [(-inf, 48, 32.0, 80.0), (32.0, 48, 64, 80.0),
                                       (-inf, 80.0, 32.0, 112), (32.0, 80.0, 64, 112)]


def test_focus_map_pastes_each_run_on_the_whole_image_cells_it_covers():
    focus_map = FocusMap(width=320, height=200, factor=0.5, stride=8)  # 160 x 100 scaled px
    assert focus_map.cells.shape == (13, 20) and np.isnan(focus_map.cells).all()
    # a region of 64 x 48 original px at (96, 32), run at 0.5: 32 x 24 px, 4 x 3 cells
    region_cells = np.arange(12, dtype=np.float32).reshape(3, 4) / 12
    focus_map.paste(region_tile((96, 32, 160, 80), (200, 320)), region_cells, (24, 32))
    assert np.array_equal(focus_map.cells[2:5, 6:10], region_cells)
    assert np.isnan(focus_map.cells).sum() == 13 * 20 - 12
    focus_map.paste(region_tile((96, 32, 112, 48), (200, 320)), np.ones((1, 1)), (8, 8))  # overlap: max
    assert focus_map.cells[2, 6] == 1.0 and focus_map.cells[2, 7] == region_cells[0, 1]
    # FocusPixels (>= 0.5): that cell, and cells (3, 8), (3, 9), (4, 6..9); their rectangles touch
    assert focus_map.chips(0.5, 1, 1, (200, 320)).tolist() == [[96, 32, 160, 80]]


def test_ground_truth_map_marks_the_cells_training_labels_positive_where_the_scale_ran():
    focus_map = FocusMap(width=320, height=200, factor=0.5, stride=8)  # 20 x 13 cells of 16 original px
    focus_map.cells[:, :10] = 0.3  # the scale ran on the left half only
    boxes = np.array([[32, 32, 52, 52],      # 10 scaled px: positive in (2, 16)
                      [96, 96, 156, 156],    # 30 scaled px: don't care in [16, 40), not a FocusPixel
                      [0, 160, 20, 180],     # crowd: never a FocusPixel
                      [240, 32, 260, 52]])   # small, but where the scale did not run: stays NaN
    truth = focus_map.ground_truth(boxes, np.array([False, False, True, False]), (2.0, 16.0, 40.0))
    positive = np.zeros((13, 20))
    positive[2:4, 2:4] = 1  # scaled px [16, 26) x [16, 26): cells 2..3
    assert np.array_equal(np.isnan(truth.cells), np.isnan(focus_map.cells))
    assert np.array_equal(truth.cells[:, :10], positive[:, :10])
    assert np.all(focus_map.cells[:, :10] == 0.3)  # the map itself is unchanged
    assert truth.chips(0.5, 1, 1, (200, 320)).tolist() == [[32, 32, 64, 64]]


def test_the_benchmarks_perfect_branch_puts_the_focus_chips_on_the_ground_truth():
    from benchmark_scripts import load_benchmark
    from detectron2.config import get_cfg
    from detectron2.structures import BoxMode

    from sniper_d2.config import add_sniper_config

    bench = load_benchmark("bench_autofocus.py", "bench_autofocus")
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.SNIPER.TEST.SCALES, cfg.SNIPER.TEST.VALID_RANGES = tuple(SCALES), tuple(RANGES)
    cfg.SNIPER.TEST.SCORE_THRESH, cfg.SNIPER.TEST.RAW_SCALE_DETECTIONS = 0.0, False  # the fake has no box head
    focus = cfg.SNIPER.TEST.AUTOFOCUS
    focus.ENABLED, focus.PRUNE, focus.THRESHOLDS = True, (True, True, False), (0.5, 0.5, 0.0)
    focus.DILATIONS, focus.MIN_CHIP_SIZES = (1, 1, 1), (4, 4, 1)
    cfg.SNIPER.AUTOFOCUS.DC_LOW, cfg.SNIPER.AUTOFOCUS.SMALL_THRESH, cfg.SNIPER.AUTOFOCUS.DC_HIGH = 1.0, 16.0, 24.0
    annotations = [{"bbox": [200, 120, 6, 6], "bbox_mode": BoxMode.XYWH_ABS, "iscrowd": 0},
                   {"bbox": [20, 150, 6, 6], "bbox_mode": BoxMode.XYWH_ABS, "iscrowd": 1}]
    perfect = bench._ground_truth_wrapper(cfg, FocusBlobDetector(), [{"image_id": 3, "annotations": annotations}])
    perfect([{"image": make_image(FOCUS), "height": HEIGHT, "width": WIDTH, "image_id": 3}])
    # the branch's own FocusPixels (FOCUS) are ignored; the 6 px object's cell, widened to 4 cells:
    # at 0.5 cell (12, 7) of 16 original px -> the middle scale's chip, in it at 1.0 cell (25, 15) of 8 px
    assert [r.tolist() for r in perfect.last_focus_chips[0]] == [
        [[192, 112, 224, 144]], [[176, 96, 240, 160]], [[0, 0, WIDTH, HEIGHT]]]


# FocusPixels at the corner and around (96..128, 64..96) px: at 0.5 (16 original px per cell)
# the cells [0, 2) and cols [6, 8) x rows [4, 6); widened to 4 cells these give the middle
# scale's chips; there the map (8 px per cell) gives the finest scale's chips of 4 cells
FOCUS = [(0, 0, 32, 32), (96, 64, 128, 96)]
MIDDLE_CHIPS = [[0, 0, 64, 64], [80, 48, 144, 112]]
FINEST_CHIPS = [[0, 0, 32, 32], [96, 64, 128, 96]]


def test_coarsest_runs_whole_and_finer_scales_only_on_the_focus_chips():
    model = FocusBlobDetector()
    af = wrapper(model)
    image = make_image(FOCUS)
    run(af, image)
    regions = af.last_focus_chips[0]
    assert [r.tolist() for r in regions] == [FINEST_CHIPS, MIDDLE_CHIPS, [[0, 0, WIDTH, HEIGHT]]]
    assert all(r.dtype == np.int64 for r in regions)
    # each scale's map over the whole image (cells of 8 px at 2.0, 1.0, 0.5), NaN off its chips;
    # a pruned scale's chips are those of the next coarser scale's map with its settings
    maps = af.last_focus_maps[0]
    assert [m.cells.shape for m in maps] == [(50, 80), (25, 40), (13, 20)]
    assert [int((~np.isnan(m.cells)).sum()) for m in maps] == [2 * 8 * 8, 2 * 8 * 8, 13 * 20]
    for k in (0, 1):
        assert maps[k + 1].chips(0.5, 1, 4, (HEIGHT, WIDTH)).tolist() == regions[k].tolist()
    # what the detector saw: the whole image at 0.5, then each chip cut out and resized alone, a
    # scale's chips of one size (both 64 x 64 px at 1.0, both 64 x 64 px at 2.0) in one call
    expected = [((0, 0, WIDTH, HEIGHT), 0.5)] + [(tuple(c), 1.0) for c in MIDDLE_CHIPS] \
        + [(tuple(c), 2.0) for c in FINEST_CHIPS]
    assert [len(call) for call in model.calls] == [1, 2, 2]
    for call, ((x0, y0, x1, y1), factor) in zip([x for c in model.calls for x in c], expected):
        crop = {"image": image[:, y0:y1, x0:x1], "height": y1 - y0, "width": x1 - x0}
        (want,) = scale_test_inputs([crop], factor)
        assert (call["height"], call["width"]) == (y1 - y0, x1 - x0)
        assert call["image"].shape == want["image"].shape
        assert torch.equal(call["image"], want["image"])


def test_objects_come_back_in_original_px_from_every_scale():
    objects = [(116, 84, 124, 92),   # 8 px: finest scale, inside a finest chip
               (86, 56, 106, 68),    # 15 px: middle scale, inside a middle chip
               (200, 100, 260, 160)]  # 60 px: coarsest, far from any chip
    out = run(wrapper(FocusBlobDetector()), make_image(FOCUS, objects))
    assert sorted_boxes(out) == [list(map(float, o)) for o in sorted(objects)]


def test_detections_cut_by_a_chip_edge_are_dropped_those_on_the_image_border_kept():
    on_border = (0, 40, 20, 56)  # 18 px: middle scale, in the corner chip, on the image's left border
    cut = (50, 20, 76, 40)  # 23 px: middle scale, crosses the corner chip's right edge at x = 64
    image = make_image(FOCUS, [on_border, cut])
    model = FocusBlobDetector()
    out = run(wrapper(model), image)
    assert sorted_boxes(out) == [list(map(float, on_border))]
    # the detector did see the cut object, as a box ending on the chip's edge
    corner_call = model.calls[1][0]
    assert (corner_call["height"], corner_call["width"]) == (64, 64)
    with torch.no_grad():
        seen = model.inference([corner_call])[0]["instances"].pred_boxes.tensor.tolist()
    assert [50.0, 20.0, 64.0, 40.0] in seen
    # without pruning the middle scale runs whole and keeps it
    whole = run(wrapper(FocusBlobDetector(), prune=(True, False, False)), image)
    assert sorted_boxes(whole) == sorted([list(map(float, o)) for o in (on_border, cut)])


def test_no_focus_pixels_no_detector_call_at_the_pruned_scales():
    model = FocusBlobDetector()
    af = wrapper(model)
    out = run(af, make_image(objects=[(200, 100, 260, 160)]))
    assert len(model.calls) == 1 and len(out) == 1
    assert [r.shape for r in af.last_focus_chips[0][:2]] == [(0, 4), (0, 4)]
    assert af.pixel_counts.processed == [0, 0, 160 * 100]
    # a pruned middle scale with no chips leaves no map: the finest (not pruned) still runs whole
    model = FocusBlobDetector()
    run(wrapper(model, prune=(False, True, False)), make_image())
    assert [call[0]["image"].shape[1:] for call in model.calls] == [(100, 160), (400, 640)]


def test_nothing_pruned_gives_plain_multi_scale_inference():
    objects = [(116, 84, 124, 92), (86, 56, 106, 68), (200, 100, 260, 160), (5, 150, 30, 190)]
    images = [make_image(FOCUS, objects), make_image(objects=objects[1:])]
    inputs = [{"image": im, "height": HEIGHT, "width": WIDTH} for im in images]
    plain = SniperMultiScaleInference(FocusBlobDetector(), scales=SCALES, valid_ranges=RANGES, score_thresh=0.0)
    af = wrapper(FocusBlobDetector(), prune=(False, False, False))
    for count, expected, actual in zip((4, 3), plain(inputs), af(inputs)):
        expected, actual = expected["instances"], actual["instances"]
        assert len(expected) == len(actual) == count
        assert torch.equal(expected.pred_boxes.tensor, actual.pred_boxes.tensor)
        assert torch.equal(expected.scores, actual.scores)
    assert [len(call) for call in af.model.calls] == [2, 2, 2]  # whole-image scales stay batched
    assert af.pixel_counts == plain.pixel_counts
    assert af.pixel_counts.processed == af.pixel_counts.full_pyramid
    whole = [[0, 0, WIDTH, HEIGHT]]
    assert [[r.tolist() for r in per_scale] for per_scale in plain.last_focus_chips] == [[whole] * 3] * 2
    assert plain.last_focus_maps == [[None] * 3] * 2


def test_pixel_counts_add_up_and_reset():
    af = wrapper(FocusBlobDetector())
    assert af.pixel_counts == PixelCounts([0, 0, 0], [0, 0, 0], 0) and af.pixel_counts.processed_share() == 0.0
    image = make_image(FOCUS)
    run(af, image)
    run(af, image)
    full = [640 * 400, 320 * 200, 160 * 100]
    processed = [2 * 64 * 64, 2 * 64 * 64, 160 * 100]
    assert af.pixel_counts == PixelCounts([2 * p for p in processed], [2 * f for f in full], images=2)
    assert af.pixel_counts.processed_share() == pytest.approx(sum(processed) / sum(full))
    af.reset_pixel_counts()
    assert af.pixel_counts == PixelCounts([0, 0, 0], [0, 0, 0], 0)


def test_tiled_scales_and_chips_give_the_same_chips_and_objects():
    # every object small enough to lie whole in a tile (up to 32 - 2 x 2 scaled px)
    objects = [(116, 84, 124, 92), (86, 56, 106, 68), (200, 100, 248, 148)]
    image = make_image(FOCUS, objects)
    untiled = wrapper(FocusBlobDetector())
    expected = run(untiled, image)
    model = FocusBlobDetector()
    tiled = wrapper(model, tile_size=56, tile_overlap=32)
    actual = run(tiled, image)
    assert [r.tolist() for r in tiled.last_focus_chips[0]] == [r.tolist() for r in untiled.last_focus_chips[0]]
    sides = [max(call[0]["image"].shape[1:]) for call in model.calls]
    assert max(sides) <= 56 and len(sides) > len(untiled.model.calls)
    assert sorted_boxes(actual) == sorted_boxes(expected) == [list(map(float, o)) for o in sorted(objects)]


def test_masks_come_back_pasted_at_their_boxes():
    objects = [(116, 84, 124, 92), (86, 56, 106, 68), (200, 100, 260, 160)]
    out = run(wrapper(FocusBlobDetector(mask_on=True)), make_image(FOCUS, objects))
    assert sorted_boxes(out) == [list(map(float, o)) for o in sorted(objects)]
    assert out.pred_masks.shape == (3, HEIGHT, WIDTH) and out.pred_masks.dtype == torch.bool
    for mask, (x0, y0, x1, y1) in zip(out.pred_masks, out.pred_boxes.tensor.int().tolist()):
        # the 4x4 ones fill the box (corners rounded by the bilinear paste), nothing outside it
        assert mask[(y0 + y1) // 2, x0 + 1 : x1 - 1].all() and mask[y0 + 1 : y1 - 1, (x0 + x1) // 2].all()
        assert mask[y0:y1, x0:x1].sum() == mask.sum()


class PlainDetector(nn.Module):
    device = torch.device("cpu")

    def inference(self, batched_inputs, do_postprocess=True):
        raise AssertionError("not called")


def test_errors_name_the_keys():
    with pytest.raises(ValueError, match=r"SNIPER.TEST.AUTOFOCUS.ENABLED.*SniperAutoFocusRCNN"):
        wrapper(PlainDetector())
    with pytest.raises(ValueError, match=r"SNIPER.TEST.AUTOFOCUS.THRESHOLDS has 2 values but SNIPER.TEST.SCALES has 3"):
        wrapper(FocusBlobDetector(), focus_thresholds=(0.5, 0.5))
    with pytest.raises(ValueError, match=r"SNIPER.TEST.AUTOFOCUS.PRUNE has 1 values"):
        wrapper(FocusBlobDetector(), prune=(True,))
    with pytest.raises(ValueError, match=r"SNIPER.TEST.AUTOFOCUS.PRUNE: the coarsest"):
        wrapper(FocusBlobDetector(), prune=(True, True, True))
    with pytest.raises(ValueError, match=r"SNIPER.TEST.AUTOFOCUS.DILATIONS: each value must be an integer >= 1"):
        wrapper(FocusBlobDetector(), focus_dilations=(0, 1, 1))
    model = FocusBlobDetector()
    model.focus_stride = 0
    with pytest.raises(ValueError, match="focus_stride must be a positive integer"):
        wrapper(model)
    model.roi_heads.keypoint_on = True
    model.focus_stride = STRIDE
    with pytest.raises(ValueError, match="MODEL.KEYPOINT_ON"):
        wrapper(model)
    model = FocusBlobDetector()
    model.focus_stride = 16  # its maps are of 8 px cells
    with pytest.raises(ValueError, match=r"ceil\(h / focus_stride\)"):
        run(wrapper(model), make_image(FOCUS))
    af = wrapper(FocusBlobDetector())
    with pytest.raises(ValueError, match="AUTOFOCUS.*original resolution"):
        af([{"image": make_image(FOCUS)[:, ::2, ::2], "height": HEIGHT, "width": WIDTH}])


# ---- SniperPredictor: from the config, through build_inference_model -----------------------------


@META_ARCH_REGISTRY.register()
class _TestFocusRCNN(GeneralizedRCNN):
    """A GeneralizedRCNN with the AutoFocus contract; its FocusPixels: the top-left input cell."""

    focus_stride = 16

    def inference_with_focus(self, batched_inputs, do_postprocess=True):
        maps = []
        for x in batched_inputs:
            cells = torch.zeros(-(-x["image"].shape[1] // 16), -(-x["image"].shape[2] // 16))
            cells[0, 0] = 1.0
            maps.append(cells)
        return self.inference(batched_inputs, do_postprocess=do_postprocess), maps


def test_sniper_predictor_runs_autofocus_from_the_config(tmp_path):
    cfg = tiny_faster_rcnn_cfg()
    cfg.MODEL.META_ARCHITECTURE = "_TestFocusRCNN"
    cfg.SNIPER.TEST.SCALES = (1.0, 0.5)
    cfg.SNIPER.TEST.VALID_RANGES = ((-1, 40), (30, -1))
    cfg.SNIPER.TEST.AUTOFOCUS.ENABLED = True
    cfg.SNIPER.TEST.AUTOFOCUS.PRUNE = (True, False)
    cfg.SNIPER.TEST.AUTOFOCUS.THRESHOLDS = (0.5, 0.0)
    cfg.SNIPER.TEST.AUTOFOCUS.DILATIONS = (1, 1)
    cfg.SNIPER.TEST.AUTOFOCUS.MIN_CHIP_SIZES = (2, 1)
    cfg.MODEL.WEIGHTS = str(tmp_path / "weights.pth")
    torch.save({"model": {}}, cfg.MODEL.WEIGHTS)  # loads nothing: random-init weights
    predictor = SniperPredictor(cfg)
    assert predictor.inference_model.autofocus
    image = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    instances = predictor(image)["instances"]
    assert instances.image_size == (96, 128)
    # the top-left cell of 16 px at 0.5, widened to 2 cells: 64 x 64 original px
    assert [r.tolist() for r in predictor.inference_model.last_focus_chips[0]] == [[[0, 0, 64, 64]], [[0, 0, 128, 96]]]
    assert predictor.inference_model.pixel_counts == PixelCounts([64 * 64, 64 * 48], [128 * 96, 64 * 48], 1)


def test_single_scale_deployment_says_autofocus_does_not_apply(caplog):
    from sniper_d2.inference import build_inference_model

    cfg = tiny_faster_rcnn_cfg()
    cfg.SNIPER.TEST.MULTI_SCALE = False
    cfg.SNIPER.TEST.AUTOFOCUS.ENABLED = True
    model = nn.Linear(1, 1)
    with caplog.at_level("WARNING", logger="sniper_d2"):
        assert build_inference_model(cfg, model) is model
    assert "AutoFocus does not apply" in caplog.text and "SNIPER.TEST.MULTI_SCALE True" in caplog.text


class ProposalRecorder(FocusBlobDetector):
    """FocusBlobDetector with an RPN stand-in: records its test ``(pre_nms_topk, post_nms_topk)``
    for every input it runs on."""

    def __init__(self):
        super().__init__()
        self.proposal_generator = type("RPN", (), {})()
        self.proposal_generator.pre_nms_topk = {True: 4000, False: 2000}
        self.proposal_generator.post_nms_topk = {True: 2000, False: 1000}
        self.topk_per_input = []

    def inference_with_focus(self, batched_inputs, do_postprocess=True):
        rpn = self.proposal_generator
        self.topk_per_input += [(rpn.pre_nms_topk[False], rpn.post_nms_topk[False])] * len(batched_inputs)
        return super().inference_with_focus(batched_inputs, do_postprocess)


@pytest.mark.parametrize("min_chip_proposals", [0, 10])
def test_focus_chip_proposals_follow_the_chip_area_when_asked(min_chip_proposals):
    model = ProposalRecorder()
    inference = wrapper(model, proposals_per_scale=300, focus_min_chip_proposals=min_chip_proposals)
    run(inference, make_image(focus=FOCUS))
    chips = inference.last_focus_chips[0]
    # whole coarsest scale first, then the middle scale's and the finest scale's chips; pre-NMS
    # candidates per level likewise from the model's 2000, at least the chip's proposals
    expected = [(2000, 300)]
    for scale_index in (1, 0):
        whole = (WIDTH * SCALES[scale_index]) * (HEIGHT * SCALES[scale_index])
        for x0, y0, x1, y1 in chips[scale_index].tolist():
            share = (x1 - x0) * SCALES[scale_index] * (y1 - y0) * SCALES[scale_index] / whole
            post = max(10, math.ceil(300 * share))
            expected.append((max(post, math.ceil(2000 * share)), post) if min_chip_proposals else (2000, 300))
    assert model.topk_per_input == expected
    # restored after the call
    assert model.proposal_generator.pre_nms_topk == {True: 4000, False: 2000}
    assert model.proposal_generator.post_nms_topk == {True: 2000, False: 1000}
    if min_chip_proposals:
        posts = [post for _, post in expected[1:]]
        assert min(posts) == 10 < max(posts) < 300  # both the floor and the share matter here
