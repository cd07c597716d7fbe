"""Two CPU processes (gloo) through train_net.py's launch path: disjoint chips, one checkpoint."""
import json
import os
import sys

from detectron2.engine import launch

from distributed_training import REPO, record_chips_and_train
from sniper_test_data import tiny_records

sys.path.insert(0, REPO)
import train_net  # noqa: E402

NAME = "sniper_test_distributed"


def test_two_processes_train_on_disjoint_chips_and_write_one_checkpoint(tmp_path):
    records = tiny_records(tmp_path, num_images=10, seed=0)
    out = tmp_path / "out"
    args = train_net.argument_parser().parse_args([
        "--config-file", os.path.join(REPO, "configs", "demo", "sniper_shapes_R18_FPN.yaml"),
        "--num-gpus", "2", "--dist-url", "auto",
        "DATASETS.TRAIN", f"('{NAME}',)", "DATASETS.TEST", "()", "OUTPUT_DIR", str(out),
        "SNIPER.CHIP_SIZE", "64", "SNIPER.TRAIN.SCALES", "(2.0, 1.0, 'longest:64')",
        "SNIPER.TRAIN.VALID_RANGES", "((-1, 16), (8, 40), (32, -1))", "SNIPER.TRAIN.CHIP_STRIDE", "8",
        "SNIPER.TRAIN.MIN_BOX_SIZE", "2", "SOLVER.IMS_PER_BATCH", "4", "SOLVER.MAX_ITER", "3",
        "SOLVER.WARMUP_ITERS", "1", "SOLVER.STEPS", "()", "DATALOADER.NUM_WORKERS", "0",
    ])
    launch(record_chips_and_train, 2, dist_url=args.dist_url, args=(args, NAME, records, str(tmp_path)))

    per_rank = []
    for rank in (0, 1):
        batches = [json.loads(line) for line in (tmp_path / f"rank{rank}.jsonl").read_text().splitlines()]
        assert len(batches) >= 3 and all(len(b) == 2 for b in batches)  # 4 chips per step over 2 ranks
        per_rank.append({json.dumps(chip) for batch in batches[:3] for chip in batch})
    assert len(per_rank[0]) == len(per_rank[1]) == 6
    assert not per_rank[0] & per_rank[1]
    assert sorted(p.name for p in out.glob("*.pth")) == ["model_final.pth"]
    assert (out / "last_checkpoint").read_text().strip() == "model_final.pth"
