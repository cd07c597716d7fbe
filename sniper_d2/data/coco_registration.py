"""Registering COCO-format files whose images may lack ``width`` / ``height``.

Detectron2's ``load_coco_json`` needs both for every image and stops with a bare
``KeyError: 'height'`` otherwise (files written by many labelling tools omit them).
:func:`register_coco_with_sizes` registers like Detectron2's ``register_coco_instances`` and
fills missing sizes from the image files' headers (no decode; EXIF orientation applied, as
Detectron2 reads images upright).
"""
import json
import logging
import os
import tempfile
from typing import List, Optional

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json
from tqdm import tqdm

from .image_files import image_file_size, image_ref

__all__ = ["load_coco_json_with_sizes", "register_coco_datasets", "register_coco_with_sizes"]

logger = logging.getLogger(__name__)

_PROGRESS_MIN_IMAGES = 300


def _fill_sizes(coco: dict, json_file: str, image_root: str, dataset_name: Optional[str]) -> int:
    """Set width/height of the images of ``coco`` that lack them, from their files; returns how many."""
    images = [im for im in coco.get("images", []) if "width" not in im or "height" not in im]
    unreadable: List[str] = []
    for im in tqdm(images, desc=f"image sizes for {os.path.basename(json_file)}", unit="image",
                   disable=len(images) < _PROGRESS_MIN_IMAGES, leave=False):
        path = os.path.join(image_root, im["file_name"])
        try:
            im["width"], im["height"] = image_file_size(path)
        except OSError as e:
            unreadable.append(f"{image_ref(dataset_name or json_file, im.get('id'), path)}: {e}")
    if unreadable:
        shown = "\n  ".join(unreadable[:10])
        raise FileNotFoundError(
            f"{json_file}: {len(unreadable)} image(s) have no width/height and their files cannot be read, e.g.:\n"
            f"  {shown}\nFix the image root ({image_root}) or the file names, add width/height to the JSON, "
            "or remove those images."
        )
    return len(images)


def load_coco_json_with_sizes(json_file: str, image_root: str, dataset_name: Optional[str] = None) -> List[dict]:
    """Detectron2's ``load_coco_json``; images without width/height get them from their files."""
    try:
        return load_coco_json(json_file, image_root, dataset_name)
    except KeyError as e:
        # load_coco_json reads sizes as img_dict["height"] / ["width"]: its only KeyError with these args
        if e.args not in (("height",), ("width",)):
            raise
    with open(json_file) as f:
        coco = json.load(f)
    filled = _fill_sizes(coco, json_file, image_root, dataset_name)
    logger.info(f"{json_file}: width/height of {filled} of {len(coco['images'])} images read from their files")
    with tempfile.TemporaryDirectory() as tmp:
        # same base name: load_coco_json treats files named *minival* differently
        sized = os.path.join(tmp, os.path.basename(json_file))
        with open(sized, "w") as f:
            json.dump(coco, f)
        return load_coco_json(sized, image_root, dataset_name)


def register_coco_with_sizes(name: str, json_file: str, image_root: str, metadata: Optional[dict] = None) -> None:
    """Register a COCO instances file as dataset ``name``, as Detectron2's
    ``register_coco_instances(name, metadata, json_file, image_root)`` does (same dataset dicts and
    metadata: ``json_file``, ``image_root``, ``evaluator_type="coco"``, class names), except that
    images without ``width``/``height`` get them from their file headers when the dataset is
    loaded; an unreadable or missing file among those fails naming dataset, image id and file.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_coco_with_sizes: the dataset name must be a non-empty string, got {name!r}.")
    json_file, image_root = os.fspath(json_file), os.fspath(image_root)
    DatasetCatalog.register(name, lambda: load_coco_json_with_sizes(json_file, image_root, name))
    MetadataCatalog.get(name).set(json_file=json_file, image_root=image_root, evaluator_type="coco", **(metadata or {}))


def register_coco_datasets(triples) -> None:
    """Register each ``(name, json_file, image_root)`` of a ``--register-coco`` flag with
    :func:`register_coco_with_sizes`; a name that is already registered is an error."""
    for name, json_file, image_root in triples:
        if name in DatasetCatalog.list():
            raise ValueError(f"--register-coco: a dataset named '{name}' is already registered; choose another name.")
        register_coco_with_sizes(name, json_file, image_root)
