"""scale_test_inputs and SniperMultiScaleInference: per-scale resizing and batching, outputs in original px, odd inputs,
config wiring, and Detectron2's evaluation loop running it unchanged."""
import cv2
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_test_loader
from detectron2.evaluation import COCOEvaluator, inference_on_dataset
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from torch import nn

from sniper_d2.chips.scales import parse_scale
from sniper_d2.inference import (
    SniperMultiScaleInference,
    build_inference_model,
    build_test_mapper,
    scale_test_inputs,
)


class RecordingDetector(nn.Module):
    """Stands in for a GeneralizedRCNN: records what ``inference`` receives and returns, at the
    k-th call (= k-th scale), one class-0 square of side ``sides[k]`` original px per image."""

    def __init__(self, sides):
        super().__init__()
        self.sides = sides
        self.calls = []

    @property
    def device(self):
        return torch.device("cpu")

    def inference(self, batched_inputs, do_postprocess=True):
        assert do_postprocess and not self.training and not torch.is_grad_enabled()
        self.calls.append([(tuple(x["image"].shape), x["height"], x["width"]) for x in batched_inputs])
        side = float(self.sides[len(self.calls) - 1])
        return [
            {
                "instances": Instances(
                    (x["height"], x["width"]),
                    pred_boxes=Boxes(torch.tensor([[0.0, 0.0, side, side]])),
                    scores=torch.tensor([0.5]),
                    pred_classes=torch.tensor([0]),
                )
            }
            for x in batched_inputs
        ]


