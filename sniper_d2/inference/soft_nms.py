"""Gaussian soft-NMS (Bodla et al. 2017), all classes at once, in torch (CPU or GPU).

The detections of every class are padded into one ``(classes, max_per_class)`` table and the
sequential selection ("take the best remaining box, decay the others by ``exp(-IoU^2 / sigma)``")
runs for all classes simultaneously, one vectorised step per selection. The scores a class
selects never increase, so after ``max_keep`` steps no class can add anything to the overall
top ``max_keep``; the loop also stops as soon as no remaining box can beat the current
``max_keep``-th best kept score; classes that can add nothing more leave the table.

A step is a fixed number of small tensor operations, so the per-operation overhead dominates on
CPU. When the loop is likely to run many steps for the size of the table (at most
``PAIRWISE_DETECTIONS_PER_KEEP * max_keep`` detections), the decay factors of all pairs within a
class are computed up front and a step just reads one row of them; otherwise each step computes
the row it needs (measured on CPU with ``benchmarks/bench_inference.py``).
"""
import torch

__all__ = ["batched_soft_nms"]

# Pairwise decay factors are computed up front only for at most this many detections per kept
# detection, and only for a (classes x N x N) table of at most PAIRWISE_DECAY_LIMIT entries.
PAIRWISE_DETECTIONS_PER_KEEP = 8
PAIRWISE_DECAY_LIMIT = 1 << 22


def _decay_factors(a: torch.Tensor, b: torch.Tensor, sigma: float) -> torch.Tensor:
    """``exp(-IoU^2 / sigma)`` between boxes ``a`` and ``b``, broadcast over their trailing dims.

    ``a`` and ``b`` are ``(5, ...)``: x1, y1, x2, y2, area. Empty boxes have IoU 0 with
    everything; the factor is kept above 0 so that a removed box's score (-inf) never becomes nan.
    """
    inter_w = torch.minimum(a[2], b[2]).sub_(torch.maximum(a[0], b[0])).clamp_(min=0)
    inter_h = torch.minimum(a[3], b[3]).sub_(torch.maximum(a[1], b[1])).clamp_(min=0)
    inter = inter_w.mul_(inter_h)
    union = (a[4] + b[4]).sub_(inter).clamp_(min=torch.finfo(inter.dtype).tiny)
    iou = inter.div_(union)
    return iou.square_().mul_(-1.0 / sigma).exp_().clamp_(min=torch.finfo(inter.dtype).tiny)


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
    num_rows, width = table_scores.shape
    pairwise = None
    few_detections = candidates.numel() <= PAIRWISE_DETECTIONS_PER_KEEP * max_keep
    if few_detections and num_rows * width * width <= PAIRWISE_DECAY_LIMIT:
        pairwise = _decay_factors(table[:, :, :, None], table[:, :, None, :], sigma)  # (G, N, N)
    # Selected boxes and padding have score -inf. A row (class) whose best score is below ``bar``
    # can add nothing more and leaves the table: bar is score_thresh, then the max_keep-th best
    # score kept so far. So boxes decayed below score_thresh are never selected.
    kept_index, kept_scores = [], []
    top = table_scores.new_empty(0)
    bar = score_thresh
    rows = torch.arange(num_rows, device=table_scores.device)
    for _ in range(min(max_keep, width)):
        best_score, best_pos = table_scores.max(dim=1)
        useful = best_score >= bar
        num_useful = int(useful.sum())
        if num_useful == 0:
            break
        if num_useful < rows.numel():
            useful = torch.nonzero(useful).squeeze(1)
            table, table_scores, table_index = table[:, useful], table_scores[useful], table_index[useful]
            pairwise = pairwise[useful] if pairwise is not None else None
            best_score, best_pos = best_score[useful], best_pos[useful]
            rows = rows[:num_useful]
        kept_index.append(table_index[rows, best_pos])
        kept_scores.append(best_score)
        top = torch.cat([top, best_score])
        if top.numel() >= max_keep:
            top = torch.topk(top, max_keep).values
            bar = top[-1].clamp(min=score_thresh)
        if pairwise is not None:
            factors = pairwise[rows, best_pos]
        else:
            factors = _decay_factors(table[:, rows, best_pos, None], table, sigma)
        table_scores.mul_(factors)
        table_scores[rows, best_pos] = -float("inf")
    keep = candidates[torch.cat(kept_index)]
    new_scores = torch.cat(kept_scores)
    # Sort by (-score, index) so that equal scores come out in a deterministic order.
    by_index = torch.argsort(keep)
    keep, new_scores = keep[by_index], new_scores[by_index]
    by_score = torch.argsort(new_scores, descending=True, stable=True)[:max_keep]
    return keep[by_score], new_scores[by_score]
