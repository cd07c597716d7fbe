"""Bad boxes raise errors naming the image, the box and the remedy; partly-outside boxes are clipped."""
import numpy as np
import pytest

from sniper_d2.chips import check_boxes, check_image_size, clip_proposals

GOOD = [10, 10, 50, 50]


@pytest.mark.parametrize(
    "bad, problem",
    [
        ([np.nan, 10, 50, 50], "NaN or infinite"),
        ([10, 10, np.inf, 50], "NaN or infinite"),
        ([50, 10, 50, 40], "is empty"),  # zero width
        ([10, 40, 50, 30], "is empty"),  # y2 < y1
        ([640, 10, 700, 50], "wholly outside the 640 x 480 image"),  # starts at the right edge
        ([10, -30, 50, 0], "wholly outside"),  # ends at the top edge
        ([-50, 500, -10, 600], "wholly outside"),
    ],
)
def test_bad_box_error_names_image_box_and_remedy(bad, problem):
    with pytest.raises(ValueError) as error:
        check_boxes([GOOD, bad], 640, 480, "coco_train/000042.jpg")
    message = str(error.value)
    assert message.startswith("Image 'coco_train/000042.jpg': box 1 ")
    assert problem in message and "(XYXY, original px)" in message
    assert "Fix or remove it in the annotations" in message or "Check that the annotation" in message


def test_error_counts_the_other_bad_boxes():
    with pytest.raises(ValueError, match=r"box 0 \[5\.0, 5\.0, 5\.0, 9\.0\].*\(2 more boxes"):
        check_boxes([[5, 5, 5, 9], GOOD, [3, 3, 1, 1], [7, 7, 8, 7]], 100, 100, 7)


def test_degenerate_error_mentions_xywh():
    with pytest.raises(ValueError, match="XYWH boxes must be converted to XYXY"):
        check_boxes([[20, 20, 10, 10]], 100, 100, "img")


def test_partly_outside_boxes_are_clipped_and_good_ones_kept():
    boxes = check_boxes([[-5, 10, 50, 500], GOOD, [600, -1, 700, 2]], 640, 480, "img")
    assert boxes.dtype == np.float64
    assert boxes.tolist() == [[0, 10, 50, 480], GOOD, [600, 0, 640, 2]]


def test_input_forms():
    assert check_boxes([], 10, 10, "img").shape == (0, 4)
    assert check_boxes(np.array([[1, 2, 3, 4]], dtype=np.int32), 10, 10, "img").dtype == np.float64
    with pytest.raises(ValueError, match=r"Image 'img': boxes must be an \(N, 4\) array.*\(3,\)"):
        check_boxes([1, 2, 3], 10, 10, "img")


@pytest.mark.parametrize("width, height", [(0, 10), (10, -1), (float("nan"), 10), (None, 10)])
def test_bad_image_size_names_the_image(width, height):
    with pytest.raises(ValueError, match="Image 'img7': invalid size"):
        check_image_size(width, height, "img7")
    with pytest.raises(ValueError, match="Image 'img7': invalid size"):
        check_boxes([GOOD], width, height, "img7")


def test_proposals_are_clipped_and_empty_ones_kept():
    proposals = clip_proposals([[-5, 10, 50, 500], [700, 10, 800, 20]], 640, 480, "img")
    assert proposals.tolist() == [[0, 10, 50, 480], [640, 10, 640, 20]]
    with pytest.raises(ValueError, match="Image 'img': proposal 1 .*NaN or infinite.*Regenerate the proposal"):
        clip_proposals([GOOD, [1, np.nan, 3, 4]], 640, 480, "img")
    with pytest.raises(ValueError, match=r"Image 3: proposal 0 \[10\.0, 10\.0, 5\.0, 20\.0\].*convert XYWH"):
        clip_proposals([[10, 10, 5, 20], GOOD], 640, 480, 3)
    assert clip_proposals([[10, 10, 10, 20]], 640, 480, 3).tolist() == [[10, 10, 10, 20]]  # empty is fine
