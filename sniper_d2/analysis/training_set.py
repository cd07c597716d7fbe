"""The training set of a config, loaded for the analysis tools: image files need not exist.

The planner is built exactly as training builds it (:func:`sniper_d2.data.build_chip_planner`:
same datasets, proposals, chip generator, seed and stride range), so the chips the tools show and
count are the chips training will use, but without checking that the image files exist (an
annotation file alone is enough to analyse a dataset).
"""
import sys
from typing import Iterable

from tqdm import tqdm

from ..data import ChipPlanner, build_chip_planner

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
    """The :class:`ChipPlanner` of ``cfg.DATASETS.TRAIN`` (with SNIPER.NEG.PROPOSAL_FILES if set),
    exactly as training builds it, except that image files need not exist.

    Image files are opened only for images whose dataset dict lacks ``width``/``height``.
    """
    if not cfg.DATASETS.TRAIN:
        raise ValueError("DATASETS.TRAIN is empty: name the training dataset(s) to analyse.")
    return build_chip_planner(cfg, check_files=False)
