"""Reading proposal files for negative chips (Detectron2's proposal-file format).

A proposal file is a pickle of a dict with ``ids`` (image ids), ``boxes`` (one (P, 4) array per
image) and ``objectness_logits`` (one (P,) array per image), optionally ``bbox_mode`` (default
XYXY_ABS, original px). ``train_net.py --mine-negatives`` (:mod:`sniper_d2.mining`) writes such
files.
"""
import logging
import os
import pickle
from collections import Counter
from typing import Dict, List

import numpy as np
from detectron2.structures import BoxMode

__all__ = ["load_negative_proposals"]

logger = logging.getLogger(__name__)


def _examples(items, n=5) -> str:
    items = list(items)
    more = f" (and {len(items) - n} more)" if len(items) > n else ""
    return ", ".join(repr(x) for x in items[:n]) + more


def load_negative_proposals(path: str, dataset_name: str, dataset_dicts: List[dict]) -> Dict[object, np.ndarray]:
    """Proposals per image id of ``dataset_name``: ``{image_id: (P, 4) float64 XYXY original px}``.

    Ids are matched as strings (like Detectron2's own proposal loading). Unknown ids, malformed
    boxes or a malformed file raise errors naming them; images absent from the file are logged
    (they get positive chips only).
    """
    where = f"proposal file {path!r} (for dataset '{dataset_name}', SNIPER.NEG.PROPOSAL_FILES)"
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Missing {where}. Produce it with `train_net.py --mine-negatives`, or set SNIPER.NEG.PROPOSAL_FILES "
            "to () to train on positive chips only."
        )
    try:
        with open(path, "rb") as f:
            data = pickle.load(f, encoding="latin1")
    except (EOFError, pickle.UnpicklingError, UnicodeDecodeError, AttributeError, ImportError, ValueError) as e:
        size = os.path.getsize(path)
        raise ValueError(
            f"Cannot read {where}: it is {'empty' if size == 0 else f'truncated or not a pickle ({size} bytes)'} "
            f"({type(e).__name__}: {e}). Regenerate it (delete it and re-run `train_net.py --mine-negatives`) "
            "or set SNIPER.NEG.PROPOSAL_FILES to () to train on positive chips only."
        ) from e
    if not isinstance(data, dict) or not {"ids", "boxes"} <= set(data):
        raise ValueError(f"Malformed {where}: expected a dict with 'ids' and 'boxes' (and 'objectness_logits').")
    ids, boxes = list(data["ids"]), list(data["boxes"])
    if len(ids) != len(boxes):
        raise ValueError(f"Malformed {where}: {len(ids)} ids but {len(boxes)} box arrays.")
    mode = BoxMode(data.get("bbox_mode", BoxMode.XYXY_ABS))

    repeated = [i for i, n in Counter(str(i) for i in ids).items() if n > 1]
    if repeated:
        raise ValueError(f"{where} lists image id(s) more than once: {_examples(repeated)}. Regenerate it.")
    dataset_ids = {str(d["image_id"]): d["image_id"] for d in dataset_dicts}
    unknown = [i for i in ids if str(i) not in dataset_ids]
    if unknown:
        raise ValueError(
            f"{where} has {len(unknown)} image id(s) that are not in the dataset: {_examples(unknown)}. "
            "Was it produced for another dataset? Re-run the proposal extraction for this one."
        )
    out = {}
    for image_id, b in zip(ids, boxes):
        b = np.asarray(b, dtype=np.float64)
        if b.size == 0:
            b = b.reshape(0, 4)
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f"{where}: boxes of image id {image_id!r} have shape {b.shape}, expected (P, 4).")
        if not np.isfinite(b).all():
            raise ValueError(f"{where}: boxes of image id {image_id!r} contain NaN or inf.")
        if mode != BoxMode.XYXY_ABS:
            b = BoxMode.convert(b, mode, BoxMode.XYXY_ABS)
        inverted = np.flatnonzero((b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1]))
        if len(inverted):
            raise ValueError(
                f"{where}: proposal {inverted[0]} {b[inverted[0]].tolist()} of image id {image_id!r} has x2 < x1 "
                f"or y2 < y1 ({len(inverted)} such proposals in this image). Proposals must be XYXY "
                "(x1, y1, x2, y2) original px, or the file must say its 'bbox_mode': convert XYWH proposals."
            )
        out[dataset_ids[str(image_id)]] = b
    absent = len(dataset_ids) - len(out)
    if absent:
        logger.warning(
            f"{absent} of {len(dataset_ids)} images of '{dataset_name}' are absent from {where}: "
            "they get positive chips only."
        )
    return out
