"""ChipGenerator at COCO settings by hand: construction, image scales, chip fields, determinism, many boxes."""
import ast
from pathlib import Path

import numpy as np
import pytest

from sniper_d2.chips import (
    ChipGenerator,
    ValidRange,
    assign_valid_boxes,
    box_shapes,
    check_boxes,
    sample_negative_chips,
)

COCO_SCALES = (3.0, 1.667, "longest:512")
COCO_RANGES = ((-1, 80), (32, 150), (120, -1))


@pytest.fixture(scope="module")
def coco():
    return ChipGenerator(COCO_SCALES, COCO_RANGES, chip_size=512, stride=32, neg_min_proposals=(25, 10, 10))


def chip_keys(chips):
    return [(c.scale_index, c.origin, c.size, c.negative, c.box_ids.tolist()) for c in chips]


def test_constructor_rejects_inconsistent_lengths():
    with pytest.raises(ValueError, match="VALID_RANGES has 2 ranges but there are 3 scales"):
        ChipGenerator(COCO_SCALES, COCO_RANGES[:2])
    with pytest.raises(ValueError, match="MIN_PROPOSALS.*3 scales"):
        ChipGenerator(COCO_SCALES, COCO_RANGES, neg_min_proposals=(25, 10))
    with pytest.raises(ValueError, match="one count >= 0"):
        ChipGenerator(COCO_SCALES, COCO_RANGES, neg_min_proposals=(25, -1, 10))
    with pytest.raises(ValueError, match="MIN_PROPOSALS.*is 25 but"):
        ChipGenerator(COCO_SCALES, COCO_RANGES, neg_min_proposals=25)


@pytest.mark.parametrize("stride", [0, 511, 2.5, True])
def test_constructor_and_calls_reject_bad_strides(stride, coco):
    with pytest.raises(ValueError, match="stride"):
        ChipGenerator(COCO_SCALES, COCO_RANGES, stride=stride)
    with pytest.raises(ValueError, match="stride"):
        coco.positive_chips(0, 640, 480, np.zeros((0, 4)), np.random.default_rng(0), stride=stride)
    with pytest.raises(ValueError, match="stride"):
        coco.negative_chip_pool(0, 640, 480, np.zeros((0, 4)), [], np.random.default_rng(0), stride=stride)


def test_constructor_rejects_bad_chip_size():
    with pytest.raises(ValueError, match="chip_size"):
        ChipGenerator(COCO_SCALES, COCO_RANGES, chip_size=511.5)


def test_from_config_reads_the_sniper_keys():
    from detectron2.config import get_cfg

    from sniper_d2.config import add_sniper_config

    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.SNIPER.CHIP_SIZE = 256
    cfg.SNIPER.TRAIN.CHIP_STRIDE = 16
    cfg.SNIPER.NEG.MIN_PROPOSALS = (5, 4, 3)
    gen = ChipGenerator.from_config(cfg)
    assert [str(s) for s in gen.scales] == ["3", "1.667", "longest:512"]
    assert gen.valid_ranges == (ValidRange(0, 80), ValidRange(32, 150), ValidRange(120, np.inf))
    assert (gen.chip_size, gen.stride, gen.neg_min_proposals) == (256, 16, (5, 4, 3))


def test_image_scales_at_coco_settings(coco):
    assert coco.image_scales(640, 480) == [(3.0, (1920, 1440)), (1.667, (1067, 800)), (0.8, (512, 384))]
    assert coco.image_scales(480, 640)[2] == (0.8, (384, 512))


def test_chip_fields_for_a_small_and_a_large_box(coco):
    boxes = np.array([[100, 100, 120, 110], [200, 100, 500, 400]], dtype=float)  # 14 px and 300 px
    chips = coco.positive_chips("coco/42", 640, 480, boxes, np.random.default_rng(0))
    assert [(c.scale_index, c.box_ids.tolist()) for c in chips] == [(0, [0]), (2, [1])]
    fine, coarse = chips
    assert (fine.image_id, fine.scale, fine.size, fine.negative) == ("coco/42", 3.0, (512, 512), False)
    assert fine.origin[0] % 32 == 0 and fine.origin[1] % 32 == 0
    np.testing.assert_allclose(fine.box, (np.array(fine.origin * 2) + [0, 0, 512, 512]) / 3.0)
    assert np.all(fine.box[:2] <= boxes[0, :2]) and np.all(fine.box[2:] >= boxes[0, 2:])
    # The coarsest scale: the whole image, longest side 512, smaller than the chip in height.
    assert (coarse.scale, coarse.origin, coarse.size) == (0.8, (0, 0), (512, 384))
    np.testing.assert_allclose(coarse.box, [0, 0, 640, 480])


def test_coarsest_scale_gives_one_whole_image_chip(coco):
    rng = np.random.default_rng(0)
    boxes = rng.uniform(0, 300, (40, 2)).repeat(2, axis=1)[:, [0, 2, 1, 3]] + [0, 0, 150, 130]
    chips = [c for c in coco.positive_chips(7, 640, 480, boxes, rng) if c.scale_index == 2]
    assert len(chips) == 1 and chips[0].origin == (0, 0) and chips[0].size == (512, 384)
    assert len(chips[0].box_ids) == 40


