"""Gaussian soft-NMS (Bodla et al. 2017), all classes at once, in torch (CPU or GPU).

The detections of every class are padded into one ``(classes, max_per_class)`` table and the
sequential selection ("take the best remaining box, decay the others by ``exp(-IoU^2 / sigma)``")
runs for all classes simultaneously, one vectorised step per selection. The scores a class
selects never increase, so after ``max_keep`` steps no class can add anything to the overall
top ``max_keep``; the loop also stops as soon as no remaining box can beat the current
``max_keep``-th best kept score.
"""
import torch

__all__ = ["batched_soft_nms"]


def _iou_with_selected(table: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """IoU of every box of a row with that row's selected box.

    ``table`` is ``(5, G, N)``: x1, y1, x2, y2, area of G rows of N boxes; ``selected`` is
    ``(5, G)``, the same for one box per row. Returns ``(G, N)``; 0 where both boxes are empty.
    """
    x1, y1, x2, y2, area = table
    sx1, sy1, sx2, sy2, sarea = selected[:, :, None]
    inter_w = torch.minimum(x2, sx2).sub_(torch.maximum(x1, sx1)).clamp_(min=0)
    inter_h = torch.minimum(y2, sy2).sub_(torch.maximum(y1, sy1)).clamp_(min=0)
    inter = inter_w.mul_(inter_h)
    union = (area + sarea).sub_(inter).clamp_(min=torch.finfo(area.dtype).tiny)
    return inter.div_(union)


def _pad_by_class(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor):
    """Group detections by class into padded tables with one row per class present and N columns
    (N = largest class), input order kept within a row.

    Returns ``table`` ``(5, G, N)`` (x1, y1, x2, y2, area), ``scores`` ``(G, N)`` (padding -inf)
    and ``index`` ``(G, N)`` (position in the inputs, padding -1).
    """
    _, group, counts = torch.unique(idxs, return_inverse=True, return_counts=True)
    order = torch.argsort(group, stable=True)
    group = group[order]
    starts = torch.cumsum(counts, 0) - counts
    position = torch.arange(order.numel(), device=idxs.device) - starts[group]
    num_groups, width = counts.numel(), int(counts.max())
    sorted_boxes = boxes[order]
    area = (sorted_boxes[:, 2] - sorted_boxes[:, 0]) * (sorted_boxes[:, 3] - sorted_boxes[:, 1])
    table = boxes.new_zeros((5, num_groups, width))
    table[:, group, position] = torch.cat([sorted_boxes, area[:, None]], dim=1).t()
    table_scores = scores.new_full((num_groups, width), -float("inf"))
    table_scores[group, position] = scores[order]
    table_index = order.new_full((num_groups, width), -1)
    table_index[group, position] = order
    return table, table_scores, table_index


def batched_soft_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    idxs: torch.Tensor,
    *,
    sigma: float = 0.55,
    score_thresh: float = 0.001,
    max_keep: int = 200,
):
    """Gaussian soft-NMS within each class, then the ``max_keep`` best detections overall.

    Per class: repeatedly select the remaining box with the highest (decayed) score, keep it with
    that score, and multiply the scores of the other remaining boxes by ``exp(-IoU^2 / sigma)``;
    a box whose score is below ``score_thresh`` (before or after a decay) is dropped.

    Args:
        boxes: ``(M, 4)`` XYXY boxes (any pixel frame, one frame for all).
        scores: ``(M,)`` detection scores.
        idxs: ``(M,)`` integer class of each box; boxes of different classes never interact.
        sigma: Gaussian decay parameter, > 0.
        score_thresh: minimum score a kept detection has, >= 0.
        max_keep: number of detections returned at most, over all classes, > 0.

    Returns:
        ``(keep, kept_scores)``: indices into the inputs and the decayed scores of the kept
        detections, sorted by decayed score, highest first (ties: lower index first).
    """
    if not sigma > 0:
        raise ValueError(f"soft-NMS sigma must be > 0, got {sigma}.")
    if not score_thresh >= 0:
        raise ValueError(f"soft-NMS score_thresh must be >= 0, got {score_thresh}.")
    if not max_keep > 0:
        raise ValueError(f"soft-NMS max_keep must be > 0, got {max_keep}.")
    if not (boxes.dim() == 2 and boxes.shape[1] == 4 and scores.shape == idxs.shape == boxes.shape[:1]):
        raise ValueError(
            f"soft-NMS expects boxes (M, 4), scores (M,), idxs (M,); got {tuple(boxes.shape)}, "
            f"{tuple(scores.shape)}, {tuple(idxs.shape)}."
        )
    candidates = torch.nonzero(scores >= score_thresh).squeeze(1)
    if candidates.numel() == 0:
        return candidates, scores[candidates]
    table, table_scores, table_index = _pad_by_class(
        boxes[candidates], scores[candidates], idxs[candidates]
    )
    # Removed boxes (selected, decayed below score_thresh, padding) have score -inf; the decay
    # factor is kept above 0 so that -inf never turns into nan.
    smallest_factor = torch.finfo(table_scores.dtype).tiny
    kept_index, kept_scores = [], []
    num_kept = 0
    bar = -float("inf")  # max_keep-th best kept score so far: nothing below it can enter
    rows = torch.arange(table_scores.shape[0], device=table_scores.device)
    for _ in range(min(max_keep, table_scores.shape[1])):
        best_score, best_pos = table_scores.max(dim=1)
        has_box = best_score > -float("inf")
        if not bool(has_box.all()):
            live = torch.nonzero(has_box).squeeze(1)
            if live.numel() == 0:
                break
            table, table_scores, table_index = table[:, live], table_scores[live], table_index[live]
            best_score, best_pos = best_score[live], best_pos[live]
            rows = rows[: live.numel()]
        if num_kept >= max_keep and not bool((best_score >= bar).any()):
            break
        kept_index.append(table_index[rows, best_pos])
        kept_scores.append(best_score)
        num_kept += best_score.numel()
        if num_kept >= max_keep:
            bar = torch.topk(torch.cat(kept_scores), max_keep).values[-1]
        iou = _iou_with_selected(table, table[:, rows, best_pos])
        table_scores = table_scores * iou.square_().mul_(-1.0 / sigma).exp_().clamp_(min=smallest_factor)
        table_scores[rows, best_pos] = -float("inf")
        table_scores.masked_fill_(table_scores < score_thresh, -float("inf"))
    keep = candidates[torch.cat(kept_index)]
    new_scores = torch.cat(kept_scores)
    # Sort by (-score, index) so that equal scores come out in a deterministic order.
    by_index = torch.argsort(keep)
    keep, new_scores = keep[by_index], new_scores[by_index]
    by_score = torch.argsort(new_scores, descending=True, stable=True)[:max_keep]
    return keep[by_score], new_scores[by_score]
