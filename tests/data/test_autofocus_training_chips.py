"""Training chips of a model with a FocusPixel branch: SNIPER.AUTOFOCUS.TRAIN_CHIPS adds chips around
objects FocusPixel-positive at a coarse scale that the epoch's other chips there miss."""
import numpy as np
import pytest

from sniper_d2.data.build import build_chip_planner

from sniper_test_data import small_sniper_cfg


def _planner(arch, train_chips):
    cfg = small_sniper_cfg()
    cfg.MODEL.META_ARCHITECTURE = arch
    cfg.SNIPER.AUTOFOCUS.TRAIN_CHIPS = train_chips
    # FocusPixel-positive below 40 chip px: such (square) objects fit in the 64 px chips
    cfg.SNIPER.AUTOFOCUS.SMALL_THRESH = 40.0
    cfg.SNIPER.AUTOFOCUS.DC_HIGH = 60.0
    return build_chip_planner(cfg)


@pytest.mark.parametrize("arch,train_chips", [("GeneralizedRCNN", True), ("SniperAutoFocusRCNN", False)])
def test_only_a_focus_model_with_train_chips_on_gets_them(tiny_dataset, arch, train_chips):
    planner = _planner(arch, train_chips)
    assert planner.focus_sizes is None
    plan = planner.plan(0)
    assert plan.stats["focus_chips"] == 0 and not plan.focus.any()


def test_every_small_object_of_a_coarse_scale_is_whole_in_a_chip_there(tiny_dataset):
    plain = _planner("SniperAutoFocusRCNN", False).plan(0)
    planner = _planner("SniperAutoFocusRCNN", True)
    assert planner.focus_sizes == (5.0, 40.0)  # SNIPER.AUTOFOCUS.DC_LOW, SMALL_THRESH
    plan = planner.plan(0)
    focus = np.flatnonzero(plan.focus)
    assert len(focus) == plan.stats["focus_chips"] > 0
    # the other chips are those of the plain plan: same counts
    assert plan.stats["positive_chips"] == plain.stats["positive_chips"]
    assert len(plan) == len(plain) + len(focus)
    assert all(plan.chip(k).focus and not plan.chip(k).negative for k in focus.tolist())
    assert (plan.scale_index[focus] > 0).all()  # never at the finest scale
    for index in range(len(planner.table)):
        ann = planner.table[index]
        sizes = np.sqrt((ann.boxes[:, 2] - ann.boxes[:, 0]) * (ann.boxes[:, 3] - ann.boxes[:, 1]))
        rows = np.flatnonzero(plan.image_index == index)
        for s, (factor, _) in enumerate(planner.generator.image_scales(ann.width, ann.height)):
            if s == 0:
                continue
            small = (sizes * factor > 5.0) & (sizes * factor < 40.0) & ~ann.crowd
            held = np.zeros(len(sizes), bool)
            for k in rows[plan.scale_index[rows] == s]:
                (x0, y0), (w, h) = plan.origin[k], plan.size[k]
                b = ann.boxes * factor
                held |= (b[:, 0] >= x0 - 1e-6) & (b[:, 1] >= y0 - 1e-6) & (b[:, 2] <= x0 + w + 1e-6) & (b[:, 3] <= y0 + h + 1e-6)
            assert held[small].all(), (index, s)


def test_dataset_analysis_counts_them_apart(tiny_dataset):
    from sniper_d2.analysis.chip_statistics import chip_statistics
    from sniper_d2.analysis.scale_coverage import DatasetBoxes

    planner = _planner("SniperAutoFocusRCNN", True)
    plan = planner.plan(0)
    counts = chip_statistics(planner, DatasetBoxes.from_table(planner.table), epoch=0)
    assert counts.focus.sum() == plan.stats["focus_chips"] > 0
    assert counts.positive.sum() == plan.stats["positive_chips"]
    assert counts.pixels.sum() == (plan.size[:, 0] * plan.size[:, 1]).sum()  # their px included
