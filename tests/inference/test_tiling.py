"""Tiled inference (sniper_d2.inference.tiling and SniperMultiScaleInference with TILE_SIZE): the tile
grid's geometry, which tile keeps a detection, one detection per object across overlapping
tiles, per-scale valid ranges, bounded detector inputs, and equality with whole images when
one tile holds the image."""
import logging
import math

import cv2
import numpy as np
import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from hypothesis import given, settings, strategies as st
from torch import nn

from sniper_d2.chips.scales import scaled_size
from sniper_d2.config import check_sniper_config
from sniper_d2.inference import SniperMultiScaleInference, build_inference_model, multi_scale, scale_test_inputs
from sniper_d2.inference.tiling import (
    BORDER_TOLERANCE,
    Tile,
    crop_tile_input,
    feature_alignment,
    owned_detections,
    tile_grid,
    tile_spans,
    tiling_applies,
)


class BlobDetector(nn.Module):
    """Stands in for a GeneralizedRCNN that sees exactly what it is given: one class-0 detection
    (score 0.9) per bright blob (channel 0 above 128) of its input image, boxes mapped to the
    input's ``height``/``width`` and clipped, as Detectron2's ``detector_postprocess`` does.
    Records the size of every image it runs on."""

    def __init__(self):
        super().__init__()
        self.input_sizes = []
        self.eval()

    @property
    def device(self):
        return torch.device("cpu")

    def inference(self, batched_inputs, do_postprocess=True):
        outputs = []
        for x in batched_inputs:
            image = x["image"]
            self.input_sizes.append(tuple(image.shape[1:]))
            mask = (image[0] > 128).numpy().astype(np.uint8)
            count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
            boxes = torch.tensor(
                [[s[0], s[1], s[0] + s[2], s[1] + s[3]] for s in stats[1:count]], dtype=torch.float32
            ).reshape(-1, 4)
            out_h, out_w = x["height"], x["width"]
            boxes *= torch.tensor([out_w / image.shape[2], out_h / image.shape[1]] * 2)
            boxes = Boxes(boxes)
            boxes.clip((out_h, out_w))
            n = len(boxes)
            outputs.append({"instances": Instances((out_h, out_w), pred_boxes=boxes, scores=torch.full((n,), 0.9),
                                                   pred_classes=torch.zeros(n, dtype=torch.int64))})
        return outputs


def blob_image(height, width, squares):
    """CHW uint8 image, dark, with bright squares ``(x, y, side)`` (original px)."""
    image = torch.full((3, height, width), 20, dtype=torch.uint8)
    for x, y, side in squares:
        image[:, y : y + side, x : x + side] = 230
    return image


def sorted_boxes(instances):
    boxes = instances.pred_boxes.tensor
    return boxes[torch.argsort(boxes[:, 0] * 1e5 + boxes[:, 1])]


