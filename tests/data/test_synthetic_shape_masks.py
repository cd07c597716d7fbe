"""The shapes dataset's polygons: added without changing its images or boxes."""
import hashlib
import json

import numpy as np
import pytest
from detectron2.structures import polygons_to_bitmask

from sniper_d2.data import synthetic_shapes
from sniper_d2.data.synthetic_shapes import ShapesSpec, generate_shapes_dataset

# sha256 of the images and boxes of the generator before it emitted polygons (issue 19)
BOXES_ONLY_FINGERPRINTS = [
    (ShapesSpec(num_images=8, crowd_fraction=0.5, seed=3),
     "e053b3ddc290db1d9d9b66c5628cb9fd604d2c9783f61c8f0c500b9d4c5f335e"),
    (ShapesSpec(num_images=8, rescale_range=(0.35, 1.65), seed=4),
     "ac95d73b16773cf66874847a53cdfc3ace8e733cbe79cfadb47f9c7d0f514672"),
]


def images(spec):
    rng = np.random.default_rng(spec.seed)
    return [synthetic_shapes._image(rng, spec) for _ in range(spec.num_images)]


@pytest.mark.parametrize("spec, expected", BOXES_ONLY_FINGERPRINTS)
def test_images_and_boxes_are_unchanged(spec, expected):
    digest = hashlib.sha256()
    for img, objects in images(spec):
        digest.update(img.tobytes())
        digest.update(json.dumps([[o["category_id"], [round(v, 6) for v in o["bbox_xyxy"]], o["iscrowd"]]
                                  for o in objects]).encode())
    assert digest.hexdigest() == expected


@pytest.mark.parametrize("spec", [s for s, _ in BOXES_ONLY_FINGERPRINTS])
def test_polygons_outline_the_drawn_shapes(spec):
    for img, objects in images(spec):
        height, width = img.shape[:2]
        for obj in objects:
            polygon = np.asarray(obj["polygon"])
            x0, y0, x1, y1 = obj["bbox_xyxy"]
            xs, ys = polygon[0::2], polygon[1::2]
            assert len(polygon) >= 6 and xs.min() >= x0 - 1e-6 and xs.max() <= x1 + 1e-6
            assert ys.min() >= y0 - 1e-6 and ys.max() <= y1 + 1e-6
            mask = polygons_to_bitmask([polygon], height, width)
            box_area = (x1 - x0) * (y1 - y0)
            assert 0.3 * box_area <= mask.sum() + 4 <= 1.1 * box_area + 8  # triangle ~1/2, ellipse ~pi/4, rect 1


def test_coco_json_has_segmentations(tmp_path):
    generate_shapes_dataset(str(tmp_path / "img"), str(tmp_path / "a.json"), ShapesSpec(num_images=3, seed=5))
    annotations = json.load(open(tmp_path / "a.json"))["annotations"]
    assert annotations and all(len(a["segmentation"]) == 1 and len(a["segmentation"][0]) >= 6 for a in annotations)
