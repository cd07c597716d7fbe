"""Multi-scale SNIPER inference: per-scale valid ranges and a soft-NMS merge of the scales, tiled
for huge images, AutoFocus's coarse-to-fine pruning of the finer scales, and a one-image predictor."""
from .autofocus import PixelCounts
from .multi_scale import SniperMultiScaleInference, build_inference_model, build_test_mapper, scale_test_inputs
from .predictor import SniperPredictor
from .scale_merge import filter_by_valid_range, merge_scale_detections
from .soft_nms import batched_soft_nms
from .tiling import Tile, tile_grid

__all__ = [
    "PixelCounts",
    "SniperMultiScaleInference",
    "SniperPredictor",
    "Tile",
    "batched_soft_nms",
    "build_inference_model",
    "build_test_mapper",
    "filter_by_valid_range",
    "merge_scale_detections",
    "scale_test_inputs",
    "tile_grid",
]
