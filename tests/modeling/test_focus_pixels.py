"""FocusPixel labels (AutoFocus) on hand-computed grids: stride-10 cells, sizes sqrt(area) in chip
px with DC_LOW 5, SMALL_THRESH 20, DC_HIGH 30."""
import math

import pytest
import torch

from sniper_d2.modeling import focus_pixel_labels

SIZES = dict(dc_low=5.0, small_thresh=20.0, dc_high=30.0)


def labels(boxes, crowd=None, image_size=(30, 40), grid_size=(3, 4), stride=10):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    if crowd is not None:
        crowd = torch.tensor(crowd, dtype=torch.bool)
    return focus_pixel_labels(boxes, crowd, image_size, grid_size, stride, **SIZES).tolist()


def test_no_box_is_all_negative():
    assert labels([]) == [[0, 0, 0, 0]] * 3


def test_small_object_marks_the_cells_it_overlaps():
    # 13 x 11 px, size 11.96: cols 1-2 (px 10-30), rows 0-1 (px 0-20)
    assert labels([[12, 3, 25, 14]]) == [
        [0, 1, 1, 0],
        [0, 1, 1, 0],
        [0, 0, 0, 0],
    ]


def test_box_ending_on_a_cell_border_does_not_touch_the_next_cell():
    assert labels([[10, 0, 20, 10]]) == [
        [0, 1, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]
    # half a px over the border is a positive-area overlap
    assert labels([[10, 0, 20.5, 10]]) == [
        [0, 1, 1, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]


def test_medium_and_tiny_objects_are_dont_care_large_ones_negative():
    medium = [0, 0, 25, 25]  # size 25 in [20, 30)
    tiny = [35, 25, 38, 28]  # size 3 <= 5
    assert labels([medium, tiny]) == [
        [-1, -1, -1, 0],
        [-1, -1, -1, 0],
        [-1, -1, -1, -1],
    ]
    assert labels([[0, 0, 40, 30]]) == [[0, 0, 0, 0]] * 3  # size 34.6 >= 30


@pytest.mark.parametrize("side, label", [(5, -1), (5.01, 1), (19.99, 1), (20, -1), (29.99, -1), (30, 0)])
def test_size_thresholds_are_open_and_closed_as_documented(side, label):
    assert labels([[0, 0, side, side]], image_size=(40, 40), grid_size=(1, 1), stride=40) == [[label]]


def test_crowd_box_is_dont_care_whatever_its_size():
    small_crowd = [12, 3, 25, 14]  # size 12: positive if not crowd
    assert labels([small_crowd], crowd=[True]) == [
        [0, -1, -1, 0],
        [0, -1, -1, 0],
        [0, 0, 0, 0],
    ]
    large_crowd = [0, 0, 40, 30]  # size 34.6: negative if not crowd
    assert labels([large_crowd], crowd=[True]) == [[-1, -1, -1, -1]] * 3


def test_positive_wins_over_dont_care():
    medium = [0, 0, 25, 25]
    small = [15, 15, 27, 27]  # size 12, overlaps cells (1..2, 1..2)
    assert labels([medium, small]) == [
        [-1, -1, -1, 0],
        [-1, 1, 1, 0],
        [-1, 1, 1, 0],
    ]
    assert labels([medium, small], crowd=[False, True]) == [  # a crowd box is never positive
        [-1, -1, -1, 0],
        [-1, -1, -1, 0],
        [-1, -1, -1, 0],
    ]


def test_padding_cells_are_dont_care_and_boxes_are_clipped_to_the_chip():
    # content 25 x 32 px on a 4 x 5 grid: row 3 (px 30-40) and col 4 (px 40-50) are padding; row 2
    # and col 3 are partly content. The box, 40 x 45 (large) unclipped, is 12 x 10 (small) clipped.
    assert labels([[20, 15, 60, 60]], image_size=(25, 32), grid_size=(4, 5)) == [
        [0, 0, 0, 0, -1],
        [0, 0, 1, 1, -1],
        [0, 0, 1, 1, -1],
        [-1, -1, -1, -1, -1],
    ]


def test_content_ending_on_a_cell_border_leaves_the_next_cells_padding():
    assert labels([[30, 20, 40, 30]], image_size=(30, 40), grid_size=(4, 5)) == [
        [0, 0, 0, 0, -1],
        [0, 0, 0, 0, -1],
        [0, 0, 0, 1, -1],
        [-1, -1, -1, -1, -1],
    ]


def test_degenerate_box_touches_nothing():
    assert labels([[10, 10, 10, 20], [0, 5, 30, 5]]) == [[0, 0, 0, 0]] * 3


def _reference(boxes, crowd, image_size, grid_size, stride):
    """Cell by cell, box by box: the documented rule, written plainly."""
    h, w = image_size
    out = []
    for r in range(grid_size[0]):
        row = []
        for c in range(grid_size[1]):
            if r * stride >= h or c * stride >= w:
                row.append(-1)
                continue
            label = 0
            for (x1, y1, x2, y2), is_crowd in zip(boxes.tolist(), crowd.tolist()):
                x1, x2 = min(max(x1, 0), w), min(max(x2, 0), w)
                y1, y2 = min(max(y1, 0), h), min(max(y2, 0), h)
                overlap_w = min(x2, (c + 1) * stride) - max(x1, c * stride)
                overlap_h = min(y2, (r + 1) * stride) - max(y1, r * stride)
                if overlap_w <= 0 or overlap_h <= 0:
                    continue
                size = math.sqrt((x2 - x1) * (y2 - y1))
                if not is_crowd and SIZES["dc_low"] < size < SIZES["small_thresh"]:
                    label = 1
                elif label == 0 and (is_crowd or size <= SIZES["dc_low"]
                                     or SIZES["small_thresh"] <= size < SIZES["dc_high"]):
                    label = -1
            row.append(label)
        out.append(row)
    return out


@pytest.mark.parametrize("seed", range(3))
def test_vectorised_labels_match_the_cell_by_cell_rule(seed):
    generator = torch.Generator().manual_seed(seed)
    n = 60
    xy = torch.rand(n, 2, generator=generator) * 70 - 5
    wh = torch.rand(n, 2, generator=generator) ** 2 * 40
    boxes = torch.cat([xy, xy + wh], dim=1).round()  # integer corners: many boxes on cell borders
    crowd = torch.rand(n, generator=generator) < 0.1
    image_size, grid_size, stride = (57, 63), (8, 9), 8
    got = focus_pixel_labels(boxes, crowd, image_size, grid_size, stride, **SIZES)
    assert got.dtype == torch.int64
    assert got.tolist() == _reference(boxes, crowd, image_size, grid_size, stride)
    assert {-1, 0, 1} <= set(got.flatten().tolist())


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="boxes must be \\(N, 4\\)"):
        focus_pixel_labels(torch.zeros(3, 5), None, (30, 40), (3, 4), 10, **SIZES)
    with pytest.raises(ValueError, match="crowd has shape \\(2,\\) for 3 boxes"):
        focus_pixel_labels(torch.zeros(3, 4), torch.zeros(2, dtype=torch.bool), (30, 40), (3, 4), 10, **SIZES)
    with pytest.raises(ValueError, match="stride must be > 0"):
        focus_pixel_labels(torch.zeros(3, 4), None, (30, 40), (3, 4), 0, **SIZES)
