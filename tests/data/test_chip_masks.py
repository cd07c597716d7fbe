"""Instance masks in chips (MODEL.MASK_ON): cut and scaled with the chip, aligned with the boxes,
bad segmentations named by image."""
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from detectron2.data import transforms as T
from detectron2.structures import BitMasks, PolygonMasks, polygons_to_bitmask

from sniper_d2.chips import Chip, ValidRange
from sniper_d2.data.chip_mapper import SniperChipMapper
from sniper_d2.data.chip_masks import SegmentationTable, check_segmentation
from sniper_d2.data.polygon_clip import clip_polygon, polygon_is_degenerate

from .test_chip_mapper import BOXES, CHIP, chip_input, gradient_image


def rect(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


# one segmentation per box of test_chip_mapper.BOXES; box 4 is crowd (no segmentation needed)
SEGMENTATIONS = [rect(*b) for b in BOXES[:4]] + [None]


def record(segmentations=SEGMENTATIONS, file_name="im.png", width=200, height=100):
    annos = []
    for box, segm in zip(BOXES, segmentations):
        anno = {"bbox": list(box), "bbox_mode": 0, "category_id": 0, "iscrowd": int(segm is None)}
        if segm is not None:
            anno["segmentation"] = segm
        annos.append(anno)
    return {"file_name": file_name, "image_id": 7, "width": width, "height": height, "annotations": annos}


def mask_mapper(path, mask_format="polygon", augmentations=(), segmentations=SEGMENTATIONS):
    table = SegmentationTable([("hand", [record(segmentations, str(path))])])
    return SniperChipMapper(
        valid_ranges=[ValidRange(0, 64), ValidRange(32, 150)], augmentations=list(augmentations),
        min_box_size=10, segmentations=table, mask_format=mask_format,
    )


@pytest.mark.parametrize("mask_format", ["polygon", "bitmask"])
def test_masks_follow_the_kept_boxes(tmp_path, mask_format):
    gradient_image(tmp_path / "im.png")
    inst = mask_mapper(tmp_path / "im.png", mask_format)(chip_input(tmp_path / "im.png", CHIP))["instances"]
    assert isinstance(inst.gt_masks, PolygonMasks if mask_format == "polygon" else BitMasks)
    assert len(inst.gt_masks) == len(inst.gt_boxes) == 3  # box 3 dropped with its mask
    # rectangles: each mask's extent is its box, cut to the chip (crowd: its chip box)
    assert torch.allclose(inst.gt_masks.get_bounding_boxes().tensor, inst.gt_boxes.tensor, atol=1.0)
    if mask_format == "polygon":
        assert all(float(p.min()) >= 0 and float(p.max()) <= 128 for ps in inst.gt_masks.polygons for p in ps)


def test_masks_are_flipped_with_the_boxes(tmp_path):
    gradient_image(tmp_path / "im.png")
    flip = T.RandomFlip(prob=1.0, horizontal=True)
    inst = mask_mapper(tmp_path / "im.png", augmentations=[flip])(chip_input(tmp_path / "im.png", CHIP))["instances"]
    assert torch.allclose(inst.gt_masks.get_bounding_boxes().tensor, inst.gt_boxes.tensor, atol=1e-4)
    assert inst.gt_boxes.tensor[0, 0] == 128 - 120  # flipped


def test_boxes_only_mapper_adds_no_masks(tmp_path):
    gradient_image(tmp_path / "im.png")
    out = SniperChipMapper(valid_ranges=[ValidRange(0, 64), ValidRange(32, 150)], min_box_size=10)(
        chip_input(tmp_path / "im.png", CHIP))
    assert not out["instances"].has("gt_masks")


def test_rle_mask_resampled_to_the_chip(tmp_path):
    gradient_image(tmp_path / "im.png")
    full = np.zeros((100, 200), np.uint8, order="F")
    full[10:50, 20:60] = 1  # box 0
    rle = mask_util.encode(full)
    segms = [rle] + SEGMENTATIONS[1:]
    chip = Chip(image_id=7, scale_index=0, scale=1.5, origin=(3.25, 0.5), size=(96, 96),
                box_ids=np.array([0]), negative=False)
    inst = mask_mapper(tmp_path / "im.png", "bitmask", segmentations=segms)(chip_input(tmp_path / "im.png", chip))["instances"]
    box = inst.gt_boxes.tensor[0].numpy()
    expected = polygons_to_bitmask([np.array(rect(*box)[0])], 96, 96)
    mask = inst.gt_masks.tensor[0].numpy()
    assert (mask & expected).sum() / (mask | expected).sum() > 0.95
    with pytest.raises(ValueError, match="RLE.*bitmask.*"):
        mask_mapper(tmp_path / "im.png", "polygon", segmentations=segms)(chip_input(tmp_path / "im.png", chip))


def raster(polygon, width, height):
    return polygons_to_bitmask([np.asarray(polygon, np.float64).ravel()], height, width)


def test_clip_polygon_keeps_exactly_the_part_inside_the_window():
    """Concave and self-intersecting polygons: the clipped outline rasterises (even-odd) to the
    original's raster cut to the window."""
    rng = np.random.default_rng(0)
    for _ in range(30):
        points = rng.uniform(-30, 90, size=(int(rng.integers(3, 12)), 2))
        clipped = clip_polygon(points, 60, 50)
        big = raster(points + 40, 200, 200)[40:90, 40:100]  # window [0, 60] x [0, 50] in a larger canvas
        small = raster(clipped, 60, 50) if len(clipped) >= 3 else np.zeros((50, 60), bool)
        assert (big != small).sum() <= 0.01 * big.size + 4


def test_degenerate_polygons():
    assert polygon_is_degenerate(np.array([[0, 0], [5, 5]]))
    assert polygon_is_degenerate(np.array([[0, 0], [5, 5], [10, 10], [2, 2]]))
    assert not polygon_is_degenerate(np.array([[0, 0], [10, 10], [10, 0], [0, 10]]))  # bow tie


REF = "dataset 'hand', image_id 7 (im.png)"


@pytest.mark.parametrize("segmentation, message", [
    ([[0, 0, 10, 10]], "degenerate"),                      # 2 points
    ([[0, 0, 5, 5, 10, 10]], "degenerate.*one line"),      # zero area
    ([[0, 0, 5, 5, 10]], "5 coordinates"),
    ([[0, 0, 5, float("nan"), 10, 0]], "not finite"),
    ([], "list of polygons"),
    ({"size": [50, 200], "counts": b"abc"}, "size \\[50, 200\\].*100x200"),
])
def test_bad_segmentations_name_the_image(segmentation, message):
    segms = [segmentation] + SEGMENTATIONS[1:]
    with pytest.raises(ValueError, match=message) as error:
        SegmentationTable([("hand", [record(segms)])])
    assert REF in str(error.value) and "annotation #0" in str(error.value)


def test_missing_segmentation_is_an_error_naming_the_image():
    rec = record()
    del rec["annotations"][1]["segmentation"]
    with pytest.raises(ValueError, match="annotation #1 has no 'segmentation'") as error:
        SegmentationTable([("hand", [rec])])
    assert REF in str(error.value)


def test_self_intersecting_and_outside_polygons_are_handled(tmp_path):
    """A bow tie fills its two triangles (even-odd, as COCO); a polygon reaching out of the image
    is cut to the chip."""
    gradient_image(tmp_path / "im.png")
    bow_tie = [[20, 10, 60, 50, 60, 10, 20, 50]]
    outside = [[40, 30, 400, 30, 400, 500, 40, 500]]
    assert len(check_segmentation(bow_tie, REF, 0)) == 1
    segms = [bow_tie, SEGMENTATIONS[1], outside] + SEGMENTATIONS[3:]
    inst = mask_mapper(tmp_path / "im.png", "bitmask", segmentations=segms)(chip_input(tmp_path / "im.png", CHIP))["instances"]
    tie = inst.gt_masks.tensor[0]
    assert 0.4 < tie[20:100, 40:120].float().mean() < 0.6  # two triangles: half the box
    assert inst.gt_masks.tensor[1][60:, 80:].all() and not inst.gt_masks.tensor[1][:59].any()


def test_train_loader_batches_carry_aligned_masks(tmp_path):
    """MODEL.MASK_ON through the real loader: DatasetCatalog -> chips -> mapper."""
    from detectron2.structures import BoxMode

    from sniper_d2.data.build import build_sniper_train_loader

    from ..helpers.sniper_test_data import register_dataset, small_sniper_cfg, tiny_records

    records = tiny_records(tmp_path)
    for rec in records:
        for anno in rec["annotations"]:
            x0, y0, x1, y1 = BoxMode.convert(anno["bbox"], anno["bbox_mode"], BoxMode.XYXY_ABS)
            anno["segmentation"] = rect(x0, y0, x1, y1)
    register_dataset("sniper_test_tiny_masks", records)
    cfg = small_sniper_cfg(train=("sniper_test_tiny_masks",))
    cfg.MODEL.MASK_ON = True
    cfg.OUTPUT_DIR = str(tmp_path / "out")
    batch = next(iter(build_sniper_train_loader(cfg)))
    assert sum(len(d["instances"]) for d in batch) > 0
    for chip in batch:
        inst = chip["instances"]
        assert isinstance(inst.gt_masks, PolygonMasks) and len(inst.gt_masks) == len(inst)
        assert torch.allclose(inst.gt_masks.get_bounding_boxes().tensor, inst.gt_boxes.tensor, atol=1e-3)
