"""Valid ranges: the object sizes a pyramid level is responsible for.

A range is ``(lo, hi)`` in sqrt(box area); ``-1`` in a config means unbounded. Training uses
half-open ``lo <= size < hi`` (the authors' chip rules); test-time filtering uses
``lo < size <= hi`` (SNIPER_SPEC section 6). The membership tests work elementwise on numpy
arrays and torch tensors alike. Pairs and lists may be of any list-like type (list, tuple,
omegaconf's ``ListConfig`` from a LazyConfig).
"""
import math
from dataclasses import dataclass
from typing import Sequence, Tuple

from .scales import is_list_like

__all__ = ["ValidRange", "parse_valid_ranges"]


@dataclass(frozen=True)
class ValidRange:
    """``lo``/``hi``: sqrt(area) bounds in one frame (original px unless scaled); 0 / inf = open."""

    lo: float = 0.0
    hi: float = math.inf

    @classmethod
    def from_config(cls, pair) -> "ValidRange":
        """From a config pair ``(lo, hi)`` where -1 means unbounded."""
        if not is_list_like(pair) or len(pair) != 2:
            raise ValueError(f"A valid range is a pair (lo, hi) with -1 = unbounded, got {pair!r}.")
        lo, hi = (float(v) for v in pair)
        if any(math.isnan(v) for v in (lo, hi)) or (lo < 0 and lo != -1) or (hi < 0 and hi != -1):
            raise ValueError(f"Invalid valid range {pair!r}: bounds are >= 0, or -1 for unbounded.")
        lo = 0.0 if lo == -1 else lo
        hi = math.inf if hi == -1 else hi
        if not lo < hi:
            raise ValueError(f"Invalid valid range {pair!r}: lo must be below hi.")
        return cls(lo, hi)

    def scaled(self, factor: float) -> "ValidRange":
        """The same range in a frame ``factor`` times larger (e.g. original px -> chip px)."""
        return ValidRange(self.lo * factor, self.hi * factor)

    def contains_train(self, size):
        """``lo <= size < hi`` (training rule), elementwise."""
        return (size >= self.lo) & (size < self.hi)

    def contains_test(self, size):
        """``lo < size <= hi`` (test-time rule), elementwise; an open lower end admits 0."""
        lower = (size >= 0) if self.lo == 0 else (size > self.lo)
        return lower & (size <= self.hi)

    def as_config(self) -> Tuple[float, float]:
        return (-1 if self.lo == 0 else self.lo, -1 if math.isinf(self.hi) else self.hi)


def parse_valid_ranges(pairs: Sequence, num_scales: int, key: str = "VALID_RANGES"):
    """Parse one ``(lo, hi)`` (or a ready :class:`ValidRange`) per scale; raise naming ``key`` if
    the counts disagree."""
    if not is_list_like(pairs):
        raise ValueError(f"{key} is a list of (lo, hi) pairs, one per scale (-1 = unbounded), got {pairs!r}.")
    ranges = tuple(p if isinstance(p, ValidRange) else ValidRange.from_config(p) for p in pairs)
    if len(ranges) != num_scales:
        raise ValueError(
            f"{key} has {len(ranges)} ranges but there are {num_scales} scales: give exactly one "
            "(lo, hi) per scale, in the same order (sqrt(area) in original px, -1 = unbounded)."
        )
    return ranges
