"""Fault injection: ``train_net.py --mine-negatives`` killed in mining stage 1, in stage 2 and in
the final training, re-run each time with the same command, ends with the same RPN, proposals,
final model and chip sequence as an uninterrupted run.

Runs are in-process (``train_net.main``; a subprocess would spend seconds importing torch). A
kill is simulated where it hurts most, in the middle of writing an output: the write stops after
half the bytes, OUTPUT_DIR is snapshotted as it is at that moment (what SIGKILL would leave on
disk: the half-written temporary file included), the run is aborted, and the snapshot is put back
in place before the re-run.
"""
import io
import json
import logging
import os
import pickle
import shutil
import sys
import types

import numpy as np
import pytest
import torch
from detectron2.utils.events import get_event_storage

import sniper_d2.mining.proposal_extraction as proposal_extraction
from distributed_training import REPO
from sniper_d2 import SniperTrainer
from sniper_d2.engine.run_guard import ConfigChangedError
from sniper_test_data import register_dataset, tiny_records

sys.path.insert(0, REPO)
import train_net  # noqa: E402

NAME = "sniper_test_rerun"


class SimulatedKill(BaseException):
    """Stands for SIGKILL: not an Exception, so that no handler of the code under test catches it."""


def _args(out, *extra):
    return train_net.argument_parser().parse_args([
        "--config-file", os.path.join(REPO, "configs", "demo", "sniper_shapes_R18_FPN.yaml"), "--mine-negatives",
        "DATASETS.TRAIN", f"('{NAME}',)", "DATASETS.TEST", "()", "OUTPUT_DIR", str(out), "SEED", "5",
        "SNIPER.CHIP_SIZE", "64", "SNIPER.TRAIN.SCALES", "(2.0, 1.0, 'longest:64')",
        "SNIPER.TRAIN.VALID_RANGES", "((-1, 16), (8, 40), (32, -1))", "SNIPER.TRAIN.CHIP_STRIDE", "8",
        "SNIPER.TRAIN.MIN_BOX_SIZE", "2", "SNIPER.TEST.SCALES", "(1.0, 'longest:64')",
        "SNIPER.TEST.VALID_RANGES", "((-1, 40), (32, -1))",
        "SNIPER.NEG.MIN_PROPOSALS", "(3, 2, 2)", "SNIPER.MINING.RPN_EPOCHS", "0.3",
        "SNIPER.MINING.PROPOSALS_PER_SCALE", "50", "SOLVER.IMS_PER_BATCH", "4", "SOLVER.MAX_ITER", "3",
        "SOLVER.CHECKPOINT_PERIOD", "2", "SOLVER.WARMUP_ITERS", "1", "SOLVER.STEPS", "()",
        "DATALOADER.NUM_WORKERS", "0", *extra,
    ])


class Runs:
    """Runs ``train_net.main`` and records, per (stage, iteration), the chips of its batch."""

    def __init__(self, monkeypatch):
        self.chips = {}
        self.monkeypatch = monkeypatch
        build = SniperTrainer.build_train_loader.__func__
        runs = self

        def recording_loader(cls, cfg):
            stage = "rpn" if cfg.MODEL.META_ARCHITECTURE == "ProposalNetwork" else "detector"
            return runs._record(build(cls, cfg), stage)

        monkeypatch.setattr(SniperTrainer, "build_train_loader", classmethod(recording_loader))

    def _record(self, loader, stage):
        for batch in loader:
            key = (stage, get_event_storage().iter)
            self.chips[key] = [[d["image_id"], d["sniper_chip"].scale_index, list(d["sniper_chip"].origin)]
                               for d in batch]
            yield batch

    def run(self, out, *extra):
        return train_net.main(_args(out, *extra))

    def killed(self, out, patch):
        """Run with ``patch`` (a function of the kill callback) applied; expect the simulated kill
        and put OUTPUT_DIR back as the kill left it."""
        snapshot = f"{out}_at_kill"

        def kill(file):
            file.flush()
            # hard links: checkpoints, stamps and proposal files are replaced (new inodes), never
            # rewritten in place, so the links keep what the kill left (logs may get a few more
            # lines); copying the 100 MB checkpoints would take seconds
            shutil.copytree(out, snapshot, copy_function=os.link)
            raise SimulatedKill

        with self.monkeypatch.context() as m:
            patch(m, kill)
            with pytest.raises(SimulatedKill):
                self.run(out)
        shutil.rmtree(out)
        os.rename(snapshot, out)


def _half_torch_save(target):
    """torch.save that, for the file ``target`` (or one whose path ends so), writes half and is killed."""
    real_save = torch.save

    def patch(m, kill):
        def save(obj, f, *args, **kwargs):
            if not getattr(f, "name", "").endswith(target):
                return real_save(obj, f, *args, **kwargs)
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            kill(f)

        m.setattr(torch, "save", save)

    return patch


