"""The built-in splits: held-out splits never share images with the others."""
import numpy as np

from sniper_d2.data import synthetic_shapes
from sniper_d2.data.builtin_datasets import BUILTIN_SPLITS


def test_every_builtin_split_draws_its_own_images():
    # a split's images follow from its seed alone: one seed per split keeps val and test held out
    seeds = [spec.seed for spec in BUILTIN_SPLITS.values()]
    assert len(set(seeds)) == len(seeds)
    firsts = {}
    for name, spec in BUILTIN_SPLITS.items():
        image, _ = synthetic_shapes._image(np.random.default_rng(spec.seed), spec)
        firsts[name] = image.tobytes()
    assert len(set(firsts.values())) == len(firsts)
    assert {"sniper_shapes_train", "sniper_shapes_val", "sniper_shapes_test"} <= set(BUILTIN_SPLITS)
