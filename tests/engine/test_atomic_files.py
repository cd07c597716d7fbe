"""Atomic writes: a write stopped midway never replaces the previous file, nor names itself last."""
import io

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer

from sniper_d2.engine.atomic_files import atomic_write, make_checkpoint_writes_atomic


def test_a_write_stopped_midway_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "proposals.pkl"
    with atomic_write(path) as f:
        f.write(b"complete")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write(b"half")
            raise RuntimeError("killed")
    assert path.read_bytes() == b"complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proposals.pkl"]


def test_a_torn_temporary_file_left_by_a_kill_is_overwritten(tmp_path):
    path = tmp_path / "sub" / "model_final.pth"
    path.parent.mkdir()
    (tmp_path / "sub" / "model_final.pth.tmp").write_bytes(b"torn by SIGKILL, much longer than the new content")
    with atomic_write(path) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["model_final.pth"]


def test_a_checkpoint_save_stopped_midway_keeps_the_last_complete_checkpoint(tmp_path, monkeypatch):
    model = torch.nn.Linear(3, 2)
    checkpointer = DetectionCheckpointer(model, save_dir=str(tmp_path))
    make_checkpoint_writes_atomic(checkpointer)
    checkpointer.save("model_0000001")
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)

    real_save = torch.save

    def half_save(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise RuntimeError("killed during torch.save")

    monkeypatch.setattr(torch, "save", half_save)
    with pytest.raises(RuntimeError, match="killed"):
        checkpointer.save("model_0000003")
    monkeypatch.undo()

    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000001.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    fresh = torch.nn.Linear(3, 2)
    DetectionCheckpointer(fresh, save_dir=str(tmp_path)).resume_or_load("", resume=True)
    assert all(torch.equal(fresh.state_dict()[k], saved[k]) for k in saved)
