"""A SNIPER model exports like a Detectron2 model: SniperRPN and the SNIPER ROI heads script with
Detectron2's ``scripting_with_instances`` (as its own scriptability tests do for the stock heads)
and the scripted model's detections equal the eager model's."""
import pytest
import torch
from detectron2.export import scripting_with_instances
from detectron2.modeling import build_model
from detectron2.structures import Boxes

FIELDS = {
    "proposal_boxes": Boxes,
    "objectness_logits": torch.Tensor,
    "pred_boxes": Boxes,
    "scores": torch.Tensor,
    "pred_classes": torch.Tensor,
}


@pytest.mark.parametrize("arch", ["FPN", "C4"])
def test_scripted_sniper_model_detects_as_the_eager_one(tiny_cfg, arch):
    cfg = tiny_cfg(arch, sniper=True)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    assert type(model.proposal_generator).__name__ == "SniperRPN"
    assert type(model.roi_heads).__name__.startswith("Sniper")
    inputs = [{"image": torch.rand(3, 96, 80) * 255}]
    with torch.no_grad():
        eager = model.inference(inputs, do_postprocess=False)[0]
        scripted = scripting_with_instances(model, FIELDS).inference(inputs, do_postprocess=False)[0]
    assert len(eager) > 0
    torch.testing.assert_close(scripted.pred_boxes.tensor, eager.pred_boxes.tensor)
    torch.testing.assert_close(scripted.scores, eager.scores)
    assert torch.equal(scripted.pred_classes, eager.pred_classes)


def test_tracing_the_multi_scale_wrapper_refuses_with_the_export_path(tiny_cfg):
    from detectron2.export import TracingAdapter

    from sniper_d2.inference import build_inference_model

    cfg = tiny_cfg("FPN", sniper=True)
    cfg.SNIPER.TEST.SCALES, cfg.SNIPER.TEST.VALID_RANGES = (1.0, 0.5), ((-1, 40), (30, -1))
    wrapper = build_inference_model(cfg, build_model(cfg).eval())
    inputs = [{"image": torch.rand(3, 64, 64) * 255}]
    with pytest.raises(RuntimeError, match=r"cannot be traced or scripted.*TracingAdapter.*build_inference_model"):
        torch.jit.trace(TracingAdapter(wrapper, inputs), TracingAdapter(wrapper, inputs).flattened_inputs)
