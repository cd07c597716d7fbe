"""Polygons cut to a rectangle, pure numpy (no torch, no detectron2, no shapely).

A chip's instance masks are the image's polygons moved into the chip frame and cut to the chip
window. The cut is Sutherland-Hodgman clipping against the four sides of an axis-aligned window:
for any polygon (convex or not, even self-intersecting) the clipped outline covers exactly the
part of the polygon inside the window under the even-odd fill rule COCO rasterisation uses;
a concave polygon cut into several pieces comes out as one outline joined by zero-width seams
along the window's border, which rasterise to nothing. (Detectron2's own
``CropTransform.apply_polygons`` does this with shapely, which is not a dependency here.)
"""
import numpy as np

__all__ = ["clip_polygon", "polygon_is_degenerate"]


def _clip_side(points: np.ndarray, axis: int, bound: float, keep_below: bool) -> np.ndarray:
    """One Sutherland-Hodgman pass: the part of a closed polygon ``(N, 2)`` on one side of the
    line ``coordinate[axis] == bound``."""
    if len(points) == 0:
        return points
    coord = points[:, axis]
    inside = coord <= bound if keep_below else coord >= bound
    if inside.all():
        return points
    if not inside.any():
        return points[:0]
    nxt = np.roll(points, -1, axis=0)
    nxt_inside = np.roll(inside, -1)
    delta = nxt[:, axis] - coord
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(delta != 0, (bound - coord) / delta, 0.0)
    crossing = points + t[:, None] * (nxt - points)
    crossing[:, axis] = bound
    # per edge (p -> q): emit the crossing when it changes sides, then q when q is inside
    emit_crossing = inside != nxt_inside
    out = np.empty((2 * len(points), 2), dtype=points.dtype)
    out[0::2] = crossing
    out[1::2] = nxt
    mask = np.empty(2 * len(points), dtype=bool)
    mask[0::2] = emit_crossing
    mask[1::2] = nxt_inside
    return out[mask]


def clip_polygon(points: np.ndarray, width: float, height: float) -> np.ndarray:
    """The part of a closed polygon inside the window ``[0, width] x [0, height]``.

    Args:
        points: ``(N, 2)`` vertices x, y (any px frame, the window's).
        width, height: window size in the same px.

    Returns:
        ``(M, 2)`` float64 vertices; ``M == 0`` when nothing of the polygon lies inside.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    lo, hi = points.min(axis=0), points.max(axis=0)
    if lo[0] >= 0 and lo[1] >= 0 and hi[0] <= width and hi[1] <= height:
        return points
    if hi[0] <= 0 or hi[1] <= 0 or lo[0] >= width or lo[1] >= height:
        return points[:0]
    for axis, bound, keep_below in ((0, 0.0, False), (0, float(width), True), (1, 0.0, False), (1, float(height), True)):
        points = _clip_side(points, axis, bound, keep_below)
    return points


def polygon_is_degenerate(points: np.ndarray) -> bool:
    """True if a polygon ``(N, 2)`` encloses no area under any fill rule: fewer than 3 vertices
    or all of them on one line (a self-intersecting "bow tie" is not degenerate)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(points) < 3:
        return True
    centred = points - points.mean(axis=0)
    # collinear iff the 2x2 scatter matrix is singular (relative to the polygon's extent)
    scatter = centred.T @ centred
    scale = max(float(np.trace(scatter)), 1e-300)
    return float(np.linalg.det(scatter)) <= 1e-12 * scale * scale
