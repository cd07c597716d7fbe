"""The chip mapper: pixels, kept boxes and validity flags of one chip, by hand."""
import cv2
import numpy as np
import pytest
import torch
from detectron2.data import transforms as T

from sniper_d2.chip_instances import ChipInstances
from sniper_d2.chips import Chip, ValidRange
from sniper_d2.data.chip_image import ImageSizeMismatchError
from sniper_d2.data.chip_mapper import SniperChipMapper

# 200x100 image; boxes in original px XYXY
BOXES = np.array([
    [20.0, 10.0, 60.0, 50.0],    # 0: inside the chip; 40 px -> valid range of scale 0 is (-1, 64)
    [100.0, 40.0, 180.0, 90.0],  # 1: outside the chip (x >= 64 original px)
    [55.0, 45.0, 70.0, 70.0],    # 2: partly inside -> clipped to 18x38 chip px, kept
    [30.0, 30.0, 31.0, 31.0],    # 3: 2x2 chip px -> below min_box_size 10, dropped
    [0.0, 0.0, 64.0, 64.0],      # 4: crowd region covering the chip
])
CLASSES = np.array([0, 1, 2, 1, 2])
CROWD = np.array([False, False, False, False, True])


def gradient_image(path, width=200, height=100):
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([xx, yy, np.zeros_like(xx)], -1).astype(np.uint8)  # B = x, G = y (BGR)
    cv2.imwrite(str(path), img)
    return img


def chip_input(path, chip, width=200, height=100):
    return {
        "file_name": str(path), "image_id": 7, "width": width, "height": height,
        "sniper_ref": f"dataset 'hand', image_id 7 ({path})",
        "sniper_boxes": BOXES, "sniper_classes": CLASSES, "sniper_crowd": CROWD,
        "sniper_chip": chip, "sniper_epoch": 0, "sniper_epoch_stats": {},
    }


def mapper(augmentations=()):
    return SniperChipMapper(
        valid_ranges=[ValidRange(0, 64), ValidRange(32, 150)], image_format="BGR",
        augmentations=list(augmentations), min_box_size=10,
    )


CHIP = Chip(image_id=7, scale_index=0, scale=2.0, origin=(0, 0), size=(128, 128),
            box_ids=np.array([0]), negative=False)


def test_chip_instances_match_hand_computed(tmp_path):
    gradient_image(tmp_path / "im.png")
    out = mapper()(chip_input(tmp_path / "im.png", CHIP))
    inst = out["instances"]
    assert isinstance(inst, ChipInstances)
    assert inst.image_size == (128, 128)
    assert out["image"].shape == (3, 128, 128) and out["image"].dtype == torch.uint8
    expected = torch.tensor([[40.0, 20.0, 120.0, 100.0], [110.0, 90.0, 128.0, 128.0], [0.0, 0.0, 128.0, 128.0]])
    assert torch.allclose(inst.gt_boxes.tensor, expected)
    assert inst.gt_classes.tolist() == [0, 2, 2]
    assert inst.gt_valid.tolist() == [True, False, False]  # box 2 was not assigned here; crowd never valid
    assert inst.gt_crowd.tolist() == [False, False, True]
    assert inst.valid_range == (0.0, 128.0)  # (0, 64) original px x 2


def test_boxes_too_small_for_the_ground_truth_come_as_small_boxes(tmp_path):
    # box 3 is 2x2 chip px, below min_box_size 10: not ground truth, but an object in the chip
    # (AutoFocus labels FocusPixels by it); box 1 lies outside the chip and the crowd box 4 is large
    gradient_image(tmp_path / "im.png")
    plain = mapper()(chip_input(tmp_path / "im.png", CHIP))
    assert plain["sniper_small_boxes"].tolist() == [[60.0, 60.0, 62.0, 62.0]]
    assert plain["sniper_small_boxes"].dtype == torch.float32
    flipped = mapper([T.RandomFlip(prob=1.0)])(chip_input(tmp_path / "im.png", CHIP))
    assert flipped["sniper_small_boxes"].tolist() == [[66.0, 60.0, 68.0, 62.0]]
    elsewhere = Chip(7, 0, 2.0, origin=(200, 100), size=(128, 100), box_ids=np.zeros(0, np.int64), negative=False)
    assert mapper()(chip_input(tmp_path / "im.png", elsewhere))["sniper_small_boxes"].shape == (0, 4)


def test_chip_pixels_come_from_the_chip_region(tmp_path):
    gradient_image(tmp_path / "im.png")
    chip = Chip(7, 0, 2.0, origin=(100, 40), size=(64, 32), box_ids=np.zeros(0, np.int64), negative=False)
    image = mapper()(chip_input(tmp_path / "im.png", chip))["image"].numpy()
    # chip pixel (u, v) centre -> original x = (u + 0.5 + 100) / 2: the B channel holds floor(x)
    u = np.arange(64)
    expected_x = (u + 0.5 + 100) / 2 - 0.5
    assert np.abs(image[0, 10, :].astype(float) - expected_x).max() <= 1.0
    v = np.arange(32)
    expected_y = (v + 0.5 + 40) / 2 - 0.5
    assert np.abs(image[1, :, 10].astype(float) - expected_y).max() <= 1.0


def test_flip_keeps_boxes_and_flags_consistent(tmp_path):
    gradient_image(tmp_path / "im.png")
    plain = mapper()(chip_input(tmp_path / "im.png", CHIP))
    flipped = mapper([T.RandomFlip(prob=1.0)])(chip_input(tmp_path / "im.png", CHIP))
    b, f = plain["instances"].gt_boxes.tensor, flipped["instances"].gt_boxes.tensor
    assert torch.allclose(f[:, [0, 2]], 128 - b[:, [2, 0]]) and torch.allclose(f[:, [1, 3]], b[:, [1, 3]])
    for field in ("gt_valid", "gt_crowd", "gt_classes"):
        assert torch.equal(plain["instances"].get(field), flipped["instances"].get(field))
    assert torch.equal(flipped["image"], plain["image"].flip(-1))


