"""Re-running training in an OUTPUT_DIR: same run resumes, another run is refused unless --resume."""
import json
from pathlib import Path

import pytest
from detectron2.structures import BoxMode

from sniper_d2.engine.run_guard import ConfigChangedError, resume_or_refuse, resume_or_restart
from sniper_d2.engine.run_stamp import config_record, make_record
from sniper_test_data import register_dataset, small_sniper_cfg

NAME = "sniper_test_run_guard"


def _records(box_x=10.0):
    """Dataset dicts only (no image is read by the guard)."""
    return [{"file_name": f"img{i}.png", "image_id": i, "width": 100, "height": 80,
             "annotations": [{"bbox": [box_x, 5.0, 20.0, 30.0], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 1}]}
            for i in range(3)]


@pytest.fixture
def cfg(tmp_path):
    register_dataset(NAME, _records())
    c = small_sniper_cfg(train=(NAME,))
    c.OUTPUT_DIR = str(tmp_path / "out")
    c.SOLVER.BASE_LR = 0.05
    c.freeze()
    return c


def _changed(cfg, **keys):
    c = cfg.clone()
    c.defrost()
    c.merge_from_list([x for kv in keys.items() for x in kv])
    c.freeze()
    return c


def _leave_checkpoint(cfg, name="model_0000009.pth"):
    """What a training run leaves when killed after its checkpoint at iteration 9."""
    out = Path(cfg.OUTPUT_DIR)
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(b"checkpoint")
    (out / "last_checkpoint").write_text(name)


def _stamp(cfg):
    with open(f"{cfg.OUTPUT_DIR}/run_stamp.json") as f:
        return json.load(f)


def test_without_a_checkpoint_training_starts_afresh_and_records_the_run(cfg):
    assert resume_or_refuse(cfg, resume_requested=False) is False
    stamp = _stamp(cfg)
    assert stamp["config"]["SOLVER.BASE_LR"] == 0.05 and "OUTPUT_DIR" not in stamp["config"]
    assert [name for name, _ in stamp["datasets"]] == [NAME]


def test_the_same_config_and_data_resume_without_the_flag(cfg):
    resume_or_refuse(cfg, resume_requested=False)
    _leave_checkpoint(cfg)
    assert resume_or_refuse(cfg, resume_requested=False) is True
    assert resume_or_refuse(cfg, resume_requested=True) is True


def test_a_changed_config_is_refused_naming_the_key_resume_and_output_dir(cfg):
    resume_or_refuse(cfg, resume_requested=False)
    _leave_checkpoint(cfg)
    before = _stamp(cfg)
    with pytest.raises(ConfigChangedError) as error:
        resume_or_refuse(_changed(cfg, **{"SOLVER.BASE_LR": 0.02}), resume_requested=False)
    message = str(error.value)
    for part in ("SOLVER.BASE_LR 0.05 -> 0.02", "model_0000009.pth", "--resume", "OUTPUT_DIR", cfg.OUTPUT_DIR):
        assert part in message
    assert _stamp(cfg) == before


def test_changed_training_data_under_the_same_name_is_refused(cfg):
    resume_or_refuse(cfg, resume_requested=False)
    _leave_checkpoint(cfg)
    register_dataset(NAME, _records(box_x=11.0))
    with pytest.raises(ConfigChangedError, match=f"content of training dataset '{NAME}' changed"):
        resume_or_refuse(cfg, resume_requested=False)


def test_a_checkpoint_without_a_record_is_refused(cfg):
    _leave_checkpoint(cfg)
    with pytest.raises(ConfigChangedError, match="no record of the run"):
        resume_or_refuse(cfg, resume_requested=False)


def test_resume_continues_a_changed_run_and_records_its_config(cfg):
    resume_or_refuse(cfg, resume_requested=False)
    _leave_checkpoint(cfg)
    changed = _changed(cfg, **{"SOLVER.MAX_ITER": 90000})
    assert resume_or_refuse(changed, resume_requested=True) is True
    assert _stamp(cfg)["config"]["SOLVER.MAX_ITER"] == 90000
    assert resume_or_refuse(changed, resume_requested=False) is True  # now the same run


def test_a_derived_stage_forgets_checkpoints_of_another_run(cfg, tmp_path):
    stage_dir = str(tmp_path / "stage")
    record = make_record(config_record(cfg), cfg.DATASETS.TRAIN)
    assert resume_or_restart(stage_dir, record) is False
    stage_cfg = _changed(cfg, OUTPUT_DIR=stage_dir)
    _leave_checkpoint(stage_cfg)
    assert resume_or_restart(stage_dir, record) is True  # its own interrupted run
    other = make_record(config_record(_changed(cfg, **{"SOLVER.BASE_LR": 0.02})), cfg.DATASETS.TRAIN)
    assert resume_or_restart(stage_dir, other) is False
    assert not (tmp_path / "stage" / "last_checkpoint").exists()