def uint8_image(height, width, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize(
    "scale, sizes",
    [
        (2.0, [(160, 240), (80, 400), (2, 2)]),
        ("longest:60", [(40, 60), (12, 60), (60, 60)]),
        ((50, 100), [(50, 75), (20, 100), (50, 50)]),
        (parse_scale((50, 100)), [(50, 75), (20, 100), (50, 50)]),  # as SniperMultiScaleInference.scales
    ],
)
def test_scale_test_inputs_resizes_and_keeps_original_size(scale, sizes):
    inputs = [
        {"image": uint8_image(80, 120), "height": 80, "width": 120, "image_id": 3, "file_name": "a.jpg"},
        {"image": uint8_image(40, 200), "height": 40, "width": 200},
        {"image": uint8_image(1, 1)},  # smaller than the scale; no height/width: the image's size
    ]
    originals = [dict(x) for x in inputs]
    scaled = scale_test_inputs(inputs, scale)
    assert [tuple(x["image"].shape) for x in scaled] == [(3, h, w) for h, w in sizes]
    assert [(x["height"], x["width"]) for x in scaled] == [(80, 120), (40, 200), (1, 1)]
    assert (scaled[0]["image_id"], scaled[0]["file_name"]) == (3, "a.jpg")
    assert all(x.keys() == y.keys() and x["image"] is y["image"] for x, y in zip(inputs, originals))
    # Resizing keeps the content: a constant image stays that constant.
    flat = scale_test_inputs([{"image": torch.full((3, 7, 9), 77, dtype=torch.uint8)}], scale)[0]["image"]
    torch.testing.assert_close(flat, torch.full_like(flat, 77.0))


def test_scale_test_inputs_factor_follows_original_size_and_device():
    # A mapper that already resized the image: the scale is relative to height/width.
    (scaled,) = scale_test_inputs([{"image": uint8_image(30, 50), "height": 60, "width": 100}], 0.5)
    assert tuple(scaled["image"].shape) == (3, 30, 50) and scaled["image"].dtype == torch.uint8
    (scaled,) = scale_test_inputs([{"image": uint8_image(30, 50)}], 2.0, device="meta")
    assert scaled["image"].device.type == "meta" and tuple(scaled["image"].shape) == (3, 60, 100)


def test_scale_test_inputs_rejects_bad_inputs_naming_them():
    with pytest.raises(ValueError, match="file_name='broken.jpg'.*CHW"):
        scale_test_inputs([{"image": uint8_image(8, 8)}, {"image": torch.zeros(8, 8), "file_name": "broken.jpg"}], 1.0)
    with pytest.raises(ValueError, match="test input #0.*'height'/'width'"):
        scale_test_inputs([{"image": uint8_image(8, 8), "height": 0, "width": 8}], 1.0)
    with pytest.raises(ValueError, match="Invalid scale"):
        scale_test_inputs([{"image": uint8_image(8, 8)}], "longest:0")


@pytest.mark.parametrize("architecture", ["GeneralizedRCNN", "ProposalNetwork"])
def test_scale_test_inputs_give_boxes_in_original_px(tiny_cfg, architecture):
    # Run at twice the size, the model's boxes (in scaled px when told the scaled size) come back
    # halved. ProposalNetwork: as in negative mining's proposal extraction.
    cfg = tiny_cfg.clone()
    cfg.MODEL.META_ARCHITECTURE = architecture
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    inputs = [{"image": uint8_image(48, 64, seed=s), "height": 48, "width": 64} for s in (1, 2)]
    scaled = scale_test_inputs(inputs, 2.0)
    told_scaled = [{"image": x["image"], "height": 96, "width": 128} for x in scaled]  # boxes stay in scaled px
    field, key = ("instances", "pred_boxes") if architecture == "GeneralizedRCNN" else ("proposals", "proposal_boxes")
    with torch.no_grad():
        got, in_scaled_px = model(scaled), model(told_scaled)
    for got_one, scaled_one in zip(got, in_scaled_px):
        got_one, scaled_one = got_one[field], scaled_one[field]
        assert got_one.image_size == (48, 64) and len(got_one) > 0
        torch.testing.assert_close(got_one.get(key).tensor, scaled_one.get(key).tensor / 2)


def test_resizes_each_image_once_per_scale_and_batches_per_scale():
    detector = RecordingDetector(sides=[10, 40, 70]).eval()
    wrapper = SniperMultiScaleInference(
        detector, [2.0, (50, 100), "longest:60"], [(-1, -1), (30, 50), (-1, -1)], merge="nms"
    )
    inputs = [
        {"image": uint8_image(80, 120), "height": 80, "width": 120},
        {"image": uint8_image(40, 200), "height": 40, "width": 200},
    ]
    outputs = wrapper(inputs)
    assert detector.calls == [
        [((3, 160, 240), 80, 120), ((3, 80, 400), 40, 200)],  # factor 2
        [((3, 50, 75), 80, 120), ((3, 20, 100), 40, 200)],  # short 50 / long <= 100
        [((3, 40, 60), 80, 120), ((3, 12, 60), 40, 200)],  # longest side 60
    ]
    for output, size in zip(outputs, [(80, 120), (40, 200)]):
        instances = output["instances"]
        assert instances.image_size == size
        # Only the middle scale's range (30, 50] admits its 40 px box; sides 10 and 70 come from
        # scales whose ranges are open, so they are kept as well, each exactly once.
        assert sorted(instances.pred_boxes.area().sqrt().tolist()) == [10.0, 40.0, 70.0]


def test_range_reference_measures_each_image_in_the_reference_frame():
    # RecordingDetector returns a 10 px square at the first scale, a 40 px one at the second
    # (original px), for every image. Reference short side 50: the 80x120 image is 0.625x, the 160x240 one 0.3125x that frame,
    # so the range (0, 15] reference px keeps the 10 px box of the first (6.25 reference px) but,
    # of the second, also the 40 px one (12.5 reference px).
    detector = RecordingDetector(sides=[10, 40]).eval()
    wrapper = SniperMultiScaleInference(
        detector, [1.0, 0.5], [(-1, 15), (-1, 15)], merge="nms", range_reference=(50, 1000)
    )
    outputs = wrapper([
        {"image": uint8_image(80, 120), "height": 80, "width": 120},
        {"image": uint8_image(160, 240), "height": 160, "width": 240},
    ])
    sides = [sorted(o["instances"].pred_boxes.area().sqrt().tolist()) for o in outputs]
    assert sides == [[10.0], [10.0, 40.0]]


def test_scale_factor_follows_original_size_not_input_image_size():
    # A mapper that already resized the image: the scale is still relative to height/width.
    detector = RecordingDetector(sides=[10]).eval()
    wrapper = SniperMultiScaleInference(detector, [2.0], [(-1, -1)])
    wrapper([{"image": uint8_image(30, 50), "height": 60, "width": 100}])
    assert detector.calls == [[((3, 120, 200), 60, 100)]]


def test_matches_plain_model_at_one_full_range_scale(tiny_model):
    wrapper = SniperMultiScaleInference(
        tiny_model, [1.0], [(-1, -1)], merge="nms", nms_thresh=0.5, detections_per_image=100
    )
    inputs = [{"image": uint8_image(96, 128, seed=s), "height": 96, "width": 128} for s in (1, 2)]
    with torch.no_grad():
        expected = tiny_model(inputs)
    outputs = wrapper(inputs)
    for got, want in zip(outputs, expected):
        got, want = got["instances"], want["instances"]
        assert len(want) > 0
        assert torch.equal(got.pred_boxes.tensor, want.pred_boxes.tensor)
        assert torch.equal(got.scores, want.scores)
        assert torch.equal(got.pred_classes, want.pred_classes)


def check_standard_outputs(outputs, sizes, max_detections):
    assert len(outputs) == len(sizes)
    for output, (height, width) in zip(outputs, sizes):
        instances = output["instances"]
        assert instances.image_size == (height, width)
        assert set(instances.get_fields()) >= {"pred_boxes", "scores", "pred_classes"}
        assert len(instances) <= max_detections
        boxes = instances.pred_boxes.tensor
        assert boxes.shape[1] == 4 and not boxes.requires_grad
        assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= width).all()
        assert (boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= height).all()
        assert torch.all(instances.scores[:-1] >= instances.scores[1:])


