"""Histogram of object sizes (log x-axis) with the scales' valid ranges drawn under it (PNG)."""
from typing import Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .size_distribution import COCO_SIZE_LIMITS

__all__ = ["plot_size_histogram"]

RangeSet = Tuple[str, Sequence[Tuple[str, Tuple[float, float]]]]
_SET_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple")


def plot_size_histogram(
    sizes: np.ndarray, range_sets: Sequence[RangeSet], path: str, title: str = "Object sizes"
) -> None:
    """Write the histogram of ``sizes`` (sqrt(area), original px) to ``path``.

    ``range_sets``: ``[(name, [(scale label, (lo, hi)), ...]), ...]``, config pairs (-1 =
    unbounded), e.g. the configured and the suggested ranges; each scale becomes one bar under
    the histogram, spanning its range on the same axis. Uses matplotlib's Agg canvas only (no
    pyplot state, no display needed).
    """
    sizes = np.asarray(sizes, np.float64)
    sizes = sizes[sizes > 0]
    left = max(float(sizes.min()) / 1.5, 0.5) if len(sizes) else 1.0
    right = float(sizes.max()) * 1.5 if len(sizes) else 1000.0
    rows = [(name, label, pair, colour) for (name, ranges), colour in zip(range_sets, _SET_COLOURS)
            for label, pair in ranges]
    figure = Figure(figsize=(9, 4.5 + 0.28 * len(rows)), dpi=100)
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2, 1, height_ratios=(4, max(1, 0.45 * len(rows))), hspace=0.08)
    hist = figure.add_subplot(grid[0])
    bars = figure.add_subplot(grid[1], sharex=hist)
    hist.set_xscale("log")
    if len(sizes):
        hist.hist(sizes, bins=np.geomspace(left, right, 60), color="0.45")
    for limit in COCO_SIZE_LIMITS:
        hist.axvline(limit, color="0.2", linestyle=":", linewidth=1)
    hist.set_xlim(left, right)
    hist.set_ylabel("boxes")
    hist.set_title(f"{title} ({len(sizes)} boxes); dotted: COCO small/medium/large limits 32, 96 px")
    hist.tick_params(labelbottom=False)
    for y, (name, label, (lo, hi), colour) in enumerate(rows):
        start = left if lo <= 0 else lo
        end = right if hi < 0 else hi
        bars.barh(y, end - start, left=start, height=0.6, color=colour, alpha=0.8)
    bars.set_yticks(range(len(rows)))
    bars.set_yticklabels([f"{name}: {label}" for name, label, _, _ in rows], fontsize=8)
    bars.set_ylim(len(rows) - 0.5, -0.5)
    bars.set_xlabel("sqrt(box area), original px (log scale)")
    figure.savefig(path, bbox_inches="tight")
