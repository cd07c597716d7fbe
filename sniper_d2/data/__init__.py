"""SNIPER training data: annotations -> chips per epoch -> sampler -> chip mapper -> batches.

Importing this package also registers the built-in synthetic datasets (lazily).
"""
from . import builtin_datasets as _builtin_datasets  # noqa: F401  (registers sniper_shapes_*)
from .annotation_table import AnnotationTable
from .build import SniperTrainLoader, build_chip_planner, build_sniper_train_loader, sniper_seed
from .chip_dataset import ChipDataset
from .chip_mapper import SniperChipMapper
from .chip_plan import ChipPlanner, EpochChipPlan
from .chip_sampler import ChipSampler
from .negative_proposals import load_negative_proposals

__all__ = [
    "AnnotationTable",
    "ChipDataset",
    "ChipPlanner",
    "ChipSampler",
    "EpochChipPlan",
    "SniperChipMapper",
    "SniperTrainLoader",
    "build_chip_planner",
    "build_sniper_train_loader",
    "load_negative_proposals",
    "sniper_seed",
]