def test_per_call_stride_changes_the_grid_and_fit_rule(coco):
    box = np.array([[300, 200, 450, 205]], dtype=float)  # 150 px long: (512 - 32 - 1) / 3 = 159.7 fits
    assert [c.scale_index for c in coco.positive_chips(0, 640, 480, box, np.random.default_rng(0))] == [0]
    # (512 - 64 - 1) / 3 = 149 < 150: no longer fits at the finest scale; sqrt(area) 27 is too small
    # for the others
    assert coco.positive_chips(0, 640, 480, box, np.random.default_rng(0), stride=64) == []
    chips = coco.positive_chips(0, 640, 480, box[:, [0, 1, 0, 3]] + [0, 0, 20, 0], np.random.default_rng(0), stride=57)
    x0, y0 = chips[0].origin
    assert x0 % 57 == 0 or x0 == 1920 - 512
    assert y0 % 57 == 0 or y0 == 1440 - 512


def test_crowd_boxes_drive_no_chips(coco):
    boxes = np.array([[10, 10, 40, 40], [300, 300, 330, 330]], dtype=float)
    chips = coco.positive_chips(0, 640, 480, boxes, np.random.default_rng(0), driving_mask=[True, False])
    assert sorted(i for c in chips for i in c.box_ids.tolist()) == [0]
    with pytest.raises(ValueError, match="driving_mask has shape"):
        coco.positive_chips(0, 640, 480, boxes, np.random.default_rng(0), driving_mask=[True])


def busy_image(seed):
    """Boxes in the top-left part of a 640x480 image, a proposal cluster away from them."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 250, (60, 2)) * [1, 0.75]
    wh = rng.uniform(5, 100, (60, 2))
    boxes = check_boxes(np.concatenate([xy, xy + wh], axis=1), 640, 480, "busy")
    pxy = rng.uniform(0, 80, (300, 2)) + [500, 360]
    proposals = np.concatenate([pxy, pxy + rng.uniform(4, 40, (300, 2))], axis=1)
    return boxes, proposals


def epoch_chips(gen, seed, boxes, proposals, stride=None):
    rng = np.random.default_rng(seed)
    positives = gen.positive_chips("busy", 640, 480, boxes, rng, stride=stride)
    pool = gen.negative_chip_pool("busy", 640, 480, proposals, positives, rng, stride=stride)
    return positives, pool, sample_negative_chips(pool, 2, rng)


def test_identical_seeds_give_identical_chips_and_other_seeds_other_chips(coco):
    boxes, proposals = busy_image(0)
    first = epoch_chips(coco, 5, boxes, proposals)
    assert [chip_keys(part) for part in first] == [chip_keys(part) for part in epoch_chips(coco, 5, boxes, proposals)]
    assert len(first[1]) > 0, "the proposal cluster should give negative chips"
    epochs = {repr(chip_keys(epoch_chips(coco, seed, boxes, proposals)[0])) for seed in range(6)}
    assert len(epochs) > 1
    assert chip_keys(epoch_chips(coco, 5, boxes, proposals, stride=48)[0]) != chip_keys(first[0])


def test_thousands_of_boxes_are_all_covered_and_assigned():
    gen = ChipGenerator((1.0, 0.5, "longest:512"), ((-1, 250), (125, 500), (400, -1)), neg_min_proposals=(25, 10, 10))
    rng = np.random.default_rng(0)
    width, height, n = 4000, 3000, 4000
    xy = rng.uniform(0, 1, (n, 2)) * [width - 50, height - 50]
    wh = np.exp(rng.uniform(np.log(4), np.log(700), (n, 2)))
    boxes = check_boxes(np.concatenate([xy, xy + wh], axis=1), width, height, "big")
    boxes[:1500] = boxes[:1500] * 0.05 + [100, 100, 100, 100]  # 1500 tiny boxes in one corner
    chips = gen.positive_chips("big", width, height, boxes, rng)
    factors = [f for f, _ in gen.image_scales(width, height)]
    for s, rule in enumerate(gen.driving_rules[:2]):  # all driving boxes fit at the two finer scales
        driving = np.flatnonzero(rule.mask(box_shapes(boxes), factors[s], 512, 32))
        at_scale = [c for c in chips if c.scale_index == s]
        covered = np.concatenate([c.box_ids for c in at_scale])
        assert np.array_equal(np.sort(covered), driving)
        for c in at_scale:
            x0, y0 = c.origin
            scaled = boxes[c.box_ids] * c.scale
            assert (scaled[:, :2] >= (x0, y0)).all() and (scaled[:, 2:] <= (x0 + c.size[0], y0 + c.size[1])).all()
    assert max(len(c.box_ids) for c in chips) > 100  # no cap on boxes per chip
    valid = assign_valid_boxes(chips, boxes, width, height, gen.valid_ranges, chip_size=512, stride=32)
    scale_of = np.array([c.scale_index for c in chips])
    for s in range(3):
        ids = np.concatenate([v for v, k in zip(valid, scale_of) if k == s])
        assert len(ids) == len(set(ids.tolist()))
    assert max(len(v) for v in valid) > 100


def test_chip_engine_imports_neither_torch_nor_detectron2():
    package = Path(__file__).resolve().parents[2] / "sniper_d2" / "chips"
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            assert not any(n.split(".")[0] in ("torch", "detectron2") for n in names), path.name
