"""Multi-scale SNIPER inference: per-scale valid ranges and a soft-NMS merge of the scales."""
from .multi_scale import SniperMultiScaleInference, build_inference_model, build_test_mapper, scale_test_inputs
from .scale_merge import filter_by_valid_range, merge_scale_detections
from .soft_nms import batched_soft_nms

__all__ = [
    "SniperMultiScaleInference",
    "batched_soft_nms",
    "build_inference_model",
    "build_test_mapper",
    "filter_by_valid_range",
    "merge_scale_detections",
    "scale_test_inputs",
]
