"""A synthetic COCO-format detection dataset for demos and tests ("sniper_shapes").

Images are textured backgrounds with filled shapes of three classes whose sqrt(area) spans from a
few pixels to most of the image (so every SNIPER scale has work), unlabeled distractors (outlines,
crosses) that a detector learns to reject (the negative chips' job), a share of background-only
images, and, in the training split, a few crowd regions (clusters of dots boxed as ``iscrowd``).
Generation is deterministic for a seed and needs only numpy and OpenCV. Every object and crowd
region also has a COCO ``segmentation`` polygon (for Mask R-CNN, ``MODEL.MASK_ON``); computing it
draws no random numbers, so the images and boxes of a seed are those of the boxes-only generator.

Two kinds of scale variation (``ShapesSpec.rescale_range``):

* default ``(1, 1)``: object sizes are drawn independently of the image size, so resizing every
  image to one resolution does not normalise them (the built-in dataset: a fair test of scale);
* e.g. ``(0.35, 1.65)``: each finished image, objects included, is resized by a random factor, so
  object size follows image size (as in datasets whose images come from cameras at different
  resolutions); one resolution for all images already normalises most of the scale variation.
"""
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import List, Tuple

import cv2
import numpy as np

__all__ = ["SHAPE_CLASSES", "ShapesSpec", "generate_shapes_dataset"]

SHAPE_CLASSES = ("rectangle", "ellipse", "triangle")


@dataclass(frozen=True)
class ShapesSpec:
    """What to generate. Sizes in px of the generated images."""

    num_images: int = 64
    min_side: int = 224  # shorter image side is drawn from [min_side, max_side]
    max_side: int = 384
    max_aspect: float = 1.6  # long side / short side, at most
    max_objects: int = 7  # objects per image: 1..max_objects (background-only images have 0)
    min_object_size: float = 5.0  # sqrt(area) of the smallest object, px
    max_object_fraction: float = 0.8  # largest object side, as a fraction of the short image side
    background_only_fraction: float = 0.1
    crowd_fraction: float = 0.0  # share of images that get one crowd region
    # (min, max) factor by which each finished image and its boxes are resized (log-uniform);
    # (1, 1): not resized
    rescale_range: Tuple[float, float] = (1.0, 1.0)
    seed: int = 0


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth colour gradient plus noise and a few random lines (uint8 BGR)."""
    c0, c1 = rng.uniform(40, 215, size=(2, 3))
    t = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    if rng.random() < 0.5:
        t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    img = (c0 * (1 - t) + c1 * t) + rng.normal(0, 12, size=(height, width, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(2, 6)):
        p0 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.line(img, p0, p1, _colour(rng), int(rng.integers(1, 3)))
    return img


def _colour(rng: np.random.Generator) -> Tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, size=3))


def _contrasting_colour(rng: np.random.Generator, region: np.ndarray) -> Tuple[int, int, int]:
    """A colour at least 100 (Euclidean, BGR) away from the region's mean, so objects are visible."""
    mean = region.reshape(-1, 3).mean(axis=0)
    for _ in range(50):
        colour = rng.integers(0, 256, size=3)
        if np.linalg.norm(colour - mean) >= 100:
            break
    else:
        colour = np.where(mean < 128, 255, 0)
    return tuple(int(v) for v in colour)


# vertices of the polygon that outlines an ellipse
_ELLIPSE_VERTICES = 32


def _draw_object(img, rng, cls: int, box: Tuple[float, float, float, float]) -> List[float]:
    """Draw one object filling ``box`` (original px XYXY); returns its outline as a flat COCO polygon
    ``[x1, y1, x2, y2, ...]`` in Detectron2's continuous px."""
    x0, y0, x1, y1 = box
    colour = _contrasting_colour(rng, img[int(y0):int(math.ceil(y1)), int(x0):int(math.ceil(x1))])
    if cls == 0:
        cv2.rectangle(img, (int(round(x0)), int(round(y0))), (int(round(x1)) - 1, int(round(y1)) - 1),
                      colour, thickness=-1)
        return [x0, y0, x1, y0, x1, y1, x0, y1]
    if cls == 1:
        centre = (int(round((x0 + x1) / 2)), int(round((y0 + y1) / 2)))
        axes = (max(1, int(round((x1 - x0) / 2))), max(1, int(round((y1 - y0) / 2))))
        cv2.ellipse(img, centre, axes, 0, 0, 360, colour, thickness=-1)
        angle = np.linspace(0.0, 2 * math.pi, _ELLIPSE_VERTICES, endpoint=False)
        outline = np.stack([(x0 + x1) / 2 + (x1 - x0) / 2 * np.cos(angle),
                            (y0 + y1) / 2 + (y1 - y0) / 2 * np.sin(angle)], axis=1)
        return [float(v) for v in outline.ravel()]
    apex = (x0 + rng.uniform(0.2, 0.8) * (x1 - x0), y0)
    pts = np.array([[apex[0], apex[1]], [x0, y1 - 1], [x1 - 1, y1 - 1]])
    cv2.fillPoly(img, [np.round(pts).astype(np.int32)], colour)
    return [apex[0], apex[1], x0, y1, x1, y1]


