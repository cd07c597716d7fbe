"""Multi-scale inference of a Mask R-CNN: masks stay with their boxes through the range filter
and the merge, and come out pasted in original px as Detectron2's single-scale ones do."""
import pytest
import torch
from detectron2.modeling import build_model

from sniper_d2.inference.multi_scale import SniperMultiScaleInference
from sniper_d2.inference.scale_merge import MASK_ROI_FIELD

from .conftest import tiny_faster_rcnn_cfg


@pytest.fixture(scope="module")
def mask_model():
    cfg = tiny_faster_rcnn_cfg()
    cfg.MODEL.MASK_ON = True
    cfg.MODEL.ROI_MASK_HEAD.NUM_CONV = 1
    cfg.MODEL.ROI_MASK_HEAD.CONV_DIM = 8
    cfg.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION = 7
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    torch.nn.init.normal_(model.roi_heads.mask_head.predictor.weight, std=0.5)  # masks with some shape
    return model


def inputs(height=90, width=120):
    generator = torch.Generator().manual_seed(2)
    return [{"image": torch.randint(0, 256, (3, height, width), generator=generator, dtype=torch.uint8),
             "height": height, "width": width}]


def test_one_scale_equals_detectron2_single_scale(mask_model):
    """Scale 1, no range, a merge that drops nothing: the detections and pasted masks of
    Detectron2's own post-processing."""
    wrapper = SniperMultiScaleInference(mask_model, scales=[1.0], valid_ranges=[(-1, -1)], merge="nms",
                                        nms_thresh=1.0, score_thresh=0.0, detections_per_image=1000)
    with torch.no_grad():
        expected = mask_model(inputs())[0]["instances"]
        actual = wrapper(inputs())[0]["instances"]
    assert len(expected) > 0 and not actual.has(MASK_ROI_FIELD)
    order = torch.argsort(expected.scores, descending=True, stable=True)
    assert torch.equal(actual.pred_boxes.tensor, expected.pred_boxes.tensor[order])
    assert actual.pred_masks.shape == expected.pred_masks.shape == (len(expected), 90, 120)
    assert torch.equal(actual.pred_masks, expected.pred_masks[order])


@pytest.mark.parametrize("merge", ["soft_nms", "nms"])
def test_masks_stay_aligned_through_range_filter_and_merge(mask_model, merge):
    scales, ranges = [2.0, 1.0, 0.5], [(-1, 30), (20, 60), (40, -1)]
    wrapper = SniperMultiScaleInference(mask_model, scales=scales, valid_ranges=ranges, merge=merge,
                                        score_thresh=0.0, detections_per_image=50)
    with torch.no_grad():
        out = wrapper(inputs())[0]["instances"]
    assert len(out) > 0 and out.pred_masks.shape == (len(out), 90, 120) and out.pred_masks.dtype == torch.bool
    # every mask is pasted at its own box: nothing of it outside (1 px for rounding)
    ys, xs = torch.arange(90)[:, None], torch.arange(120)[None, :]
    for mask, (x0, y0, x1, y1) in zip(out.pred_masks, out.pred_boxes.tensor.tolist()):
        inside = (xs >= int(x0) - 1) & (xs <= x1 + 1) & (ys >= int(y0) - 1) & (ys <= y1 + 1)
        assert not (mask & ~inside).any()
    assert out.pred_masks.any(dim=(1, 2)).float().mean() > 0.5


def test_tiling_still_refuses_mask_models(mask_model):
    with pytest.raises(ValueError, match="TILE_SIZE"):
        SniperMultiScaleInference(mask_model, scales=[1.0], valid_ranges=[(-1, -1)], tile_size=64)
