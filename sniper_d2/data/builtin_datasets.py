"""Built-in datasets, registered when ``sniper_d2`` is imported.

``sniper_shapes_train`` / ``sniper_shapes_val``: the synthetic shapes dataset
(:mod:`sniper_d2.data.synthetic_shapes`), generated on first use under
``$SNIPER_D2_DATASETS/sniper_shapes`` (default ``./datasets/sniper_shapes``), 64 training and
48 validation images; ``sniper_shapes_test``, 96 more held-out images of the same kind, for
benchmarks that choose test-time settings on ``sniper_shapes_val`` and report on images the
choice never saw. Object sizes (sqrt(area) 10 px to 0.8x the short image side, log-uniform:
about 37 % are COCO-small, below 32 px) do not depend on image size (224-614 px): no single
input resolution suits every object, the case SNIPER is for.

``sniper_shapes_rescaled_train`` / ``sniper_shapes_rescaled_val``: the other kind of scale
variation, for benchmarks: each image (about 320-384 px) is resized with its objects by a factor
of 0.35-1.65, so object size follows image size and one resolution for all images normalises it.

Registration is lazy: importing does not touch the disk.
"""
import os
from typing import Dict

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json

from .synthetic_shapes import SHAPE_CLASSES, ShapesSpec, generate_shapes_dataset

__all__ = ["BUILTIN_SPLITS", "datasets_root", "ensure_builtin_dataset", "register_builtin_datasets"]

# Different seeds: the validation images are never training images.
BUILTIN_SPLITS: Dict[str, ShapesSpec] = {
    "sniper_shapes_train": ShapesSpec(num_images=64, min_object_size=10.0, crowd_fraction=0.1, seed=1),
    "sniper_shapes_val": ShapesSpec(num_images=48, min_object_size=10.0, seed=2),
    "sniper_shapes_test": ShapesSpec(num_images=96, min_object_size=10.0, seed=5),
    "sniper_shapes_rescaled_train": ShapesSpec(
        num_images=64, min_side=320, max_side=384, max_aspect=1.3, min_object_size=16.0,
        max_object_fraction=0.35, crowd_fraction=0.1, rescale_range=(0.35, 1.65), seed=3,
    ),
    "sniper_shapes_rescaled_val": ShapesSpec(
        num_images=48, min_side=320, max_side=384, max_aspect=1.3, min_object_size=16.0,
        max_object_fraction=0.35, rescale_range=(0.35, 1.65), seed=4,
    ),
}


def datasets_root() -> str:
    return os.path.expanduser(os.environ.get("SNIPER_D2_DATASETS", "datasets"))


def _paths(name: str):
    family, split = name.rsplit("_", 1)
    base = os.path.join(datasets_root(), family)
    return os.path.join(base, split), os.path.join(base, "annotations", f"{split}.json")


def ensure_builtin_dataset(name: str):
    """Generate the built-in dataset ``name`` if its files are missing; return (image_dir, json_file)."""
    image_dir, json_file = _paths(name)
    if not (os.path.isfile(json_file) and os.path.isdir(image_dir)):
        generate_shapes_dataset(image_dir, json_file, BUILTIN_SPLITS[name])
    return image_dir, json_file


def _load(name: str):
    image_dir, json_file = ensure_builtin_dataset(name)
    MetadataCatalog.get(name).set(json_file=json_file, image_root=image_dir)
    return load_coco_json(json_file, image_dir, name)


def register_builtin_datasets() -> None:
    for name in BUILTIN_SPLITS:
        if name in DatasetCatalog.list():
            continue
        DatasetCatalog.register(name, lambda name=name: _load(name))
        MetadataCatalog.get(name).set(thing_classes=list(SHAPE_CLASSES), evaluator_type="coco")


register_builtin_datasets()