def _draw_distractor(img, rng, box) -> None:
    """Unlabeled clutter: an outline (ring / hollow box) or a cross."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    colour, thick = _colour(rng), int(rng.integers(1, 4))
    kind = rng.integers(0, 3)
    if kind == 0:
        cv2.ellipse(img, ((x0 + x1) // 2, (y0 + y1) // 2), (max(1, (x1 - x0) // 2), max(1, (y1 - y0) // 2)),
                    0, 0, 360, colour, thick)
    elif kind == 1:
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, thick)
    else:
        cv2.line(img, (x0, y0), (x1, y1), colour, thick)
        cv2.line(img, (x0, y1), (x1, y0), colour, thick)


def _random_box(rng, width, height, size: float, max_aspect: float = 2.0):
    """A box of sqrt(area) ~= size px, random aspect, placed inside the image. Original px XYXY."""
    aspect = math.exp(rng.uniform(-math.log(max_aspect), math.log(max_aspect)))
    w = min(size * math.sqrt(aspect), width - 1.0)
    h = min(size / math.sqrt(aspect), height - 1.0)
    x0 = rng.uniform(0, width - w)
    y0 = rng.uniform(0, height - h)
    return (x0, y0, x0 + w, y0 + h)


def _image(rng, spec: ShapesSpec):
    short = int(rng.integers(spec.min_side, spec.max_side + 1))
    long_ = int(round(short * rng.uniform(1.0, spec.max_aspect)))
    width, height = (long_, short) if rng.random() < 0.6 else (short, long_)
    img = _background(rng, height, width)
    for _ in range(rng.integers(1, 4)):
        _draw_distractor(img, rng, _random_box(rng, width, height, rng.uniform(8, 0.4 * short)))

    annotations: List[dict] = []
    n_objects = 0 if rng.random() < spec.background_only_fraction else int(rng.integers(1, spec.max_objects + 1))
    max_size = spec.max_object_fraction * short
    for _ in range(n_objects):
        # log-uniform sqrt(area): as many small as medium as large objects
        size = math.exp(rng.uniform(math.log(spec.min_object_size), math.log(max_size)))
        box = _random_box(rng, width, height, size)
        cls = int(rng.integers(0, len(SHAPE_CLASSES)))
        polygon = _draw_object(img, rng, cls, box)
        annotations.append({"category_id": cls + 1, "bbox_xyxy": box, "polygon": polygon, "iscrowd": 0})
    if rng.random() < spec.crowd_fraction:
        box = _random_box(rng, width, height, rng.uniform(0.15, 0.3) * short)
        x0, y0, x1, y1 = box
        colour = _colour(rng)
        for _ in range(int(rng.integers(8, 20))):
            centre = (int(rng.uniform(x0 + 2, x1 - 2)), int(rng.uniform(y0 + 2, y1 - 2)))
            cv2.circle(img, centre, 2, colour, -1)
        annotations.append({"category_id": 2, "bbox_xyxy": box, "polygon": [x0, y0, x1, y0, x1, y1, x0, y1], "iscrowd": 1})
    low, high = spec.rescale_range
    if (low, high) != (1.0, 1.0):
        img, annotations = _rescaled(img, annotations, math.exp(rng.uniform(math.log(low), math.log(high))))
    return img, annotations


def _rescaled(img: np.ndarray, annotations: List[dict], factor: float):
    """The image resized by ``factor`` (at least 8 px a side) and its boxes and polygons with it."""
    height, width = img.shape[:2]
    new_w, new_h = max(8, int(round(width * factor))), max(8, int(round(height * factor)))
    fx, fy = new_w / width, new_h / height
    img = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
    for obj in annotations:
        x0, y0, x1, y1 = obj["bbox_xyxy"]
        obj["bbox_xyxy"] = (x0 * fx, y0 * fy, x1 * fx, y1 * fy)
        obj["polygon"] = [v * (fx if k % 2 == 0 else fy) for k, v in enumerate(obj["polygon"])]
    return img, annotations


def generate_shapes_dataset(image_dir: str, json_file: str, spec: ShapesSpec = ShapesSpec()) -> None:
    """Write ``spec.num_images`` JPEGs into ``image_dir`` and their COCO annotations to ``json_file``.

    The JPEGs and the JSON are first written to temporary names and then renamed, so concurrent
    processes (e.g. distributed ranks) never read a half-written dataset.
    """
    rng = np.random.default_rng(spec.seed)
    os.makedirs(os.path.dirname(os.path.abspath(json_file)), exist_ok=True)
    parent = os.path.dirname(os.path.abspath(image_dir))
    os.makedirs(parent, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".tmp_", dir=parent)
    images, annotations = [], []
    for i in range(spec.num_images):
        img, objects = _image(rng, spec)
        file_name = f"{i:06d}.jpg"
        cv2.imwrite(os.path.join(tmp_dir, file_name), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        images.append({"id": i + 1, "file_name": file_name, "height": img.shape[0], "width": img.shape[1]})
        for obj in objects:
            x0, y0, x1, y1 = obj["bbox_xyxy"]
            annotations.append({
                "id": len(annotations) + 1, "image_id": i + 1, "category_id": obj["category_id"],
                "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                "area": round((x1 - x0) * (y1 - y0), 2), "iscrowd": obj["iscrowd"],
                "segmentation": [[round(v, 2) for v in obj["polygon"]]],
            })
    coco = {
        "info": {"description": f"sniper_d2 synthetic shapes, seed {spec.seed}"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(SHAPE_CLASSES)],
    }
    try:
        os.rename(tmp_dir, image_dir)
    except OSError:  # another process finished first: keep its (identical) images
        shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_json = f"{json_file}.{os.getpid()}.tmp"
    with open(tmp_json, "w") as f:
        json.dump(coco, f)
    os.replace(tmp_json, json_file)
