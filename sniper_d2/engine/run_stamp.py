"""Stamps: small JSON files recording what produced an output (config, training data, inputs).

An output is trusted only when its stamp exists and records the same config keys, the same
training datasets with the same content, and the same inputs as the run about to use it; anything
else is redone (mining stages) or refused (training, see :mod:`.run_guard`), with the difference
named in the log.

A *record* is ``{"config": {"A.B": value}, "datasets": [[name, digest], ...], "inputs": {...}}``;
the stamp file holds it plus ``config_sha256`` (a digest of ``config``, for reading at a glance),
``id`` (new for every stamp written: outputs made from this one refer to it through their
``inputs``) and ``written`` (UTC time).
"""
import datetime
import hashlib
import json
import os
import uuid
from typing import Any, Callable, Dict, Iterable, Optional, Sequence

from detectron2.utils import comm

from ..data.build import get_training_dicts
from .atomic_files import atomic_write

__all__ = [
    "STAMP_SUFFIX",
    "config_record",
    "dataset_digest",
    "dataset_digests",
    "decided_on_main_process",
    "make_record",
    "read_stamp",
    "record_difference",
    "stamp_path",
    "stale_reason",
    "write_stamp",
]

STAMP_SUFFIX = ".stamp.json"


def stamp_path(output: str) -> str:
    """The stamp of ``output``, next to it: ``<output>.stamp.json``."""
    return output + STAMP_SUFFIX


def config_record(cfg, ignore: Sequence[str] = (), keep: Sequence[str] = ()) -> Dict[str, Any]:
    """``cfg`` flattened to ``{"SOLVER.BASE_LR": 0.05, ...}`` in JSON types (tuples become lists).

    Keys equal to an ``ignore`` entry or under it (``"TEST"`` drops ``TEST.*``) are left out,
    unless listed in ``keep``.
    """
    flat = {}

    def visit(node, prefix):
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                visit(value, name + ".")
            elif name in keep or not any(name == p or name.startswith(p + ".") for p in ignore):
                flat[name] = value

    visit(cfg, "")
    return json.loads(json.dumps(flat, sort_keys=True))


def dataset_digest(name: str) -> str:
    """sha256 of what box training reads from the registered dataset ``name``: every image, in
    ``DatasetCatalog`` order, with its ``file_name``, ``image_id``, ``height``, ``width`` and each
    annotation's ``bbox``, ``bbox_mode``, ``category_id``, ``iscrowd``. Pixels are not read (an
    image replaced under the same file name goes unnoticed); one pass over the dataset dicts."""
    h = hashlib.sha256()
    dicts = get_training_dicts(name)
    for d in dicts:
        boxes = [
            [a.get("bbox"), a.get("bbox_mode"), a.get("category_id"), a.get("iscrowd", 0)]
            for a in d.get("annotations", ())
        ]
        row = [d.get("file_name"), d.get("image_id"), d.get("height"), d.get("width"), boxes]
        h.update(json.dumps(row, default=_plain).encode())
        h.update(b"\n")
    return f"{len(dicts)} images, sha256 {h.hexdigest()}"


def dataset_digests(names: Iterable[str]) -> Dict[str, str]:
    """:func:`dataset_digest` of each name."""
    return {n: dataset_digest(n) for n in names}


def _plain(value):
    """JSON form of values json does not know (numpy arrays and scalars) in dataset dicts."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def make_record(config: Dict[str, Any], datasets: Iterable[str] = (), inputs: Optional[Dict] = None,
                digests: Optional[Dict[str, str]] = None) -> Dict:
    """A record from a :func:`config_record`, the training dataset names (digested here unless
    ``digests`` has them) and ``inputs`` (e.g. the id of the stamp of a model used)."""
    digests = digests or {}
    return {
        "config": config,
        "datasets": [[n, digests[n] if n in digests else dataset_digest(n)] for n in datasets],
        "inputs": json.loads(json.dumps(inputs or {}, sort_keys=True)),
    }


def write_stamp(path: str, record: Dict, **extra) -> Dict:
    """Write ``record`` (plus ``extra`` fields) atomically as the stamp file ``path``; returns it."""
    stamp = dict(record)
    stamp.update(extra)
    stamp["config_sha256"] = hashlib.sha256(json.dumps(record["config"], sort_keys=True).encode()).hexdigest()
    stamp["id"] = uuid.uuid4().hex
    stamp["written"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with atomic_write(path, "w") as f:
        json.dump(stamp, f, indent=1, sort_keys=True)
    return stamp


def read_stamp(path: str) -> Optional[Dict]:
    """The stamp at ``path``; None when missing, unreadable or not a stamp."""
    try:
        with open(path) as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or not all(isinstance(stamp.get(k), dict) for k in ("config", "inputs")):
        return None
    datasets = stamp.get("datasets")
    well_formed = isinstance(datasets, list) and all(isinstance(d, list) and len(d) == 2 for d in datasets)
    return stamp if well_formed else None


def record_difference(old: Dict, new: Dict) -> Optional[str]:
    """What differs between the stamped record ``old`` and the current ``new``, in words; None if
    they are the same."""
    reasons = []
    old_names, new_names = [n for n, _ in old["datasets"]], [n for n, _ in new["datasets"]]
    if old_names != new_names:
        reasons.append(f"DATASETS.TRAIN changed: {old_names} -> {new_names}")
    else:
        reasons += [
            f"content of training dataset '{n}' changed ({a} -> {b})"
            for (n, a), (_, b) in zip(old["datasets"], new["datasets"]) if a != b
        ]
    absent = "<absent>"
    old_config, new_config = old["config"], new["config"]
    keys = sorted(k for k in old_config.keys() | new_config.keys()
                  if old_config.get(k, absent) != new_config.get(k, absent))
    if keys:
        shown = ", ".join(f"{k} {old_config.get(k, absent)!r} -> {new_config.get(k, absent)!r}" for k in keys[:5])
        more = f" and {len(keys) - 5} more keys" if len(keys) > 5 else ""
        reasons.append(f"config changed: {shown}{more}")
    reasons += [
        f"made from another {k} ({old['inputs'].get(k, absent)} -> {new['inputs'].get(k, absent)})"
        for k in sorted(set(old["inputs"]) | set(new["inputs"])) if old["inputs"].get(k) != new["inputs"].get(k)
    ]
    return "; ".join(reasons) or None


def stale_reason(output: str, record: Dict) -> Optional[str]:
    """Why ``output`` cannot be trusted as the product of ``record`` (None: it can): missing file,
    missing or unreadable stamp (an interrupted write, or an output of an older sniper_d2), or a
    stamp recording something else."""
    if not os.path.isfile(output):
        return f"{output} does not exist"
    stamp = read_stamp(stamp_path(output))
    if stamp is None:
        return (
            f"{output} has no readable stamp {os.path.basename(stamp_path(output))} (its run was "
            "interrupted, or it was written by an older sniper_d2), so it may be incomplete"
        )
    difference = record_difference(stamp, record)
    return f"{output} was made by another run: {difference}" if difference else None


def decided_on_main_process(decide: Callable[[], Any]) -> Any:
    """``decide()`` run on the main process only, its result (or exception) given to every
    process, so that all take the same branch even while the main process writes files."""
    result, error = None, None
    if comm.is_main_process():
        try:
            result = decide()
        except Exception as e:  # re-raised on every process below, so that none waits forever
            error = e
    if comm.get_world_size() > 1:
        result, error = comm.all_gather((result, error))[0]
    if error is not None:
        raise error
    return result