def _half_pickle_dump(m, kill):
    def dump(obj, f, protocol=None):
        data = pickle.dumps(obj, protocol=protocol)
        f.write(data[: len(data) // 2])
        kill(f)

    m.setattr(proposal_extraction, "pickle", types.SimpleNamespace(HIGHEST_PROTOCOL=pickle.HIGHEST_PROTOCOL, dump=dump))


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return register_dataset(NAME, tiny_records(tmp_path_factory.mktemp("rerun_images"), num_images=6, seed=3))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, dataset, one_thread):
    with pytest.MonkeyPatch.context() as m:
        runs = Runs(m)
        out = tmp_path_factory.mktemp("rerun") / "uninterrupted"
        runs.run(out)
    return out, runs.chips


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def _assert_same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def _assert_same_proposals(a, b):
    with open(a, "rb") as f:
        pa = pickle.load(f)
    with open(b, "rb") as f:
        pb = pickle.load(f)
    assert pa["ids"] == pb["ids"]
    for key in ("boxes", "objectness_logits"):
        assert all(np.array_equal(x, y) for x, y in zip(pa[key], pb[key]))


def test_killed_in_each_stage_and_rerun_ends_as_the_uninterrupted_run(tmp_path, monkeypatch, uninterrupted, one_thread):
    reference, reference_chips = uninterrupted
    out = tmp_path / "killed"
    mining = out / "negative_mining"
    rpn = mining / "rpn"
    runs = Runs(monkeypatch)
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger("sniper_d2").addHandler(handler)
    try:
        # 1. killed while stage 1 writes its final RPN: only a torn temporary file is left
        runs.killed(out, _half_torch_save("negative_mining/rpn/model_final.pth.tmp"))
        assert (rpn / "model_final.pth.tmp").is_file() and not (rpn / "model_final.pth").exists()
        assert not (rpn / "model_final.pth.stamp.json").exists()

        # 2. re-run: stage 1 runs again, then the run is killed while stage 2 writes the proposals
        runs.killed(out, _half_pickle_dump)
        assert any("stage 1 runs" in m and "does not exist" in m for m in messages)
        assert (rpn / "model_final.pth.stamp.json").is_file()
        assert (mining / f"proposals_{NAME}.pkl.tmp").is_file() and not (mining / f"proposals_{NAME}.pkl").exists()

        # 3. re-run: stage 1 skipped, stage 2 redone, then killed while training saves its final
        #    model (iteration 2; the checkpoint of iteration 1 is complete)
        messages.clear()
        runs.killed(out, _half_torch_save(str(out / "model_final.pth.tmp")))
        assert any("stage 1" in m and "skipped" in m for m in messages)
        assert any("stage 2 runs" in m for m in messages)
        assert (out / "last_checkpoint").read_text() == "model_0000001.pth"
        assert (out / "model_final.pth.tmp").is_file() and not (out / "model_final.pth").exists()

        # 4. re-run without --resume: resumes at iteration 2 from model_0000001 and finishes
        before_kill = dict(runs.chips)
        runs.chips.clear()
        runs.run(out)
    finally:
        logging.getLogger("sniper_d2").removeHandler(handler)
    assert sorted(runs.chips) == [("detector", 2)]  # nothing mined again
    assert (out / "last_checkpoint").read_text() == "model_final.pth"

    _assert_same_weights(rpn / "model_final.pth", reference / "negative_mining" / "rpn" / "model_final.pth")
    _assert_same_proposals(mining / f"proposals_{NAME}.pkl", reference / "negative_mining" / f"proposals_{NAME}.pkl")
    _assert_same_weights(out / "model_final.pth", reference / "model_final.pth")
    # the chips each iteration trained on, stage 1 included (last run of each iteration wins)
    assert {**before_kill, **runs.chips} == reference_chips


def test_changed_config_is_refused_without_resume(uninterrupted):
    out, _ = uninterrupted
    before = {p.name: p.stat().st_mtime_ns for p in [*out.glob("*.pth"), out / "config.yaml"]}
    with pytest.raises(ConfigChangedError, match=r"SOLVER.BASE_LR 0.05 -> 0.02.*--resume.*OUTPUT_DIR") as error:
        train_net.main(_args(out, "SOLVER.BASE_LR", "0.02"))
    assert "model_final.pth" in str(error.value)
    assert {p.name: p.stat().st_mtime_ns for p in [*out.glob("*.pth"), out / "config.yaml"]} == before
    stamp = json.loads((out / "run_stamp.json").read_text())
    assert stamp["config"]["SOLVER.BASE_LR"] == 0.05  # the refused run is not recorded
