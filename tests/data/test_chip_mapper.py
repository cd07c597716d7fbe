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