def test_images_smaller_than_every_scale_are_upscaled(tiny_cfg, tiny_model):
    wrapper = SniperMultiScaleInference(tiny_cfg, tiny_model)
    sizes = [(20, 20), (1, 1), (3, 17)]
    outputs = wrapper([{"image": uint8_image(h, w), "height": h, "width": w} for h, w in sizes])
    check_standard_outputs(outputs, sizes, tiny_cfg.SNIPER.TEST.DETECTIONS_PER_IMAGE)
    assert len(outputs[0]["instances"]) > 0


@pytest.mark.parametrize("size", [(50, 2000), (2000, 50)])
def test_extreme_aspect_ratios(tiny_cfg, tiny_model, size):
    # One image per batch: a batch pads every image to the largest height and width.
    wrapper = SniperMultiScaleInference(tiny_cfg, tiny_model)
    outputs = wrapper([{"image": uint8_image(*size), "height": size[0], "width": size[1]}])
    check_standard_outputs(outputs, [size], tiny_cfg.SNIPER.TEST.DETECTIONS_PER_IMAGE)


@pytest.mark.parametrize("raw", [True, False])
def test_no_detections_gives_empty_standard_outputs(tiny_cfg, raw):
    cfg = tiny_cfg.clone()
    cfg.SNIPER.TEST.RAW_SCALE_DETECTIONS = raw
    # the box predictor keeps nothing: the SNIPER threshold applies per scale in raw mode
    cfg.SNIPER.TEST.SCORE_THRESH = cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 1.0
    model = build_model(cfg).eval()
    outputs = SniperMultiScaleInference(cfg, model)([{"image": uint8_image(64, 64), "height": 64, "width": 64}])
    instances = outputs[0]["instances"]
    assert len(instances) == 0 and instances.image_size == (64, 64)
    assert instances.pred_boxes.tensor.shape == (0, 4)
    assert instances.scores.shape == (0,) and instances.pred_classes.dtype == torch.int64


def test_training_mode_and_bad_images_are_rejected_clearly(tiny_cfg, tiny_model):
    wrapper = SniperMultiScaleInference(tiny_cfg, tiny_model)
    with pytest.raises(ValueError, match="file_name='broken.jpg'.*CHW"):
        wrapper([{"image": torch.zeros(8, 8, dtype=torch.uint8), "file_name": "broken.jpg"}])
    with pytest.raises(ValueError, match=r"image_id=7.*\(3, 0, 8\)"):
        wrapper([{"image": torch.zeros(3, 0, 8, dtype=torch.uint8), "image_id": 7}])
    wrapper.train()
    try:
        with pytest.raises(RuntimeError, match="eval"):
            wrapper([{"image": uint8_image(16, 16)}])
    finally:
        wrapper.eval()
    assert not tiny_model.training


def test_config_wiring(tiny_cfg, tiny_model):
    cfg = tiny_cfg.clone()
    cfg.SNIPER.TEST.MERGE = "nms"
    cfg.SNIPER.TEST.SOFT_NMS_SIGMA = 0.3
    cfg.SNIPER.TEST.NMS_THRESH = 0.6
    cfg.SNIPER.TEST.SCORE_THRESH = 0.01
    cfg.SNIPER.TEST.DETECTIONS_PER_IMAGE = 17
    wrapper = build_inference_model(cfg, tiny_model)
    assert isinstance(wrapper, SniperMultiScaleInference) and wrapper.model is tiny_model
    assert [str(s) for s in wrapper.scales] == ["[160, 200]", "1", "longest:48"]
    assert [r.as_config() for r in wrapper.valid_ranges] == [(-1, 30), (20, 60), (40, -1)]
    assert (wrapper.merge, wrapper.soft_nms_sigma, wrapper.nms_thresh) == ("nms", 0.3, 0.6)
    assert (wrapper.score_thresh, wrapper.detections_per_image) == (0.01, 17)

    cfg.SNIPER.TEST.MULTI_SCALE = False
    assert build_inference_model(cfg, tiny_model) is tiny_model


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("MERGE", "softnms", "SNIPER.TEST.MERGE"),
        ("VALID_RANGES", ((-1, 30), (20, -1)), "SNIPER.TEST.VALID_RANGES has 2 ranges but there are 3 scales"),
        ("SOFT_NMS_SIGMA", 0.0, "SNIPER.TEST.SOFT_NMS_SIGMA"),
        ("DETECTIONS_PER_IMAGE", 0, "SNIPER.TEST.DETECTIONS_PER_IMAGE"),
        ("SCALES", ((160, 200), 0.0, "longest:48"), "Invalid scale"),
    ],
)
def test_bad_config_is_rejected_naming_the_key(tiny_cfg, tiny_model, key, value, message):
    cfg = tiny_cfg.clone()
    cfg.SNIPER.TEST[key] = value
    with pytest.raises(ValueError, match=message):
        SniperMultiScaleInference(cfg, tiny_model)


