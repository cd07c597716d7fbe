"""benchmarks/bench_autofocus.py's report: FocusChip recall of the boxes only finer scales can find, the goal verdict."""
import math

import numpy as np
import pytest

from benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_autofocus.py", "bench_autofocus")


def box(x, y, size):
    return {"bbox": [x, y, size, size], "iscrowd": 0}


def test_recall_counts_the_boxes_below_every_coarser_range_inside_the_scales_chips(bench):
    test = {
        "scales": ["2.0", "1.0", "longest:160"],
        "ranges": [(0.0, 40.0), (20.0, 120.0), (64.0, math.inf)],
        "chips": {
            # scale 0 (finest) ran on one chip, scale 1 on two, the coarsest on the whole image
            7: [np.array([[0, 0, 50, 50]]), np.array([[0, 0, 100, 100], [200, 200, 300, 300]]),
                np.array([[0, 0, 400, 300]])],
        },
    }
    dataset = [{"image_id": 7, "annotations": [
        box(10, 10, 15),    # < 20: only scale 0 finds it; inside its chip
        box(60, 60, 12),    # < 20: outside scale 0's chip
        box(210, 210, 50),  # in (20, 64]: scale 1's to find; inside its second chip
        box(90, 90, 30),    # in (20, 64]: crosses scale 1's first chip edge
        box(10, 200, 100),  # > 64: the coarsest scale's, counted nowhere
        {"bbox": [5, 5, 10, 10], "iscrowd": 1},  # crowd: never counted
    ]}]
    recall = bench._chip_recall(test, dataset, pruned=[0, 1])
    assert recall["scale 2.0"] == (2, 0.5)
    assert recall["scale 1.0"] == (2, 0.5)
    # COCO-small (< 32 px) boxes inside the finest scale's chips: only the first of 15, 12, 30
    assert recall["COCO-small at the finest scale"] == (3, pytest.approx(1 / 3))


def test_verdict_checks_every_part_of_the_goal(bench):
    pyramid = {"metrics": {"AP": 10.0, "APs": 8.0}, "px_per_image": 1000.0, "cpu_per_image": 2.0}
    good = {"label": "af", "metrics": {"AP": 9.6, "APs": 7.2}, "px_per_image": 450.0, "cpu_per_image": 0.9,
            "recall": {"scale 2.0": (0, math.nan)}}
    (line, recall_line) = bench.verdict([good], pyramid)
    assert "AP -0.4, APs -0.8" in line and "x0.45 its pixels and x0.45 its CPU time: goal met" in line
    assert "no test box lies in its range" in recall_line
    for change in ({"metrics": {"AP": 9.4, "APs": 7.2}}, {"metrics": {"AP": 9.6, "APs": 6.9}},
                   {"px_per_image": 510.0}, {"cpu_per_image": 1.1}):
        assert "goal NOT met" in bench.verdict([{**good, **change, "recall": {}}], pyramid)[0]


def test_the_setting_chosen_on_the_tuning_set_meets_the_goal_at_the_least_time(bench):
    pyramid = {"metrics": {"AP": 10.0, "APs": 8.0}, "px_per_image": 1000.0, "cpu_per_image": 2.0}

    def row(ap, aps, px, cpu):
        return {"metrics": {"AP": ap, "APs": aps}, "px_per_image": px, "cpu_per_image": cpu}

    rows = [row(9.0, 8.0, 300.0, 0.6),   # cheapest, AP 1.0 below: not met
            row(9.8, 7.5, 450.0, 0.95),  # met
            row(10.2, 8.1, 480.0, 0.9),  # met, least time among those met
            row(10.5, 8.5, 700.0, 1.2)]  # px and time above half: not met
    assert bench.choose(rows, pyramid) == 2
    assert bench.choose([rows[0], rows[3]], pyramid) is None


def test_each_dataset_run_counts_only_its_own_images_and_pixels(bench, tmp_path):
    """The same wrappers test the tuning and the held-out dataset: each run's px and CPU s per image
    are of its own images."""
    import cv2
    import torch
    from detectron2.data import MetadataCatalog
    from detectron2.data.datasets.coco import convert_to_coco_json
    from detectron2.structures import Boxes, BoxMode, Instances
    from sniper_test_data import register_dataset, small_sniper_cfg
    from torch import nn

    from sniper_d2.inference import SniperMultiScaleInference

    class SquareFinder(nn.Module):
        """Finds the bright square of each image (score 0.9, class 0), in original px."""

        backbone = None
        proposal_generator = True
        device = torch.device("cpu")

        def inference(self, batched_inputs, do_postprocess=True):
            outputs = []
            for x in batched_inputs:
                ys, xs = torch.nonzero(x["image"][0] > 128, as_tuple=True)
                sy, sx = x["height"] / x["image"].shape[1], x["width"] / x["image"].shape[2]
                box = [[xs.min() * sx, ys.min() * sy, (xs.max() + 1) * sx, (ys.max() + 1) * sy]]
                outputs.append({"instances": Instances((x["height"], x["width"]), pred_boxes=Boxes(torch.tensor(box)),
                                                       scores=torch.tensor([0.9]), pred_classes=torch.tensor([0]))})
            return outputs

    def dataset(name, sizes):
        records = []
        for i, (w, h) in enumerate(sizes):
            image = np.zeros((h, w, 3), np.uint8)
            image[10:30, 10:30] = 255
            cv2.imwrite(str(tmp_path / f"{name}{i}.png"), image)
            records.append({"file_name": str(tmp_path / f"{name}{i}.png"), "image_id": i, "width": w, "height": h,
                            "annotations": [{"bbox": [10, 10, 20, 20], "bbox_mode": BoxMode.XYWH_ABS,
                                             "category_id": 0, "iscrowd": 0}]})
        register_dataset(name, records)
        convert_to_coco_json(name, str(tmp_path / f"{name}.json"))
        MetadataCatalog.get(name).set(json_file=str(tmp_path / f"{name}.json"))
        return name

    cfg = small_sniper_cfg()
    cfg.SNIPER.TEST.SCALES, cfg.SNIPER.TEST.VALID_RANGES = (2.0, 1.0), ((-1, 40), (30, -1))
    cfg.SNIPER.TEST.RAW_SCALE_DETECTIONS = False
    tests = [("(b) full SNIPER pyramid", cfg, SniperMultiScaleInference(cfg, SquareFinder()))]
    tune = bench._run_tests(tests, dataset("bench_af_tune", [(64, 48), (80, 64), (96, 96)]))
    held_out = bench._run_tests(tests, dataset("bench_af_test", [(40, 40)]))
    assert tune[0]["px_per_image"] == (5 * 64 * 48 + 5 * 80 * 64 + 5 * 96 * 96) / 3
    assert held_out[0]["px_per_image"] == held_out[0]["full_px_per_image"] == 5 * 40 * 40
    assert held_out[0]["metrics"]["AP"] > 99
