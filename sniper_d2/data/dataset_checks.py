"""Start-up checks of the training datasets against the config, before any chip is trained.

Mistakes that otherwise train silently: classes beyond ``MODEL.ROI_HEADS.NUM_CLASSES`` (the id
``NUM_CLASSES`` is background in Detectron2, larger ids fail later with an IndexError), training
datasets whose class lists differ (their ids would mean different classes), and training scales
written coarsest-first (the chip rules treat the first scale as the finest).
"""
from typing import List, Sequence, Tuple

import numpy as np
from detectron2.data import MetadataCatalog

from ..chips.scales import parse_scales

__all__ = ["check_class_lists", "check_num_classes", "check_scale_order"]


def check_num_classes(datasets: Sequence[Tuple[str, List[dict]]], num_classes: int) -> None:
    """Raise if an annotation's ``category_id`` (contiguous, as Detectron2's loaders map them) is
    not below ``num_classes`` (``MODEL.ROI_HEADS.NUM_CLASSES``); crowd boxes count too."""
    for name, dicts in datasets:
        classes = MetadataCatalog.get(name).get("thing_classes", None)
        if classes is not None and len(classes) > num_classes:
            raise ValueError(
                f"Training dataset '{name}' has {len(classes)} classes (thing_classes) but "
                f"MODEL.ROI_HEADS.NUM_CLASSES is {num_classes}: set MODEL.ROI_HEADS.NUM_CLASSES {len(classes)}."
            )
        for record in dicts:
            for anno in record.get("annotations", ()):
                category = anno.get("category_id")
                if category is not None and not 0 <= int(category) < num_classes:
                    raise ValueError(
                        f"Training dataset '{name}', image id {record.get('image_id')!r} "
                        f"({record.get('file_name')}): an annotation has category_id {category}, but "
                        f"MODEL.ROI_HEADS.NUM_CLASSES is {num_classes}, so ids must be 0..{num_classes - 1} "
                        "(Detectron2 reads id NUM_CLASSES as background). Raise NUM_CLASSES to the "
                        "dataset's number of classes, or map the category ids to contiguous 0-based ids "
                        "(register_coco_instances does that for COCO files)."
                    )


def check_class_lists(names: Sequence[str]) -> None:
    """Raise if training datasets registered with class lists (``thing_classes``) disagree:
    the same id would mean different classes (Detectron2's own loader refuses this too)."""
    known = [(n, MetadataCatalog.get(n).get("thing_classes", None)) for n in names]
    known = [(n, list(c)) for n, c in known if c is not None]
    for name, classes in known[1:]:
        first, first_classes = known[0]
        if classes != first_classes:
            differ = next((i for i, (a, b) in enumerate(zip(first_classes, classes)) if a != b),
                          min(len(first_classes), len(classes)))
            raise ValueError(
                f"DATASETS.TRAIN mixes datasets with different classes: '{first}' has {len(first_classes)} "
                f"{_listed(first_classes)}, '{name}' has {len(classes)} {_listed(classes)} (they first differ "
                f"at id {differ}). Register both with the same thing_classes in the same order (and the "
                "same category-id mapping), or train on one of them."
            )


def _listed(classes: Sequence[str], n: int = 8) -> str:
    more = ", ..." if len(classes) > n else ""
    return "(" + ", ".join(map(str, classes[:n])) + more + ")"


def check_scale_order(scales, image_sizes: np.ndarray, key: str = "SNIPER.TRAIN.SCALES") -> None:
    """Raise unless ``scales`` run finest first for the dataset's median image.

    Args:
        scales: the config's scale list (factors, ``"longest:N"``, ``(short, max_long)``).
        image_sizes: (N, 2) width, height of the training images, original px.
        key: the config key, for the message.
    """
    specs = parse_scales(scales)
    if len(specs) < 2 or len(image_sizes) == 0:
        return
    width, height = np.median(np.asarray(image_sizes, dtype=np.float64), axis=0)
    factors = [float(spec.factor(width, height)) for spec in specs]
    written = [str(tuple(x) if isinstance(x, (list, tuple)) else x) for x in scales]
    rising = [i for i in range(1, len(factors)) if factors[i] > factors[i - 1] * (1 + 1e-6)]
    if rising:
        i = rising[0]
        order = sorted(range(len(factors)), key=lambda j: -factors[j])
        raise ValueError(
            f"{key} must list scales finest first (largest factor first): for the training set's median "
            f"image ({width:.0f} x {height:.0f} px) they resolve to factors "
            f"{[round(f, 3) for f in factors]}, and scale {i} ({written[i]}) is finer than scale {i - 1} "
            f"({written[i - 1]}). Reorder the scales as {[written[j] for j in order]}, and their "
            "VALID_RANGES and SNIPER.NEG.MIN_PROPOSALS entries with them: the chip rules treat the "
            "first scale as the finest and the last as the coarsest."
        )
