"""Epoch-aware distributed chip sampling: disjoint ranks, shared plan, per-epoch regeneration."""
import itertools
import os
import pickle
import socket

import numpy as np
import torch.distributed as dist
import torch.multiprocessing as mp

from sniper_d2.data.build import build_chip_planner
from sniper_d2.data.chip_plan import decode_chip_key
from sniper_d2.data.chip_sampler import ChipSampler

from sniper_test_data import small_sniper_cfg


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank, world_size, port, records, out_dir):
    from sniper_test_data import register_dataset

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        register_dataset("sniper_test_tiny", records)
        planner = build_chip_planner(small_sniper_cfg())
        sampler = ChipSampler(planner)  # rank and world size from torch.distributed
        plan = planner.plan(0)
        n = len(plan)
        keys = list(itertools.islice(iter(sampler), len(range(rank, n, world_size)) + 3))
        fingerprint = (plan.image_index.tolist(), plan.origin.tolist(), plan.scale_index.tolist())
        with open(os.path.join(out_dir, f"rank{rank}.pkl"), "wb") as f:
            pickle.dump({"keys": keys, "n": n, "fingerprint": fingerprint}, f)
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_get_disjoint_chips_covering_the_epoch(tiny_dataset, tmp_path):
    from detectron2.data import DatasetCatalog

    records = DatasetCatalog.get(tiny_dataset)
    mp.spawn(_rank_main, args=(2, _free_port(), records, str(tmp_path)), nprocs=2, join=True)
    results = [pickle.load(open(tmp_path / f"rank{r}.pkl", "rb")) for r in range(2)]
    assert results[0]["fingerprint"] == results[1]["fingerprint"], "ranks disagree on the epoch's chip list"
    n = results[0]["n"]
    epoch0 = [{decode_chip_key(k)[1] for k in r["keys"] if decode_chip_key(k)[0] == 0} for r in results]
    assert not epoch0[0] & epoch0[1]
    assert epoch0[0] | epoch0[1] == set(range(n))
    # after its share of epoch 0, each rank continues with epoch 1
    assert all(decode_chip_key(r["keys"][-1])[0] == 1 for r in results)


def test_chips_are_regenerated_every_epoch_and_reproducible(tiny_dataset):
    cfg = small_sniper_cfg()
    planner = build_chip_planner(cfg)
    e0, e1 = planner.plan(0), planner.plan(1)
    same_seed = build_chip_planner(cfg).plan(1)
    assert np.array_equal(e1.origin, same_seed.origin) and np.array_equal(e1.image_index, same_seed.image_index)
    assert not (np.array_equal(e0.image_index, e1.image_index) and np.array_equal(e0.origin, e1.origin))


def test_random_stride_range_draws_a_stride_per_epoch(tiny_dataset):
    cfg = small_sniper_cfg()
    cfg.SNIPER.TRAIN.CHIP_STRIDE_RANGE = (4, 12)
    planner = build_chip_planner(cfg)
    strides = {planner.plan(e).stride for e in range(6)}
    assert strides <= set(range(4, 13)) and len(strides) > 1


def test_sampler_start_skips_this_ranks_chips_across_epochs(tiny_dataset):
    planner = build_chip_planner(small_sniper_cfg())
    full = list(itertools.islice(iter(ChipSampler(planner, rank=1, world_size=2)), 60))
    resumed = list(itertools.islice(iter(ChipSampler(planner, rank=1, world_size=2, start=37)), 23))
    assert resumed == full[37:]
