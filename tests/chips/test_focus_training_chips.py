"""ChipGenerator.focus_chips: AutoFocus training chips around objects FocusPixel-positive at a coarse
scale that no other chip of that scale holds whole."""
import numpy as np
import pytest

from sniper_d2.chips import Chip, ChipGenerator

FOCUS_SIZES = (2.0, 32.0)  # sqrt(area) in chip px, open interval


@pytest.fixture(scope="module")
def gen():
    # scale 0 (2.0): boxes below 16 px; scale 1 (1.0): 32 px and up; 128 px chips
    return ChipGenerator((2.0, 1.0), ((-1, 16), (32, -1)), chip_size=128, stride=16, neg_min_proposals=(0, 0))


def held_whole(boxes, chips, scale_index, factor):
    """(N,) bool: box whole in some chip of that scale."""
    held = np.zeros(len(boxes), bool)
    for c in chips:
        if c.scale_index == scale_index:
            x0, y0, x1, y1 = c.origin[0], c.origin[1], c.origin[0] + c.size[0], c.origin[1] + c.size[1]
            b = boxes * factor
            held |= (b[:, 0] >= x0) & (b[:, 1] >= y0) & (b[:, 2] <= x1) & (b[:, 3] <= y1)
    return held


BOXES = np.array([
    [20, 20, 80, 80],  # 60 px: drives a scale-1 chip; not FocusPixel-positive there (>= 32)
    [60, 90, 70, 100],  # 10 px next to it: whole in that chip
    [600, 400, 612, 410],  # 11 px, far away: FocusPixel-positive at scale 1, in no chip of it
    [300, 420, 330, 450],  # 30 px, far away: positive (< 32), in no chip either
    [700, 40, 701.5, 41.5],  # 1.5 px: <= DC_LOW, don't care: drives nothing
    [500, 100, 540, 140],  # 40 px: drives its own scale-1 chip; not positive (>= 32)
], dtype=np.float64)


def test_small_objects_in_no_chip_of_a_coarse_scale_get_focus_chips_there(gen):
    rng = np.random.default_rng(0)
    positives = gen.positive_chips(0, 800, 480, BOXES, rng)
    assert held_whole(BOXES, positives, 1, 1.0).tolist() == [True, True, False, False, False, True]
    focus = gen.focus_chips(0, 800, 480, BOXES, positives, FOCUS_SIZES, rng)
    assert focus and all(c.focus and not c.negative and c.scale_index == 1 and c.scale == 1.0 for c in focus)
    # exactly the two unheld FocusPixel-positive boxes drive them, and end up whole in one
    assert sorted(np.concatenate([c.box_ids for c in focus]).tolist()) == [2, 3]
    assert held_whole(BOXES, focus, 1, 1.0)[[2, 3]].all()
    # nothing at the finest scale: its FocusPixels crop no finer scale
    assert gen.focus_chips(0, 800, 480, BOXES[[2]], [], FOCUS_SIZES, rng)[0].scale_index == 1


def test_no_focus_chips_when_every_small_object_is_held_or_out_of_range(gen):
    rng = np.random.default_rng(0)
    positives = gen.positive_chips(0, 800, 480, BOXES, rng)
    assert gen.focus_chips(0, 800, 480, BOXES[[0, 1, 4, 5]], positives, FOCUS_SIZES, rng) == []
    # a chip of any kind (here a negative one) that holds the object whole is enough
    negative = Chip(0, 1, 1.0, (560, 352), (128, 128), np.zeros(0, np.int64), True)
    assert gen.focus_chips(0, 800, 480, BOXES[[2]], [negative], FOCUS_SIZES, rng) == []
    # a chip of another scale is not
    finer = Chip(0, 0, 2.0, (1120, 704), (128, 128), np.zeros(0, np.int64), False)
    assert len(gen.focus_chips(0, 800, 480, BOXES[[2]], [finer], FOCUS_SIZES, rng)) == 1
    assert gen.focus_chips(0, 800, 480, np.zeros((0, 4)), [], FOCUS_SIZES, rng) == []


def test_the_size_window_is_in_chip_px_of_each_scale():
    # three scales: the 11 px object is 5.5 chip px at 0.5 (positive) and 2.75 px at 0.25 (above DC_LOW 2)
    gen = ChipGenerator((1.0, 0.5, 0.25), ((-1, 16), (16, 64), (64, -1)), chip_size=64, stride=8,
                        neg_min_proposals=(0, 0, 0))
    box = BOXES[[2]]
    chips = gen.focus_chips(0, 800, 480, box, [], FOCUS_SIZES, np.random.default_rng(0))
    assert sorted(c.scale_index for c in chips) == [1, 2]
    assert [c.scale_index for c in gen.focus_chips(0, 800, 480, box, [], (3.0, 32.0), np.random.default_rng(0))] == [1]


def test_crowd_boxes_drive_no_focus_chips_and_the_mask_is_checked(gen):
    rng = np.random.default_rng(0)
    mask = np.array([True, True, False, True, True, True])
    chips = gen.focus_chips(0, 800, 480, BOXES, [], FOCUS_SIZES, rng, driving_mask=mask)
    assert 2 not in np.concatenate([c.box_ids for c in chips]).tolist()
    with pytest.raises(ValueError, match="driving_mask has shape"):
        gen.focus_chips("img7", 800, 480, BOXES, [], FOCUS_SIZES, rng, driving_mask=mask[:3])


def test_a_box_at_the_rounded_far_edge_counts_as_held():
    # 0.5 x 201 px rounds to 101 (or 100) px: a box ending at x = 201 original px ends at 100.5 chip px
    gen = ChipGenerator((1.0, 0.5), ((-1, 16), (16, -1)), chip_size=64, stride=8, neg_min_proposals=(0, 0))
    (factor, size), = gen.image_scales(201, 50)[1:]
    edge = Chip(0, 1, factor, (size[0] - 64, 0), (64, size[1]), np.zeros(0, np.int64), False)
    box = np.array([[181.0, 10.0, 201.0, 30.0]])  # 10 chip px at 0.5
    assert gen.focus_chips(0, 201, 50, box, [edge], FOCUS_SIZES, np.random.default_rng(0)) == []
