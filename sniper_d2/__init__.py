"""SNIPER efficient multi-scale training as a Detectron2 extension.

Importing this package registers every SNIPER component in Detectron2's registries
(``SniperRPN``, ``SniperStandardROIHeads``, ``SniperRes5ROIHeads``, ``SniperAutoFocusRCNN``) and the
built-in synthetic datasets (``sniper_shapes_train``, ``sniper_shapes_val``; generated on first use).
"""
from . import opencv_check as _opencv_check  # noqa: F401  (cv2 missing: fails here, naming the packages)
from . import modeling as _modeling  # noqa: F401  (registers the heads)
from .log import forward_to_detectron2_logger
from .chip_instances import ChipInstances
from .config import add_sniper_config, check_sniper_config
from .data import SniperChipMapper, build_sniper_train_loader, register_coco_datasets, register_coco_with_sizes
from .engine import SniperTrainer
from .inference import SniperMultiScaleInference, SniperPredictor, build_inference_model, build_test_mapper
from .modeling import (
    FOCUS_HEAD_REGISTRY,
    FocusPixelHead,
    SniperAutoFocusRCNN,
    SniperRes5ROIHeads,
    SniperRPN,
    SniperStandardROIHeads,
    focus_pixel_labels,
)

__all__ = [
    "ChipInstances",
    "FOCUS_HEAD_REGISTRY",
    "FocusPixelHead",
    "SniperAutoFocusRCNN",
    "SniperChipMapper",
    "SniperMultiScaleInference",
    "SniperPredictor",
    "SniperRPN",
    "SniperRes5ROIHeads",
    "SniperStandardROIHeads",
    "SniperTrainer",
    "add_sniper_config",
    "build_inference_model",
    "build_sniper_train_loader",
    "build_test_mapper",
    "check_sniper_config",
    "focus_pixel_labels",
    "register_coco_datasets",
    "register_coco_with_sizes",
]
__version__ = "0.1.0"

forward_to_detectron2_logger()  # sniper_d2's log lines reach Detectron2's console and log.txt
