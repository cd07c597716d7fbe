"""Random draws that depend on (``SEED``, rank, iteration) only, so that a resumed run repeats an
uninterrupted one exactly.

Detectron2 seeds the global generators once per process (``default_setup``); a run resumed at
iteration k then draws differently from one that reached k without stopping (the RPN / box-head
sampling, the flips, the model built before its weights are loaded, and the one number
torch's DataLoader draws when it starts), so its weights differ. With ``SEED >= 0`` the
:class:`~sniper_d2.engine.trainer.SniperTrainer` re-seeds Python's, NumPy's and torch's
generators when it is built and around every batch it fetches. Loader workers
(``DATALOADER.NUM_WORKERS > 0``) keep their own generators, which a resumed run starts anew: the
flips of a resumed run then differ; with 0 workers they are the same.
"""
import random

import numpy as np
import torch
from detectron2.utils.events import get_event_storage

__all__ = ["IterationSeededLoader", "seed_global_rngs"]

# purposes mixed into the seed: building a trainer (model initialisation), fetching a batch
# (loader-side draws), the step on it (model-side draws)
BUILD, FETCH, STEP = 0, 1, 2


def seed_global_rngs(*keys: int) -> None:
    """Seed Python's, NumPy's and torch's global generators from non-negative integer ``keys``."""
    seed = int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class IterationSeededLoader:
    """Yields the batches of ``loader``; inside Detectron2's training loop, seeds the global
    generators from (``seed``, ``rank``, iteration) before fetching each batch and again before
    handing it to the step. Outside a training loop it only passes the batches through. Other
    attributes are the wrapped loader's."""

    def __init__(self, loader, seed: int, rank: int):
        self.loader, self.seed, self.rank = loader, int(seed), int(rank)

    def __iter__(self):
        batches = iter(self.loader)
        while True:
            iteration = _training_iteration()
            if iteration is not None:
                seed_global_rngs(self.seed, self.rank, iteration, FETCH)
            try:
                batch = next(batches)
            except StopIteration:
                return
            if iteration is not None:
                seed_global_rngs(self.seed, self.rank, iteration, STEP)
            yield batch

    def __getattr__(self, name):
        if name == "loader":  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.loader, name)


def _training_iteration():
    try:
        return get_event_storage().iter
    except AssertionError:  # not inside a training loop
        return None
