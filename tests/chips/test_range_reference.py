"""SNIPER.RANGE_REFERENCE: valid ranges in the px of a reference resolution, so that in a dataset
whose object size follows image size the same object gets the same scale in every image."""
import numpy as np
import pytest

from sniper_d2.chips import ChipGenerator, Chip
from sniper_d2.chips.assignment import assign_valid_boxes


def generator(reference):
    # scales: 2x the reference resolution, the reference itself; ranges in reference px
    return ChipGenerator(
        scales=[(400, 2000), (200, 1000)], valid_ranges=[(-1, 40), (30, -1)], chip_size=128, stride=8,
        neg_min_proposals=(0, 0), range_reference=reference,
    )


def scaled_image(k):
    """A 200x200 image with a 20 px and a 60 px box, resized by k (original px)."""
    return 200 * k, 200 * k, np.array([[10, 10, 30, 30], [100, 100, 160, 160]], float) * k


@pytest.mark.parametrize("k", [0.5, 1.0, 2.5])
def test_with_a_reference_the_driving_scale_follows_the_normalised_size(k):
    width, height, boxes = scaled_image(k)
    chips = generator((200, 1000)).positive_chips(0, width, height, boxes, np.random.default_rng(0))
    # the 20 px (reference) box drives the fine scale, the 60 px one the coarse scale, at every k
    assert sorted((c.scale_index, c.box_ids.tolist()) for c in chips) == [(0, [0]), (1, [1])]


def test_without_a_reference_ranges_stay_in_original_px():
    width, height, boxes = scaled_image(2.5)  # boxes of 50 and 150 original px: both above 40
    chips = generator(None).positive_chips(0, width, height, boxes, np.random.default_rng(0))
    assert sorted((c.scale_index, c.box_ids.tolist()) for c in chips) == [(1, [0]), (1, [1])]


def test_range_factor_is_the_reference_scale_factor():
    assert generator((200, 1000)).range_factor(500, 400) == pytest.approx(0.5)
    assert generator(None).range_factor(500, 400) == 1.0
    assert generator("longest:100").range_factor(500, 400) == pytest.approx(0.2)


def test_assignment_measures_sizes_in_the_reference_frame():
    chip = Chip(image_id=0, scale_index=0, scale=1.0, origin=(0, 0), size=(100, 100), box_ids=np.array([0]),
                negative=False)
    boxes = np.array([[0.0, 0.0, 50.0, 50.0]])  # 50 original px
    ranges = [(-1, 40), (30, -1)]  # the finest scale's hi: 40
    grid = {"chip_size": 128, "stride": 8}
    assert assign_valid_boxes([chip], boxes, 100, 100, ranges, **grid)[0].tolist() == []
    assert assign_valid_boxes([chip], boxes, 100, 100, ranges, range_factor=0.5, **grid)[0].tolist() == [0]
