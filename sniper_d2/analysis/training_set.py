"""The training set of a config, loaded for the analysis tools: image files need not exist.

The planner is built exactly as training builds it (:func:`sniper_d2.data.build_chip_planner`:
same datasets, proposals, chip generator, seed and stride range), so the chips the tools show and
count are the chips training will use, but without checking that the image files exist (an
annotation file alone is enough to analyse a dataset).
"""
import sys
from typing import Iterable

from tqdm import tqdm

from ..chips import ChipGenerator
from ..data import AnnotationTable, ChipPlanner, load_negative_proposals, sniper_seed
from ..data.build import get_training_dicts

__all__ = ["PROGRESS_MIN_ITEMS", "load_training_planner", "progress"]

# Loops over at least this many images show a progress bar.
PROGRESS_MIN_ITEMS = 300


def progress(iterable: Iterable, total: int, desc: str):
    """``iterable`` with a tqdm progress bar (on stderr) when ``total`` >= PROGRESS_MIN_ITEMS."""
    return tqdm(
        iterable, total=total, desc=desc, unit="img", disable=total < PROGRESS_MIN_ITEMS, dynamic_ncols=True,
        mininterval=0.1 if sys.stderr.isatty() else 10.0,  # a log file gets a line every 10 s
    )


def load_training_planner(cfg) -> ChipPlanner:
    """The :class:`ChipPlanner` of ``cfg.DATASETS.TRAIN`` (with SNIPER.NEG.PROPOSAL_FILES if set).

    Image files are opened only for images whose dataset dict lacks ``width``/``height``.
    """
    names = list(cfg.DATASETS.TRAIN)
    if not names:
        raise ValueError("DATASETS.TRAIN is empty: name the training dataset(s) to analyse.")
    datasets = [(name, get_training_dicts(name)) for name in names]
    files = list(cfg.SNIPER.NEG.PROPOSAL_FILES)
    proposals = None
    if files:
        if len(files) != len(names):
            raise ValueError(
                f"SNIPER.NEG.PROPOSAL_FILES has {len(files)} files but DATASETS.TRAIN has {len(names)} "
                "datasets: give one proposal file per training dataset, in the same order."
            )
        proposals = [load_negative_proposals(f, n, d) for f, (n, d) in zip(files, datasets)]
    table = AnnotationTable(
        [(name, progress(dicts, len(dicts), f"reading {name}")) for name, dicts in datasets],
        proposals,
        check_files=False,
    )
    return ChipPlanner(
        table,
        ChipGenerator.from_config(cfg),
        seed=sniper_seed(cfg),
        negatives_per_image=cfg.SNIPER.NEG.CHIPS_PER_IMAGE if files else 0,
        stride_range=cfg.SNIPER.TRAIN.CHIP_STRIDE_RANGE or None,
    )
