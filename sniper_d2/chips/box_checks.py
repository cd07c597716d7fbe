"""Input checks for the boxes of one image: annotations must be usable as given, proposals are clipped.

Errors name the image, the offending box (index and coordinates) and what to do about it.
"""
import numpy as np

__all__ = ["check_boxes", "check_image_size", "clip_proposals"]


def check_image_size(width, height, image_ref) -> None:
    """Raise ValueError unless ``width`` and ``height`` (original px) are finite and positive."""
    try:
        ok = all(np.isfinite(float(v)) and float(v) > 0 for v in (width, height))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"Image {image_ref!r}: invalid size {width!r} x {height!r}; width and height must be "
            "positive pixel counts. Fix the image's 'width'/'height' in the dataset."
        )


def _as_xyxy(boxes, image_ref, what) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(
            f"Image {image_ref!r}: {what} must be an (N, 4) array of XYXY boxes, got shape {array.shape}."
        )
    return array


_PLURAL = {"box": "boxes", "proposal": "proposals"}


def _first_bad(bad: np.ndarray, boxes: np.ndarray, image_ref, noun, problem, remedy) -> None:
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        others = int(bad.sum()) - 1
        more = f" ({others} more {_PLURAL[noun]} of this image have the same problem)" if others else ""
        raise ValueError(
            f"Image {image_ref!r}: {noun} {index} {boxes[index].tolist()} (XYXY, original px) "
            f"{problem}{more}. {remedy}"
        )


def check_boxes(boxes, width, height, image_ref) -> np.ndarray:
    """Validate and clip the annotation boxes of one image.

    Args:
        boxes: (N, 4) XYXY, original px (Detectron2's continuous coordinates).
        width, height: image size, original px.
        image_ref: how errors name the image (id, file name).

    Returns:
        float64 (N, 4): the boxes, with parts outside the image clipped away.

    Raises:
        ValueError: for a non-finite, degenerate (``x2 <= x1`` or ``y2 <= y1``) or wholly-outside
            box; silently dropping an annotation would change the training data.
    """
    check_image_size(width, height, image_ref)
    boxes = _as_xyxy(boxes, image_ref, "boxes")
    if len(boxes) == 0:
        return boxes.copy()
    remedy = "Fix or remove it in the annotations (boxes are XYXY: x1, y1, x2, y2)."
    _first_bad(~np.isfinite(boxes).all(axis=1), boxes, image_ref, "box", "has NaN or infinite coordinates", remedy)
    degenerate = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    _first_bad(degenerate, boxes, image_ref, "box", "is empty (needs x2 > x1 and y2 > y1)",
               remedy + " XYWH boxes must be converted to XYXY first.")
    outside = (boxes[:, 0] >= width) | (boxes[:, 2] <= 0) | (boxes[:, 1] >= height) | (boxes[:, 3] <= 0)
    _first_bad(outside, boxes, image_ref, "box", f"lies wholly outside the {width} x {height} image",
               "Check that the annotation belongs to this image and the image size is right.")
    return np.clip(boxes, 0, [width, height, width, height])


def clip_proposals(proposals, width, height, image_ref) -> np.ndarray:
    """Proposals of one image (P, 4) XYXY original px, as float64 clipped to the image.

    Proposals are model outputs, not annotations: empty ones (also after clipping) are kept here
    and simply never count for a negative chip. Non-finite coordinates and inverted boxes
    (``x2 < x1`` or ``y2 < y1``, the sign of XYWH proposals) raise ValueError.
    """
    check_image_size(width, height, image_ref)
    proposals = _as_xyxy(proposals, image_ref, "proposals")
    _first_bad(~np.isfinite(proposals).all(axis=1), proposals, image_ref, "proposal",
               "has NaN or infinite coordinates", "Regenerate the proposal file or remove this image's entry.")
    inverted = (proposals[:, 2] < proposals[:, 0]) | (proposals[:, 3] < proposals[:, 1])
    _first_bad(inverted, proposals, image_ref, "proposal", "has x2 < x1 or y2 < y1",
               "Proposals must be XYXY (x1, y1, x2, y2): convert XYWH proposals before use.")
    return np.minimum(np.maximum(proposals, 0.0), (width, height, width, height))
