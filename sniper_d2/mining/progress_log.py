"""Progress of a long loop as log lines (log.txt gets them, unlike a tqdm bar on stderr)."""
import datetime
import logging
import time
from typing import Callable

__all__ = ["ProgressLog"]


class ProgressLog:
    """Logs ``"<what>: done/total <unit>s (pct %), s per <unit>, ETA h:mm:ss"`` at most every
    ``interval_s`` seconds of ``clock`` and once when the loop is complete."""

    def __init__(self, total: int, what: str, logger: logging.Logger, unit: str = "image",
                 interval_s: float = 30.0, clock: Callable[[], float] = time.perf_counter):
        self.total, self.what, self.logger, self.unit = total, what, logger, unit
        self.interval_s, self.clock = interval_s, clock
        self.done = 0
        self.start = self.last = clock()

    def step(self, n: int = 1) -> None:
        """``n`` more items are done."""
        self.done += n
        now = self.clock()
        if now - self.last >= self.interval_s or self.done >= self.total:
            self.last = now
            self.logger.info(self.line(now))

    def line(self, now: float) -> str:
        per_item = (now - self.start) / max(self.done, 1)
        eta = datetime.timedelta(seconds=round(per_item * max(self.total - self.done, 0)))
        pct = 100.0 * self.done / max(self.total, 1)
        return (f"{self.what}: {self.done}/{self.total} {self.unit}s ({pct:.0f} %), {per_item:.2f} s per "
                f"{self.unit}, ETA {eta}")
