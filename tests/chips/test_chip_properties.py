"""Property tests through ChipGenerator on random images, boxes and proposals.

Every chip the generator returns is checked against a reference spelled out here from SNIPER_SPEC
sections 1-4 (size rules, full containment in the scaled image, touching = positive-area overlap)
and against brute-force containment over the candidate grid.
"""
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from sniper_d2.chips import (
    ChipGenerator,
    assign_valid_boxes,
    candidate_grid,
    check_boxes,
    clip_proposals,
    sample_negative_chips,
)


@st.composite
def generators(draw):
    chip = draw(st.sampled_from([48, 64, 96]))
    num_scales = draw(st.integers(1, 3))
    factors = draw(st.lists(st.sampled_from([0.5, 0.75, 1.0, 1.5, 2.0]), min_size=num_scales,
                            max_size=num_scales, unique=True))
    scales = sorted(factors, reverse=True)
    if draw(st.booleans()):
        scales[-1] = f"longest:{chip}"
    ranges = []
    for _ in scales:
        lo = draw(st.sampled_from([-1, 0, 4, 8, 16, 30]))
        hi = draw(st.sampled_from([-1, max(lo, 0) + draw(st.integers(1, 60))]))
        ranges.append((lo, hi))
    neg_min = [draw(st.integers(0, 4)) for _ in scales]
    return ChipGenerator(scales, ranges, chip_size=chip, stride=draw(st.integers(4, chip // 2)),
                         neg_min_proposals=neg_min)


def random_boxes(draw, width, height, n, max_side):
    """n XYXY boxes with integer or half-pixel corners (they hit the containment boundaries
    exactly), starting inside the image and possibly reaching past it."""
    x1 = np.array(draw(st.lists(st.integers(0, 2 * width - 1), min_size=n, max_size=n))) / 2
    y1 = np.array(draw(st.lists(st.integers(0, 2 * height - 1), min_size=n, max_size=n))) / 2
    w = np.array(draw(st.lists(st.integers(1, 2 * max_side), min_size=n, max_size=n))) / 2
    h = np.array(draw(st.lists(st.integers(1, 2 * max_side), min_size=n, max_size=n))) / 2
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1).reshape(-1, 4)


@st.composite
def images(draw):
    width, height = draw(st.integers(8, 240)), draw(st.integers(8, 240))
    boxes = random_boxes(draw, width, height, draw(st.integers(0, 30)), max(width, height))
    crowd = np.array(draw(st.lists(st.booleans(), min_size=len(boxes), max_size=len(boxes))), dtype=bool)
    crowd &= np.arange(len(boxes)) % 3 == 0  # a third of the boxes at most
    # Proposals: a dense cluster (where negative chips arise) plus some anywhere, some reaching past
    # the image edges or lying on them (clipped to empty).
    cx, cy = draw(st.integers(0, width)), draw(st.integers(0, height))
    cluster = random_boxes(draw, 12, 12, draw(st.integers(0, 50)), 10) + [cx, cy, cx, cy]
    scattered = random_boxes(draw, width, height, draw(st.integers(0, 20)), max(width, height))
    proposals = np.concatenate([cluster, scattered])
    return width, height, check_boxes(boxes, width, height, "img"), crowd, proposals


def counts_at_scale(gen, scale_index, boxes, factor, stride, for_proposals):
    """SNIPER_SPEC section 1 size rules, written out (original px)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    size = np.sqrt(w * h)
    lo, hi = gen.valid_ranges[scale_index].lo, gen.valid_ranges[scale_index].hi
    fits = np.maximum(w, h) < (gen.chip_size - stride - 1) / factor
    if scale_index == len(gen.scales) - 1:
        return size >= lo
    if scale_index == 0:
        return (size < hi) & (np.minimum(w, h) >= 2) & fits
    return (size >= (0 if for_proposals else lo)) & (size < hi) & fits


def window(chip):
    """The chip as (x1, y1, x2, y2) in its scaled image, chip px."""
    return (chip.origin[0], chip.origin[1], chip.origin[0] + chip.size[0], chip.origin[1] + chip.size[1])


def inside(scaled_box, win):
    x1, y1, x2, y2 = scaled_box
    return x1 >= win[0] and y1 >= win[1] and x2 <= win[2] and y2 <= win[3]


def touches(scaled_box, win):
    return min(scaled_box[2], win[2]) > max(scaled_box[0], win[0]) and min(scaled_box[3], win[3]) > max(scaled_box[1], win[1])


def check_chip_fields(gen, chips, width, height, negative):
    scales = gen.image_scales(width, height)
    for chip in chips:
        factor, (sw, sh) = scales[chip.scale_index]
        assert chip.image_id == "img" and chip.negative is negative and chip.scale == factor
        assert chip.size == (min(gen.chip_size, sw), min(gen.chip_size, sh))
        assert all(isinstance(v, int) for v in chip.origin + chip.size)
        x1, y1, x2, y2 = window(chip)
        assert 0 <= x1 and 0 <= y1 and x2 <= sw and y2 <= sh, "chip leaves the scaled image"
        assert chip.box_ids.dtype == np.int64 and np.all(np.diff(chip.box_ids) > 0)
    keys = [(c.scale_index, c.origin) for c in chips]
    assert len(set(keys)) == len(keys), "two identical chips at one scale"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gen=generators(), image=images(), seed=st.integers(0, 2**32), override_stride=st.booleans())
def test_positive_and_negative_chips(gen, image, seed, override_stride, contains):
    width, height, boxes, crowd, proposals = image
    stride = gen.chip_size // 3 if override_stride else gen.stride
    rng = np.random.default_rng(seed)
    positives = gen.positive_chips("img", width, height, boxes, rng, driving_mask=~crowd,
                                   stride=stride if override_stride else None)
    pool = gen.negative_chip_pool("img", width, height, proposals, positives, rng,
                                  stride=stride if override_stride else None)
    check_chip_fields(gen, positives, width, height, negative=False)
    check_chip_fields(gen, pool, width, height, negative=True)
    clipped = clip_proposals(proposals, width, height, "img")

    for s, (factor, (sw, sh)) in enumerate(gen.image_scales(width, height)):
        grid = candidate_grid(sw, sh, gen.chip_size, stride)
        far = np.array([sw, sh, sw, sh])

        # Positive chips: exactly the driving boxes that some candidate contains, each once, each
        # inside the chip it is listed for; at every scale but the coarsest all driving boxes fit.
        pos = [c for c in positives if c.scale_index == s]
        driving = np.flatnonzero(counts_at_scale(gen, s, boxes, factor, stride, False) & ~crowd)
        scaled = np.minimum(boxes * factor, far)
        fits = contains(grid, boxes[driving] * factor).any(axis=0)
        if s < len(gen.scales) - 1:
            assert fits.all(), "the fit rule admitted a box that no candidate contains"
        listed = np.concatenate([c.box_ids for c in pos]) if pos else np.zeros(0, np.int64)
        assert sorted(listed.tolist()) == driving[fits].tolist()
        for chip in pos:
            assert len(chip.box_ids) > 0
            assert all(inside(scaled[i], window(chip)) for i in chip.box_ids)

        # Negative chips: only uncovered proposals (valid size, inside the scaled image, touching
        # no positive chip of the scale), more than the minimum per chip, each inside its chip and
        # counted once; and no candidate holds more than the minimum of those left over.
        neg = [c for c in pool if c.scale_index == s]
        pos_windows = [window(c) for c in pos]
        scaled_props = np.minimum(clipped * factor, far)
        ok = counts_at_scale(gen, s, clipped, factor, stride, True)
        uncovered = {
            i for i in np.flatnonzero(ok)
            if scaled_props[i, 2] > scaled_props[i, 0] and scaled_props[i, 3] > scaled_props[i, 1]
            and not any(touches(scaled_props[i], w) for w in pos_windows)
        }
        taken = []
        for chip in neg:
            assert len(chip.box_ids) > gen.neg_min_proposals[s]
            assert set(chip.box_ids.tolist()) <= uncovered
            assert all(inside(scaled_props[i], window(chip)) for i in chip.box_ids)
            assert window(chip) not in pos_windows
            taken += chip.box_ids.tolist()
        assert len(taken) == len(set(taken))
        left = sorted(uncovered - set(taken))
        if left:
            assert contains(grid, clipped[left] * factor).sum(axis=1).max() <= gen.neg_min_proposals[s]

    # Valid boxes (the authors' rule, SNIPER_SPEC section 4): per scale, a non-crowd box that
    # passes the validity rule is valid in the first chip of that scale with the largest positive
    # intersection (original px), if its part in that chip is <= hi (coarsest: >= lo).
    chips = positives + sample_negative_chips(pool, 2, rng)
    valid = assign_valid_boxes(
        chips, boxes, width, height, gen.valid_ranges, assignable_mask=~crowd, chip_size=gen.chip_size, stride=stride
    )
    expected = [[] for _ in chips]
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    sizes = np.sqrt(w * h)
    coarsest = len(gen.scales) - 1
    for s, valid_range in enumerate(gen.valid_ranges):
        members = [k for k, c in enumerate(chips) if c.scale_index == s]
        if not members:
            continue
        factor = chips[members[0]].scale
        if s == coarsest:
            rule = sizes >= valid_range.lo
        else:
            fits = np.maximum(w, h) < (gen.chip_size - stride - 1) / factor
            rule = (sizes < valid_range.hi) & (np.minimum(w, h) >= 2) & fits
        for i in np.flatnonzero(rule & ~crowd):
            areas = []
            for k in members:
                cb = chips[k].box
                iw = max(min(boxes[i, 2], cb[2]) - max(boxes[i, 0], cb[0]), 0.0)
                ih = max(min(boxes[i, 3], cb[3]) - max(boxes[i, 1], cb[1]), 0.0)
                areas.append(iw * ih)
            if max(areas) > 0:
                part = np.sqrt(max(areas))
                if (part >= valid_range.lo) if s == coarsest else (part <= valid_range.hi):
                    expected[members[areas.index(max(areas))]].append(int(i))
    assert [v.tolist() for v in valid] == expected


@settings(max_examples=40, deadline=None)
@given(gen=generators(), image=images(), seed=st.integers(0, 2**32))
def test_no_positive_chips_without_driving_boxes(gen, image, seed):
    width, height, boxes, _, _ = image
    rng = np.random.default_rng(seed)
    assert gen.positive_chips("img", width, height, np.zeros((0, 4)), rng) == []
    assert gen.positive_chips("img", width, height, boxes, rng, driving_mask=np.zeros(len(boxes), bool)) == []
    factors = [f for f, _ in gen.image_scales(width, height)]
    drives_nowhere = ~np.any(
        [counts_at_scale(gen, s, boxes, f, gen.stride, False) for s, f in enumerate(factors)], axis=0
    ).reshape(-1)
    assert gen.positive_chips("img", width, height, boxes[drives_nowhere], rng) == []
