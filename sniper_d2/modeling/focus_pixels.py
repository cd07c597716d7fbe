"""AutoFocus FocusPixel labels: which feature-map cells of a training chip hold a small object.

AutoFocus (Najibi, Singh, Davis, ICCV 2019) trains a branch to predict, per cell of a feature map,
whether a small object is there. A cell is labelled from the chip's ground-truth boxes (all of them,
valid or not for the chip's scale, clipped to the chip), by the boxes it overlaps and their size,
sqrt(area) in chip px. The authors label the stride-16 grid of 512 px COCO chips with sizes
5 / 64 / 90 (``SNIPER.AUTOFOCUS.DC_LOW / SMALL_THRESH / DC_HIGH``).
"""
from typing import Optional, Tuple

import torch

__all__ = ["FOCUS_POSITIVE", "FOCUS_NEGATIVE", "FOCUS_IGNORE", "focus_pixel_labels"]

FOCUS_POSITIVE = 1
FOCUS_NEGATIVE = 0
FOCUS_IGNORE = -1


def _cells_overlapped(lo: torch.Tensor, hi: torch.Tensor, num_cells: int, stride: float) -> torch.Tensor:
    """(N, num_cells) bool: cell k, px [k*stride, (k+1)*stride), overlaps [lo, hi) by a positive
    length (a box ending exactly on a cell border does not touch the next cell)."""
    starts = torch.arange(num_cells, device=lo.device, dtype=lo.dtype) * stride
    return (starts[None, :] < hi[:, None]) & (starts[None, :] + stride > lo[:, None])


def _any_box_overlaps(row_mask: torch.Tensor, col_mask: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
    """(rows, cols) bool: some box selected by ``which`` covers the cell. A box covers the cells of
    its rows x its columns, so the count of boxes per cell is a (rows, N) @ (N, cols) product:
    memory O(N * (rows + cols)), not O(N * rows * cols)."""
    rows = row_mask[which].to(torch.float32)
    cols = col_mask[which].to(torch.float32)
    return (rows.t() @ cols) > 0


def focus_pixel_labels(
    boxes: torch.Tensor,
    crowd: Optional[torch.Tensor],
    image_size: Tuple[int, int],
    grid_size: Tuple[int, int],
    stride: float,
    dc_low: float,
    small_thresh: float,
    dc_high: float,
) -> torch.Tensor:
    """FocusPixel label of every cell of one chip's feature-map grid.

    Cell (r, c) is the square of chip px rows [r*stride, (r+1)*stride), cols [c*stride,
    (c+1)*stride). Boxes are first clipped to the chip content ``[0, w] x [0, h]``; their size is
    sqrt(area) of the clipped box, chip px. A box overlaps a cell if their intersection has a
    positive area. Labels:

    * ``1`` (positive): the cell overlaps a non-crowd box of size in ``(dc_low, small_thresh)``;
    * ``-1`` (don't care) otherwise, if it overlaps a box of size ``<= dc_low`` or in
      ``[small_thresh, dc_high)``, or a crowd box of any size; also every cell lying entirely
      beyond the chip content (batch padding: ``r*stride >= h`` or ``c*stride >= w``);
    * ``0`` (negative): everything else (background, or only objects of size ``>= dc_high``).

    Positive wins over don't care: a small object beside a medium one is still a FocusPixel.

    Args:
        boxes: (N, 4) float XYXY, chip px.
        crowd: (N,) bool, True for crowd boxes; None: no crowd box.
        image_size: (h, w) of the chip content, chip px; the grid may extend beyond it (padding).
        grid_size: (rows, cols) of the feature map.
        stride: chip px per cell side.
        dc_low, small_thresh, dc_high: size thresholds, sqrt(area) in chip px.

    Returns:
        (rows, cols) int64 tensor of 1 / 0 / -1 on ``boxes``' device.
    """
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"focus_pixel_labels: boxes must be (N, 4) XYXY chip px, got shape {tuple(boxes.shape)}.")
    if crowd is not None and crowd.shape != boxes.shape[:1]:
        raise ValueError(
            f"focus_pixel_labels: crowd has shape {tuple(crowd.shape)} for {len(boxes)} boxes: give one bool per box."
        )
    if stride <= 0:
        raise ValueError(f"focus_pixel_labels: stride must be > 0 chip px per cell, got {stride}.")
    h, w = image_size
    rows, cols = grid_size
    device = boxes.device
    labels = torch.zeros((rows, cols), dtype=torch.int64, device=device)

    boxes = boxes.to(torch.float32)
    x1, x2 = boxes[:, 0].clamp(0, w), boxes[:, 2].clamp(0, w)
    y1, y2 = boxes[:, 1].clamp(0, h), boxes[:, 3].clamp(0, h)
    has_area = (x2 > x1) & (y2 > y1)
    sizes = ((x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)).sqrt()
    is_crowd = crowd.to(device=device, dtype=torch.bool) if crowd is not None else torch.zeros_like(has_area)

    positive = has_area & ~is_crowd & (sizes > dc_low) & (sizes < small_thresh)
    dont_care = has_area & (is_crowd | (sizes <= dc_low) | ((sizes >= small_thresh) & (sizes < dc_high)))
    row_mask = _cells_overlapped(y1, y2, rows, stride)
    col_mask = _cells_overlapped(x1, x2, cols, stride)
    labels[_any_box_overlaps(row_mask, col_mask, dont_care)] = FOCUS_IGNORE
    labels[_any_box_overlaps(row_mask, col_mask, positive)] = FOCUS_POSITIVE

    cell_starts_r = torch.arange(rows, device=device) * stride
    cell_starts_c = torch.arange(cols, device=device) * stride
    labels[cell_starts_r >= h, :] = FOCUS_IGNORE
    labels[:, cell_starts_c >= w] = FOCUS_IGNORE
    return labels
