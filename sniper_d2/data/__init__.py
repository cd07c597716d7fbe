"""SNIPER training data: annotations -> chips per epoch -> sampler -> chip mapper -> batches.

Importing this package also registers the built-in synthetic datasets (lazily).
"""
from . import builtin_datasets as _builtin_datasets  # noqa: F401  (registers sniper_shapes_*)
from .annotation_table import AnnotationTable
from .build import SniperTrainLoader, build_chip_planner, build_sniper_train_loader, sniper_seed
from .chip_dataset import ChipDataset
from .chip_image import DecodedImageCache
from .chip_mapper import SniperChipMapper
from .chip_plan import ChipPlanner, EpochChipPlan
from .chip_sampler import ChipSampler
from .coco_registration import load_coco_json_with_sizes, register_coco_datasets, register_coco_with_sizes
from .image_files import check_training_images
from .negative_proposals import load_negative_proposals

__all__ = [
    "AnnotationTable",
    "ChipDataset",
    "ChipPlanner",
    "ChipSampler",
    "DecodedImageCache",
    "EpochChipPlan",
    "SniperChipMapper",
    "SniperTrainLoader",
    "build_chip_planner",
    "build_sniper_train_loader",
    "check_training_images",
    "load_coco_json_with_sizes",
    "load_negative_proposals",
    "register_coco_datasets",
    "register_coco_with_sizes",
    "sniper_seed",
]
