"""Infinite, epoch-aware, distributed sampler over SNIPER training chips."""
import itertools
from typing import Iterator, Optional

from detectron2.utils import comm
from torch.utils.data import Sampler

from .chip_plan import ChipPlanner, encode_chip_key

__all__ = ["ChipSampler"]


class ChipSampler(Sampler):
    """Yields chip keys (see :func:`~sniper_d2.data.chip_plan.encode_chip_key`) forever.

    Epoch ``e`` is the planner's shuffled chip list for ``e`` (chips are regenerated and negatives
    re-sampled every epoch). Rank ``r`` of ``world_size`` takes positions ``r, r + world_size, ...``,
    so ranks see disjoint chips that together cover the epoch; all ranks derive the same list from
    the planner's shared seed. ``start`` skips that many of this rank's chips, which makes a resumed
    run continue the sequence of an uninterrupted one.

    Workers of one DataLoader share this sampler's stream (Detectron2's ``ToIterableDataset``
    splits it between them), so it must not shard by worker itself.
    """

    def __init__(self, planner: ChipPlanner, rank: Optional[int] = None, world_size: Optional[int] = None,
                 start: int = 0):
        self.planner = planner
        self.rank = comm.get_rank() if rank is None else int(rank)
        self.world_size = comm.get_world_size() if world_size is None else int(world_size)
        self.start = int(start)

    def epoch_positions(self, epoch: int) -> range:
        """Positions of ``epoch``'s chip list that belong to this rank."""
        plan = self.planner.plan(epoch)
        if len(plan) == 0:
            raise RuntimeError(self.planner.no_chips_message())
        if len(plan) < self.world_size:
            raise RuntimeError(
                f"Epoch {epoch} has {len(plan)} chips but there are {self.world_size} ranks: every rank "
                "needs at least one chip per epoch. Use fewer processes or a larger dataset."
            )
        return range(self.rank, len(plan), self.world_size)

    def __iter__(self) -> Iterator[int]:
        skip = self.start
        for epoch in itertools.count():
            positions = self.epoch_positions(epoch)
            if skip >= len(positions):
                skip -= len(positions)
                continue
            for position in positions[skip:]:
                yield encode_chip_key(epoch, position)
            skip = 0