def test_rejects_a_model_without_inference():
    with pytest.raises(TypeError, match="GeneralizedRCNN"):
        SniperMultiScaleInference(nn.Linear(2, 2), [1.0], [(-1, -1)])


def write_image(path, height, width):
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))
    return str(path)


def test_test_mapper_keeps_original_resolution_only_for_multi_scale(tiny_cfg, tmp_path):
    record = {"file_name": write_image(tmp_path / "a.png", 30, 50), "height": 30, "width": 50, "image_id": 1}
    image = build_test_mapper(tiny_cfg)(record)["image"]
    assert image.shape == (3, 30, 50) and image.dtype == torch.uint8
    single = tiny_cfg.clone()
    single.SNIPER.TEST.MULTI_SCALE = False
    assert build_test_mapper(single)(record)["image"].shape == (3, 800, 1333)


def test_inference_on_dataset_with_coco_evaluator(tiny_cfg, tiny_model, tmp_path):
    name = "sniper_inference_test_tiny"
    records = [
        {
            "file_name": write_image(tmp_path / f"{i}.png", 48 + 16 * i, 64),
            "height": 48 + 16 * i,
            "width": 64,
            "image_id": i,
            "annotations": [{"bbox": [4.0, 4.0, 30.0, 20.0], "bbox_mode": 0, "category_id": i % 3}],
        }
        for i in range(2)
    ]
    DatasetCatalog.register(name, lambda: records)
    MetadataCatalog.get(name).set(thing_classes=["a", "b", "c"])
    try:
        loader = build_detection_test_loader(records, mapper=build_test_mapper(tiny_cfg))
        evaluator = COCOEvaluator(name, tasks=("bbox",), output_dir=str(tmp_path))
        results = inference_on_dataset(build_inference_model(tiny_cfg, tiny_model), loader, evaluator)
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    assert set(results["bbox"]) >= {"AP", "AP50", "APs"}
    assert not tiny_model.training


def test_raw_scale_detections_skip_per_scale_nms_and_cap_then_restore_the_model(tiny_cfg):
    # The authors' test: per scale every detection above SNIPER.TEST.SCORE_THRESH reaches the
    # merge (no NMS, no cap), with SNIPER.TEST.PROPOSALS_PER_SCALE proposals; the model itself
    # keeps its configured post-processing.
    cfg = tiny_cfg.clone()
    cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST = 0.01
    cfg.TEST.DETECTIONS_PER_IMAGE = 5
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 7
    cfg.SNIPER.TEST.SCALES = (1.0,)
    cfg.SNIPER.TEST.VALID_RANGES = ((-1, -1),)
    cfg.SNIPER.TEST.MERGE = "soft_nms"
    cfg.SNIPER.TEST.DETECTIONS_PER_IMAGE = 10000
    cfg.SNIPER.TEST.PROPOSALS_PER_SCALE = 20
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    inputs = [{"image": uint8_image(64, 96, seed=3), "height": 64, "width": 96}]
    seen = []
    original = model.inference

    def recording(batched_inputs, do_postprocess=True):
        out = original(batched_inputs, do_postprocess=do_postprocess)
        seen.append(len(out[0]["instances"]))
        return out

    model.inference = recording
    raw = SniperMultiScaleInference(cfg, model)(inputs)[0]["instances"]
    cfg.SNIPER.TEST.RAW_SCALE_DETECTIONS = False
    cfg.SNIPER.TEST.PROPOSALS_PER_SCALE = 0
    configured = SniperMultiScaleInference(cfg, model)(inputs)[0]["instances"]
    # random weights: scores near 1/4 per class, so nearly all of 20 proposals x 3 classes pass
    # 0.001 and none is suppressed; the model's own post-processing keeps 5
    assert 20 < seen[0] <= 60 and seen[1] == 5
    assert len(raw) > len(configured)
    predictor = model.roi_heads.box_predictor
    assert (predictor.test_nms_thresh, predictor.test_topk_per_image) == (0.01, 5)
    assert model.proposal_generator.post_nms_topk[False] == 7
