"""Vectorised Gaussian soft-NMS against a brute-force reference."""
import math

import pytest
import torch

import sniper_d2.inference.soft_nms as soft_nms_module
from sniper_d2.inference import batched_soft_nms


def reference_soft_nms(boxes, scores, classes, sigma, score_thresh, max_keep):
    """Textbook per-class Gaussian soft-NMS in plain Python; [(index, score)], best first."""

    def iou(a, b):
        inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    kept = []
    for cls in set(classes):
        pool = [(i, scores[i]) for i in range(len(scores)) if classes[i] == cls and scores[i] >= score_thresh]
        while pool:
            best = max(range(len(pool)), key=lambda j: pool[j][1])
            index, score = pool.pop(best)
            kept.append((index, score))
            decayed = [(j, s * math.exp(-iou(boxes[index], boxes[j]) ** 2 / sigma)) for j, s in pool]
            pool = [(j, s) for j, s in decayed if s >= score_thresh]
    kept.sort(key=lambda item: (-item[1], item[0]))
    return kept[:max_keep]


def random_detections(seed, num, num_classes, dtype=torch.float64, canvas=100.0, max_side=40.0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(num, 2, generator=g, dtype=dtype) * canvas
    wh = torch.rand(num, 2, generator=g, dtype=dtype) * max_side + 1
    scores = torch.rand(num, generator=g, dtype=dtype)
    classes = torch.randint(0, num_classes, (num,), generator=g)
    return torch.cat([xy, xy + wh], dim=1), scores, classes


@pytest.fixture(params=["pairwise", "rowwise"])
def decay_path(request, monkeypatch):
    """Run a test with decay factors precomputed for all pairs, and computed row by row."""
    if request.param == "rowwise":
        monkeypatch.setattr(soft_nms_module, "PAIRWISE_DECAY_LIMIT", 0)
    else:
        monkeypatch.setattr(soft_nms_module, "PAIRWISE_DETECTIONS_PER_KEEP", 10**6)
    return request.param


@pytest.mark.parametrize("seed", range(8))
def test_matches_reference_on_random_boxes(seed, decay_path):
    g = torch.Generator().manual_seed(1000 + seed)
    num = int(torch.randint(1, 250, (1,), generator=g))
    num_classes = int(torch.randint(1, 8, (1,), generator=g))
    max_keep = int(torch.randint(1, 120, (1,), generator=g))
    sigma = [0.55, 0.1, 2.0][seed % 3]
    boxes, scores, classes = random_detections(seed, num, num_classes)
    keep, kept_scores = batched_soft_nms(
        boxes, scores, classes, sigma=sigma, score_thresh=0.05, max_keep=max_keep
    )
    expected = reference_soft_nms(boxes.tolist(), scores.tolist(), classes.tolist(), sigma, 0.05, max_keep)
    assert keep.tolist() == [i for i, _ in expected]
    torch.testing.assert_close(kept_scores, torch.tensor([s for _, s in expected], dtype=torch.float64))


def test_one_crowded_class_among_small_ones(decay_path):
    boxes, scores, classes = random_detections(11, 300, 1)
    classes[:20] = torch.arange(1, 21)  # 20 classes of one box, one class of 280
    keep, kept_scores = batched_soft_nms(boxes, scores, classes, sigma=0.55, score_thresh=0.01, max_keep=150)
    expected = reference_soft_nms(boxes.tolist(), scores.tolist(), classes.tolist(), 0.55, 0.01, 150)
    assert keep.tolist() == [i for i, _ in expected]
    torch.testing.assert_close(kept_scores, torch.tensor([s for _, s in expected], dtype=torch.float64))


def test_float32_matches_reference_within_tolerance():
    boxes, scores, classes = random_detections(7, 400, 5, dtype=torch.float32, canvas=1000.0, max_side=300.0)
    keep, kept_scores = batched_soft_nms(boxes, scores, classes, sigma=0.55, score_thresh=0.001, max_keep=200)
    expected = reference_soft_nms(boxes.double().tolist(), scores.double().tolist(), classes.tolist(), 0.55, 0.001, 200)
    assert keep.tolist() == [i for i, _ in expected]
    torch.testing.assert_close(kept_scores, torch.tensor([s for _, s in expected]), rtol=1e-5, atol=1e-6)


def test_duplicate_is_decayed_by_gaussian_of_iou():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 5.0], [0.0, 0.0, 10.0, 10.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    keep, kept_scores = batched_soft_nms(boxes, scores, torch.tensor([0, 0, 1]), sigma=0.5, score_thresh=0.0)
    # Box 2 is another class: untouched. Box 1 has IoU 0.5 with box 0.
    assert keep.tolist() == [0, 2, 1]
    torch.testing.assert_close(kept_scores, torch.tensor([0.9, 0.7, 0.8 * math.exp(-0.25 / 0.5)]))


def test_scores_decayed_below_threshold_are_dropped():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    scores = torch.tensor([0.9, 0.5])
    decayed = 0.5 * math.exp(-1 / 0.55)  # ~0.081
    keep, _ = batched_soft_nms(boxes, scores, torch.tensor([0, 0]), sigma=0.55, score_thresh=0.09)
    assert keep.tolist() == [0]
    keep, kept_scores = batched_soft_nms(boxes, scores, torch.tensor([0, 0]), sigma=0.55, score_thresh=0.08)
    assert keep.tolist() == [0, 1]
    assert kept_scores[1].item() == pytest.approx(decayed, rel=1e-6)


def test_top_n_over_all_classes():
    # 300 disjoint boxes over 3 classes: nothing decays, the 200 best scores survive.
    x = torch.arange(300, dtype=torch.float32) * 20
    boxes = torch.stack([x, torch.zeros(300), x + 10, torch.full((300,), 10.0)], dim=1)
    scores = torch.rand(300, generator=torch.Generator().manual_seed(0))
    keep, kept_scores = batched_soft_nms(boxes, scores, torch.arange(300) % 3, max_keep=200)
    assert keep.tolist() == torch.argsort(scores, descending=True)[:200].tolist()
    assert torch.equal(kept_scores, scores[keep])


def test_empty_and_all_below_threshold():
    for boxes, scores in [(torch.zeros((0, 4)), torch.zeros(0)), (torch.tensor([[0.0, 0, 5, 5]]), torch.tensor([0.0005]))]:
        keep, kept_scores = batched_soft_nms(boxes, scores, torch.zeros(len(scores), dtype=torch.long))
        assert keep.shape == (0,) and keep.dtype == torch.long
        assert kept_scores.shape == (0,)


def test_degenerate_boxes_do_not_produce_nan():
    boxes = torch.tensor([[5.0, 5.0, 5.0, 5.0], [5.0, 5.0, 5.0, 5.0], [0.0, 0.0, 10.0, 10.0]])
    keep, kept_scores = batched_soft_nms(boxes, torch.tensor([0.9, 0.8, 0.7]), torch.zeros(3, dtype=torch.long), sigma=1e-4, score_thresh=0.0)
    assert keep.tolist() == [0, 1, 2]
    assert torch.isfinite(kept_scores).all()


@pytest.mark.parametrize(
    "kwargs", [{"sigma": 0.0}, {"score_thresh": -0.1}, {"max_keep": 0}]
)
def test_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        batched_soft_nms(torch.zeros((1, 4)), torch.ones(1), torch.zeros(1, dtype=torch.long), **kwargs)


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="boxes \\(M, 4\\)"):
        batched_soft_nms(torch.zeros((2, 4)), torch.ones(3), torch.zeros(3, dtype=torch.long))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    boxes, scores, classes = random_detections(3, 3000, 80, dtype=torch.float32, canvas=1000.0, max_side=200.0)
    keep, kept_scores = batched_soft_nms(boxes, scores, classes)
    keep_gpu, kept_scores_gpu = batched_soft_nms(boxes.cuda(), scores.cuda(), classes.cuda())
    assert keep_gpu.cpu().tolist() == keep.tolist()
    torch.testing.assert_close(kept_scores_gpu.cpu(), kept_scores)
