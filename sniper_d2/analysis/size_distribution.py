"""Object-size distribution of a dataset: sqrt(area) percentiles and COCO's small/medium/large shares."""
from typing import Dict

import numpy as np

__all__ = ["COCO_SIZE_LIMITS", "SIZE_PERCENTILES", "size_distribution"]

SIZE_PERCENTILES = (0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 100)
# COCO's object-size classes, sqrt(area) in original px: small < 32 <= medium < 96 <= large.
COCO_SIZE_LIMITS = (32.0, 96.0)


def size_distribution(sizes: np.ndarray) -> Dict[str, dict]:
    """Summary of ``sizes`` (sqrt(area), original px): ``percentiles`` {"p5": px, ...}, and per COCO
    class its ``counts`` and ``shares`` (fractions summing to 1; all 0 when there are no boxes)."""
    sizes = np.asarray(sizes, np.float64)
    small, large = COCO_SIZE_LIMITS
    counts = {
        "small": int((sizes < small).sum()),
        "medium": int(((sizes >= small) & (sizes < large)).sum()),
        "large": int((sizes >= large).sum()),
    }
    n = len(sizes)
    return {
        "percentiles": {f"p{q}": float(v) for q, v in zip(SIZE_PERCENTILES, np.percentile(sizes, SIZE_PERCENTILES))}
        if n else {},
        "counts": counts,
        "shares": {k: (c / n if n else 0.0) for k, c in counts.items()},
    }