def test_size_mismatch_names_dataset_image_and_file(tmp_path):
    gradient_image(tmp_path / "im.png", width=150)
    with pytest.raises(ImageSizeMismatchError, match=r"dataset 'hand', image_id 7 .*im\.png.*150x100.*200x100"):
        mapper()(chip_input(tmp_path / "im.png", CHIP))


def test_unreadable_file_names_the_image(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(OSError, match=r"dataset 'hand', image_id 7 .*bad\.jpg"):
        mapper()(chip_input(tmp_path / "bad.jpg", CHIP))


def test_coarse_jpeg_chip_matches_full_decode(tmp_path):
    """JPEG chips coarser than 1/2 decode at reduced size; pixels agree with a full-size decode."""
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3)).astype(np.uint8), (0, 0), 6)
    cv2.imwrite(str(tmp_path / "im.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 98])
    cv2.imwrite(str(tmp_path / "im.png"), cv2.imread(str(tmp_path / "im.jpg")))
    chip = Chip(7, 1, 0.2, origin=(0, 0), size=(128, 96), box_ids=np.zeros(0, np.int64), negative=False)
    m = mapper()
    a = m(chip_input(tmp_path / "im.jpg", chip, 640, 480))["image"].float()
    b = m(chip_input(tmp_path / "im.png", chip, 640, 480))["image"].float()
    assert (a - b).abs().mean() < 3.0


def _edge_position(profile):
    """Sub-pixel position (pixel-edge coordinates) where a dark->bright profile crosses mid-grey."""
    i = int(np.argmax(profile > 127.5))
    a, b = float(profile[i - 1]), float(profile[i])
    return i - 0.5 + (127.5 - a) / (b - a)


@pytest.mark.parametrize("ext, scale, origin", [
    ("png", 1.667, (31, 17)), ("png", 0.37, (3, 1)), ("png", 1.3, (20, 10)), ("png", 2.25, (51, 22)),
    ("jpg", 0.3, (2, 1)),  # decoded at 1/2 size by the JPEG decoder
])
def test_boxes_stay_aligned_with_pixels(tmp_path, ext, scale, origin):
    """A white square's mapped GT box lies on the square's edges in the chip image (< 0.1 chip px;
    these origins need sub-pixel residuals of 0.2-0.4 px, which the boxes must follow)."""
    img = np.zeros((100, 200, 3), np.float32)
    img[20:70, 40:90] = 255  # continuous box (40, 20, 90, 70)
    # soft edges (symmetric blur keeps the mid-grey crossing on the box edge) so that the edge
    # position measured between chip pixels does not depend on the interpolation used
    img = np.round(cv2.GaussianBlur(img, (0, 0), 4)).astype(np.uint8)
    path = tmp_path / f"sq.{ext}"
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 100])
    size = (int(100 * scale) - origin[0] + 1, int(60 * scale) - origin[1] + 1)
    chip = Chip(7, 0, scale, origin=origin, size=size, box_ids=np.zeros(0, np.int64), negative=False)
    d = chip_input(path, chip)
    d["sniper_boxes"] = np.array([[40.0, 20.0, 90.0, 70.0]])
    d["sniper_classes"], d["sniper_crowd"] = np.array([0]), np.array([False])
    out = SniperChipMapper(valid_ranges=[ValidRange()], min_box_size=1)(d)
    x1, y1 = out["instances"].gt_boxes.tensor[0, :2].tolist()
    image = out["image"][0].float().numpy()
    # a row and a column through the middle of the square (50x50 original px)
    row = min(int(y1 + 25 * scale), image.shape[0] - 1)
    col = min(int(x1 + 25 * scale), image.shape[1] - 1)
    assert abs(_edge_position(image[row]) - x1) < 0.1
    assert abs(_edge_position(image[:, col]) - y1) < 0.1


def test_no_ignore_ablation_makes_every_non_crowd_box_valid_and_the_range_unbounded(tmp_path):
    gradient_image(tmp_path / "im.png")
    ablation = SniperChipMapper(
        valid_ranges=[ValidRange(0, 64), ValidRange(32, 150)], image_format="BGR", min_box_size=10,
        ignore_invalid=False,
    )
    inst = ablation(chip_input(tmp_path / "im.png", CHIP))["instances"]
    # kept boxes 0, 2 (only 0 is assigned to this chip) and the crowd region 4
    assert inst.gt_valid.tolist() == [True, True, False]
    assert inst.gt_crowd.tolist() == [False, False, True]
    assert inst.valid_range == (0.0, float("inf"))


def test_range_reference_puts_the_chip_range_in_the_reference_frame(tmp_path):
    gradient_image(tmp_path / "im.png")
    # reference: short side 50 px; the 200x100 image is 0.5x that frame, so (0, 64) reference px is
    # (0, 128) original px and (0, 256) chip px at scale 2.0
    framed = SniperChipMapper(
        valid_ranges=[ValidRange(0, 64), ValidRange(32, 150)], image_format="BGR", min_box_size=10,
        range_reference=(50, 1000),
    )
    inst = framed(chip_input(tmp_path / "im.png", CHIP))["instances"]
    assert inst.valid_range == pytest.approx((0.0, 256.0))
    assert mapper()(chip_input(tmp_path / "im.png", CHIP))["instances"].valid_range == pytest.approx((0.0, 128.0))