# ---- grid geometry -----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(1, 3000),
    height=st.integers(1, 3000),
    factor=st.sampled_from([0.1, 0.3333, 0.5, 0.64, 1.0, 1.5, 2.0, 3.0]),
    tile_size=st.integers(64, 1024),
    overlap_share=st.floats(0.0, 0.5),
    stride=st.sampled_from([1, 32, 64]),
)
def test_grid_covers_the_image_with_bounded_tiles_and_partitioning_cores(width, height, factor, tile_size,
                                                                         overlap_share, stride):
    overlap = int(overlap_share * tile_size)
    tiles = tile_grid(width, height, factor, tile_size, overlap, stride=stride)
    crop = math.floor(tile_size / factor)
    align = feature_alignment(factor, stride, crop)
    crop_overlap = min(crop // align * align - 1, math.ceil(overlap / factor))
    if crop // align * align - crop_overlap < align:
        align = 1  # the overlap leaves no aligned step
    assert len(tiles) == len({(t.x0, t.y0) for t in tiles})
    assert all(t.x0 % align == 0 and t.y0 % align == 0 for t in tiles)
    for tile in tiles:
        # memory bound: the tile's scaled copy, the detector's input, is at most tile_size a side
        assert max(scaled_size(tile.width, tile.height, factor)) <= tile_size
        assert 0 <= tile.x0 < tile.x1 <= width and 0 <= tile.y0 < tile.y1 <= height
    for axis, length in ((0, width), (1, height)):
        spans = sorted({(t.x0, t.x1, t.core[0], t.core[2]) if axis == 0 else (t.y0, t.y1, t.core[1], t.core[3])
                        for t in tiles})
        assert spans[0][0] == 0 and spans[-1][1] == length
        assert spans[0][2] == -math.inf and spans[-1][3] == math.inf
        for (s0, e0, _, high), (s1, e1, low, _) in zip(spans, spans[1:]):
            assert e0 - s1 >= max(crop_overlap, 0)  # neighbours overlap by at least the overlap
            assert high == low  # cores partition the side
            assert high - s1 >= crop_overlap / 2 and e0 - high >= crop_overlap / 2
    if max(scaled_size(width, height, factor)) <= tile_size:
        assert tiles == [Tile(0, 0, width, height, (-math.inf, -math.inf, math.inf, math.inf))]


def test_tile_spans_are_the_fewest_narrowest_aligned_tiles_and_reject_overlap_of_a_whole_tile():
    assert tile_spans(100, 100, 10) == [(0, 100)]
    # 3 tiles of 97 px at steps of 77 (overlaps 20): the narrowest 3 tiles that cover 250 px
    assert tile_spans(250, 100, 20) == [(0, 97), (77, 174), (154, 250)]
    # steps of 32 px: 3 tiles would need 116 px (step 96) or 122 px (step 64); 4 tiles of 84 px
    assert tile_spans(250, 100, 20, align=32) == [(0, 84), (64, 148), (128, 212), (192, 250)]
    assert tile_spans(250, 100, 20, align=128) == tile_spans(250, 100, 20)  # a step of 128 > 80: unaligned
    assert tile_spans(2000, 1024, 128, align=64) == [(0, 768), (640, 1408), (1280, 2000)]
    assert tile_spans(1000, 512, 0) == [(0, 500), (500, 1000)]
    with pytest.raises(ValueError, match="overlap"):
        tile_spans(1000, 100, 100)


@pytest.mark.parametrize(
    "factor, stride, crop, expected",
    [(1.0, 64, 1024, 64), (2.0, 64, 512, 32), (0.5, 64, 2048, 128), (3.0, 32, 341, 32), (0.64, 32, 1600, 50),
     (1400 / 6000, 64, 4388, 1), (1.0, 64, 100, 1), (1.0, 1, 1024, 1)],
)
def test_feature_alignment_is_the_least_whole_step_on_the_feature_grid(factor, stride, crop, expected):
    # (3.0, 32): 32 original px are 96 scaled px, 3 feature cells; 1400/6000: no step up to crop/4
    assert feature_alignment(factor, stride, crop) == expected


def test_aligned_tiles_are_resampled_like_the_whole_image_away_from_their_edges():
    image = torch.randint(0, 256, (3, 600, 900), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for factor in (2.0, 0.5):
        (whole,) = scale_test_inputs([{"image": image}], factor)
        tiles = tile_grid(900, 600, factor, 256, 64, stride=64)
        assert len(tiles) > 2
        for tile in tiles:
            assert (tile.x0 * factor) % 64 == 0 and (tile.y0 * factor) % 64 == 0
            (scaled,) = scale_test_inputs([crop_tile_input(image, tile)], factor)
            x0, y0 = int(tile.x0 * factor), int(tile.y0 * factor)
            h, w = scaled["image"].shape[1:]
            inner = (slice(None), slice(4, h - 4), slice(4, w - 4))  # the resampling kernel reaches 2 px
            torch.testing.assert_close(scaled["image"][inner], whole["image"][:, y0 : y0 + h, x0 : x0 + w][inner],
                                       atol=1e-3, rtol=0)


def test_tiling_applies_above_the_threshold_only():
    assert not tiling_applies(1000, 800, 2.0, 0, 0)  # off
    assert tiling_applies(100, 80, 1.0, 512, 0)  # on for every scale, one tile here
    assert not tiling_applies(1000, 800, 2.0, 512, 2000) and tiling_applies(1000, 800, 2.0, 512, 1999)


def test_crop_is_a_view_with_the_tile_size():
    image = torch.zeros(3, 50, 80, dtype=torch.uint8)
    tile = Tile(10, 20, 40, 50, (0.0, 0.0, 1.0, 1.0))
    crop = crop_tile_input(image, tile)
    assert crop["image"].shape == (3, 30, 30) and (crop["height"], crop["width"]) == (30, 30)
    assert crop["image"].data_ptr() == image[:, 20, 10].data_ptr()


# ---- which tile keeps a detection ----------------------------------------------------------------


def test_a_tile_keeps_detections_centred_in_its_core_and_not_cut_by_its_interior_edges():
    # Middle column of three, top row: crop x 100-300, y 0-200; core x 150-250, y up to 150
    # (bottom neighbour). At factor 2 the tolerance is 1 original px.
    tile = Tile(100, 0, 300, 200, (150.0, -math.inf, 250.0, 150.0))
    in_tile = torch.tensor([
        [60.0, 60.0, 90.0, 90.0],  # centre (175, 75): kept
        [10.0, 60.0, 40.0, 90.0],  # centre (125, 75): the left neighbour's core
        [0.5, 60.0, 60.0, 90.0],  # centre in core, but cut by the left edge (within 1 px)
        [120.0, 100.0, 140.0, 200.0],  # centre y 150: the bottom neighbour's core
        [120.0, 0.0, 140.0, 100.0],  # touches the top edge, the image border: kept
        [100.0, 60.0, 199.5, 90.0],  # centre in core, within 1 px of the right edge: cut
        [100.0, 60.0, 198.5, 90.0],  # 1.5 px from the right edge: kept
    ])
    detections = Instances((200, 200), pred_boxes=Boxes(in_tile), scores=torch.arange(7.0),
                           pred_classes=torch.arange(7))
    owned = owned_detections(detections, tile, (600, 400), factor=2.0)
    assert owned.image_size == (600, 400)
    assert owned.scores.tolist() == [0.0, 4.0, 6.0] and owned.pred_classes.tolist() == [0, 4, 6]
    assert owned.pred_boxes.tensor[0].tolist() == [160.0, 60.0, 190.0, 90.0]
    assert BORDER_TOLERANCE / 2.0 == 1.0


# ---- the wrapper, tiled -------------------------------------------------------------------------

# Squares (x, y, side) of a 300x400 image; with 128 px tiles and 40 px overlap at factor 1 the
# tiles span x 0-112, 72-184, 144-256, 216-328, 288-400 and y 0-127, 87-214, 174-300: several
# squares lie in two or four tiles' overlap, some cross a tile edge, two touch the image border.
SQUARES = [(95, 95, 30), (180, 90, 30), (5, 5, 20), (370, 270, 30), (0, 150, 25), (250, 190, 12), (120, 20, 16)]


def test_each_object_is_found_once_with_its_whole_box_across_overlapping_tiles():
    image = blob_image(300, 400, SQUARES)
    inputs = [{"image": image, "height": 300, "width": 400}]
    untiled = SniperMultiScaleInference(BlobDetector(), [1.0], [(-1, -1)])(inputs)[0]["instances"]
    detector = BlobDetector()
    tiled = SniperMultiScaleInference(detector, [1.0], [(-1, -1)], tile_size=128, tile_overlap=40)(inputs)[0]
    tiled = tiled["instances"]
    assert len(detector.input_sizes) == 15 and max(max(s) for s in detector.input_sizes) <= 128
    expected = torch.tensor([[x, y, x + s, y + s] for x, y, s in SQUARES], dtype=torch.float32)
    assert len(untiled) == len(SQUARES) and torch.equal(sorted_boxes(untiled), sorted_boxes(Instances(
        (300, 400), pred_boxes=Boxes(expected))))
    # every square once, its whole box, no decayed duplicate (scores stay 0.9 under soft-NMS)
    assert torch.equal(sorted_boxes(tiled), sorted_boxes(untiled))
    assert torch.allclose(tiled.scores, torch.full((len(SQUARES),), 0.9))


def test_resized_tiles_give_boxes_in_original_px():
    image = blob_image(300, 400, SQUARES)
    inputs = [{"image": image, "height": 300, "width": 400}]
    untiled = SniperMultiScaleInference(BlobDetector(), [2.0], [(-1, -1)])(inputs)[0]["instances"]
    detector = BlobDetector()
    tiled = SniperMultiScaleInference(detector, [2.0], [(-1, -1)], tile_size=256, tile_overlap=80)(inputs)[0]
    assert max(max(s) for s in detector.input_sizes) <= 256 and len(detector.input_sizes) > 4
    assert len(tiled["instances"]) == len(untiled) == len(SQUARES)
    torch.testing.assert_close(sorted_boxes(tiled["instances"]), sorted_boxes(untiled), atol=1.0, rtol=0)


def test_objects_larger_than_the_overlap_are_dropped_where_tiles_cut_them_and_a_warning_says_so(caplog):
    # Tiles x 0-110 and 90-200: a 60 px square at x 70-130 lies whole in neither; its centre
    # (x 100) is the right tile's, which cuts it at x 90, so no part of it is kept.
    image = blob_image(200, 200, [(70, 20, 60), (20, 150, 10)])
    wrapper = SniperMultiScaleInference(BlobDetector(), [1.0], [(-1, 100)], tile_size=128, tile_overlap=20)
    with caplog.at_level(logging.WARNING, logger="sniper_d2.inference.multi_scale"):
        tiled = wrapper([{"image": image}])[0]["instances"]
        wrapper([{"image": image}])
    assert tiled.pred_boxes.tensor.tolist() == [[20.0, 150.0, 30.0, 160.0]]
    # one record object, however many handlers pass it on (sniper_d2's logger also forwards to detectron2's)
    warnings = list({id(r): r.getMessage() for r in caplog.records if "TILE_OVERLAP" in r.getMessage()}.values())
    assert len(warnings) == 1 and "up to 100 scaled px" in warnings[0] and "up to 16 scaled px" in warnings[0]


def test_each_tiled_scale_keeps_its_own_valid_range():
    # Small squares (10 px) and large ones (50 px). Scale 2.0 keeps (-1, 20], scale 0.5 keeps (30, -1):
    # each is found at its own scale only, both scales tiled (64 px tiles).
    squares = [(30, 30, 10), (100, 140, 10), (150, 20, 50), (20, 120, 50)]
    image = blob_image(256, 256, squares)
    detector = BlobDetector()
    wrapper = SniperMultiScaleInference(detector, [2.0, 0.5], [(-1, 20), (30, -1)], tile_size=64, tile_overlap=24)
    out = wrapper([{"image": image}])[0]["instances"]
    sides = sorted(round(s) for s in out.pred_boxes.area().sqrt().tolist())
    assert sides == [10, 10, 50, 50]
    assert torch.allclose(out.scores, torch.full((4,), 0.9))  # no cross-scale duplicate decayed by soft-NMS
    assert max(max(s) for s in detector.input_sizes) <= 64
    only_small = SniperMultiScaleInference(BlobDetector(), [2.0], [(-1, 20)], tile_size=64, tile_overlap=24)
    assert sorted(round(s) for s in only_small([{"image": image}])[0]["instances"].pred_boxes.area().sqrt().tolist()) \
        == [10, 10]


def test_detector_inputs_stay_within_the_tile_size_however_large_the_scaled_image():
    # 240x3000 px at factor 3 is 720x9000 px whole; tiled, no detector input exceeds 256 px a side.
    detector = BlobDetector()
    wrapper = SniperMultiScaleInference(detector, [3.0, "longest:200"], [(-1, 30), (20, -1)], tile_size=256,
                                        tile_overlap=64, tile_above=300)
    wrapper([{"image": blob_image(240, 3000, [(1000, 100, 8)])}])
    tiles = tile_grid(3000, 240, 3.0, 256, 64)
    expected = sorted(scaled_size(t.width, t.height, 3.0)[::-1] for t in tiles)
    assert sorted(detector.input_sizes[: len(tiles)]) == expected  # tiles of one size share calls
    assert max(max(s) for s in detector.input_sizes[: len(tiles)]) <= 256
    # longest:200 gives 16x200 px, below TILE_ABOVE 300: one whole-image call after the tiles
    assert detector.input_sizes[len(tiles):] == [(16, 200)]


def test_tile_larger_than_the_image_equals_untiled_exactly(tiny_cfg, tiny_model):
    # The tiled path (TILE_ABOVE 0) with one tile per scale gives the whole-image detections.
    # One image per call: a batch of two runs convolutions with other kernels (last-bit differences).
    inputs = [{"image": torch.randint(0, 256, (3, 72, 96), dtype=torch.uint8,
                                      generator=torch.Generator().manual_seed(s)), "height": 72, "width": 96}
              for s in (1, 2)]
    untiled = [SniperMultiScaleInference(tiny_cfg, tiny_model)([x])[0] for x in inputs]
    cfg = tiny_cfg.clone()
    cfg.SNIPER.TEST.TILE_SIZE, cfg.SNIPER.TEST.TILE_OVERLAP = 1024, 64  # scaled images are at most 200 px
    wrapper = build_inference_model(cfg, tiny_model)
    assert (wrapper.tile_size, wrapper.tile_overlap, wrapper.tile_above) == (1024, 64, 0)
    calls = []
    original = tiny_model.inference
    tiny_model.inference = lambda batch, do_postprocess=True: (
        calls.append(len(batch)) or original(batch, do_postprocess=do_postprocess))
    try:
        tiled = [wrapper([x])[0] for x in inputs]
    finally:
        del tiny_model.inference
    assert calls == [1] * 6  # one tile per image and scale
    for got, want in zip(tiled, untiled):
        got, want = got["instances"], want["instances"]
        assert len(want) > 0
        assert torch.equal(got.pred_boxes.tensor, want.pred_boxes.tensor)
        assert torch.equal(got.scores, want.scores) and torch.equal(got.pred_classes, want.pred_classes)


def test_tiled_real_model_gives_standard_outputs(tiny_cfg, tiny_model):
    cfg = tiny_cfg.clone()
    cfg.SNIPER.TEST.TILE_SIZE, cfg.SNIPER.TEST.TILE_OVERLAP = 64, 16
    image = torch.randint(0, 256, (3, 120, 150), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    out = build_inference_model(cfg, tiny_model)([{"image": image}])[0]["instances"]
    assert out.image_size == (120, 150) and len(out) > 0
    boxes = out.pred_boxes.tensor
    assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= 150).all() and (boxes[:, 1::2] <= 120).all()
    assert torch.all(out.scores[:-1] >= out.scores[1:])


def test_tiles_of_one_padded_size_share_calls_and_find_what_one_call_each_finds(tiny_cfg, tiny_model, monkeypatch):
    # 130x170 px at 1.0 in 48 px tiles: the tiles Detectron2 pads to one size (64 x 64 px) run
    # together, at most PIECE_BATCH_PX padded px a call; one tile per call finds the same.
    cfg = tiny_cfg.clone()
    cfg.SNIPER.TEST.SCALES, cfg.SNIPER.TEST.VALID_RANGES = (1.0,), ((-1, -1),)
    cfg.SNIPER.TEST.TILE_SIZE, cfg.SNIPER.TEST.TILE_OVERLAP = 48, 16
    cfg.SNIPER.TEST.SCORE_THRESH = 0.0
    image = torch.randint(0, 256, (3, 130, 170), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    wrapper = build_inference_model(cfg, tiny_model)
    calls = []
    original = tiny_model.inference
    tiny_model.inference = lambda batch, do_postprocess=True: (
        calls.append([tuple(x["image"].shape[-2:]) for x in batch]) or original(batch, do_postprocess=do_postprocess))
    try:
        batched = wrapper([{"image": image}])[0]["instances"]
        batched_calls, calls[:] = list(calls), []
        monkeypatch.setattr(multi_scale, "PIECE_BATCH_PX", 2 * 64 * 64)
        capped = wrapper([{"image": image}])[0]["instances"]
        capped_calls, calls[:] = list(calls), []
        monkeypatch.setattr(multi_scale, "PIECE_BATCH_PX", 1)
        alone = wrapper([{"image": image}])[0]["instances"]
    finally:
        del tiny_model.inference
    tiles = tile_grid(170, 130, 1.0, 48, 16, wrapper.feature_stride)
    assert len(calls) == len(tiles) > len(capped_calls) > len(batched_calls) == 1  # every tile pads to 64 x 64
    assert sorted(sum(batched_calls, [])) == sorted(sum(capped_calls, [])) == sorted(sum(calls, []))
    assert max(len(c) for c in capped_calls) == 2
    assert len(alone) > 0
    for got in (batched, capped):  # batched convolutions may differ from one image's in the last bits
        torch.testing.assert_close(got.pred_boxes.tensor, alone.pred_boxes.tensor, atol=1e-3, rtol=0)  # px
        torch.testing.assert_close(got.scores, alone.scores, atol=1e-3, rtol=0)
        assert torch.equal(got.pred_classes, alone.pred_classes)


# ---- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings_, message",
    [
        ({"tile_size": 128, "tile_overlap": 128}, r"TILE_OVERLAP \(128 px\) must be below SNIPER.TEST.TILE_SIZE"),
        ({"tile_size": 16}, "TILE_SIZE must be 0 .off. or at least 32"),
        ({"tile_size": 128, "tile_overlap": -1}, "TILE_OVERLAP must be an integer >= 0"),
        ({"tile_size": 128, "tile_above": 1.5}, "TILE_ABOVE must be an integer >= 0"),
    ],
)
def test_bad_tile_settings_are_rejected_naming_the_key(settings_, message):
    with pytest.raises(ValueError, match=message):
        SniperMultiScaleInference(BlobDetector(), [1.0], [(-1, -1)], **{"tile_overlap": 32, **settings_})


def test_tiling_refuses_mask_models_and_resized_images(tiny_cfg):
    cfg = tiny_cfg.clone()
    cfg.MODEL.MASK_ON = True
    cfg.SNIPER.TEST.TILE_SIZE = 512
    with pytest.raises(ValueError, match="MASK_ON"):
        build_inference_model(cfg, build_model(cfg))
    wrapper = SniperMultiScaleInference(BlobDetector(), [1.0], [(-1, -1)], tile_size=64, tile_overlap=16)
    with pytest.raises(ValueError, match=r"file_name='a.jpg'.*original resolution, 200x300 px.*100x150"):
        wrapper([{"image": blob_image(100, 150, []), "height": 200, "width": 300, "file_name": "a.jpg"}])


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("TILE_SIZE", 16, r"SNIPER.TEST.TILE_SIZE must be 0 \(off\) or an integer >= 32"),
        ("TILE_OVERLAP", -5, "SNIPER.TEST.TILE_OVERLAP must be an integer >= 0"),
        ("TILE_ABOVE", 2.5, "SNIPER.TEST.TILE_ABOVE must be an integer >= 0"),
    ],
)
def test_check_sniper_config_bounds_the_tile_keys(tiny_cfg, key, value, message):
    cfg = tiny_cfg.clone()
    cfg.DATASETS.TRAIN = cfg.DATASETS.TEST = ()
    cfg.SNIPER.TEST[key] = value
    with pytest.raises(ValueError, match=message):
        check_sniper_config(cfg)


def test_scale_test_inputs_of_a_tile_resize_only_the_tile():
    image = blob_image(100, 1000, [])
    tile = tile_grid(1000, 100, 3.0, 128, 32)[1]
    (scaled,) = scale_test_inputs([crop_tile_input(image, tile)], 3.0)
    assert tuple(scaled["image"].shape[1:]) == scaled_size(tile.width, tile.height, 3.0)[::-1]
    assert max(scaled["image"].shape[1:]) <= 128
