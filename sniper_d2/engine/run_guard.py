"""Re-running a training command: resume checkpoints of the same run, never overwrite another's.

Before training, the run's record (its config without ``OUTPUT_DIR``, and the digests of its
``DATASETS.TRAIN``, see :mod:`.run_stamp`) is compared with ``OUTPUT_DIR/run_stamp.json``, the
record of the run that wrote the checkpoint named by ``OUTPUT_DIR/last_checkpoint``:

* no checkpoint: train from the start (``MODEL.WEIGHTS``) and write the stamp;
* a checkpoint of the same record: resume from it, with or without ``--resume``;
* a checkpoint of another (or unrecorded) run: with ``--resume`` continue from it and stamp the
  new record; without, stop with :class:`ConfigChangedError` (training would overwrite it).

Detectron2's own ``OUTPUT_DIR/config.yaml`` cannot serve: ``default_setup`` rewrites it with the
new config before ``main`` gets to look.
"""
import logging
import os
from typing import Dict, Optional

from .run_stamp import config_record, decided_on_main_process, make_record, read_stamp, record_difference, write_stamp

__all__ = [
    "RUN_STAMP",
    "ConfigChangedError",
    "last_checkpoint",
    "resume_or_refuse",
    "resume_or_restart",
    "training_run_record",
]

logger = logging.getLogger(__name__)

RUN_STAMP = "run_stamp.json"


class ConfigChangedError(RuntimeError):
    """OUTPUT_DIR holds checkpoints of a run with another config; training would overwrite them."""


def training_run_record(cfg) -> Dict:
    """The record of a training run: every config key but ``OUTPUT_DIR``, and its training data."""
    return make_record(config_record(cfg, ignore=("OUTPUT_DIR",)), cfg.DATASETS.TRAIN)


def last_checkpoint(output_dir: str) -> Optional[str]:
    """The checkpoint file named by ``output_dir/last_checkpoint`` (Detectron2's tag), or None."""
    try:
        with open(os.path.join(output_dir, "last_checkpoint")) as f:
            name = f.read().strip()
    except OSError:
        return None
    return name or None


def resume_or_refuse(cfg, resume_requested: bool) -> bool:
    """Whether training in ``cfg.OUTPUT_DIR`` resumes (see the module docstring); records the run.

    Call on every process before building the trainer; the main process decides and writes.
    Raises :class:`ConfigChangedError` (on every process) instead of overwriting another run.
    """
    return decided_on_main_process(
        lambda: _decide(cfg.OUTPUT_DIR, training_run_record(cfg), resume_requested, restart_on_change=False)
    )


def resume_or_restart(output_dir: str, record: Dict) -> bool:
    """For a stage whose outputs are derived and can be redone (mining stage 1): resume the
    checkpoints in ``output_dir`` if they come from ``record``, else untag them (remove
    ``last_checkpoint``) so that the stage starts afresh; records ``record`` either way."""
    return decided_on_main_process(lambda: _decide(output_dir, record, False, restart_on_change=True))


def _decide(output_dir: str, record: Dict, resume_requested: bool, restart_on_change: bool) -> bool:
    stamp_file = os.path.join(output_dir, RUN_STAMP)
    checkpoint = last_checkpoint(output_dir)
    if checkpoint is None:
        write_stamp(stamp_file, record)
        return False
    stamp = read_stamp(stamp_file)
    difference = (
        f"no record of the run that wrote it ({RUN_STAMP} missing or unreadable)" if stamp is None
        else record_difference(stamp, record)
    )
    if difference is None:
        logger.info(f"{output_dir} holds {checkpoint} of a run with the same config and data: resuming from it.")
        return True
    if resume_requested:
        logger.warning(
            f"--resume: continuing from {checkpoint} in {output_dir} although it comes from another run "
            f"({difference}); {RUN_STAMP} now records this run's config."
        )
        write_stamp(stamp_file, record)
        return True
    if restart_on_change:
        logger.info(f"{output_dir}: {checkpoint} comes from another run ({difference}); starting this stage afresh.")
        os.remove(os.path.join(output_dir, "last_checkpoint"))
        write_stamp(stamp_file, record)
        return False
    raise ConfigChangedError(
        f"OUTPUT_DIR {output_dir} holds the checkpoint {checkpoint} of another run ({difference}); training "
        f"now would overwrite it. To continue from that checkpoint with this config, add --resume; to start "
        f"a new run, set OUTPUT_DIR to a new directory (e.g. OUTPUT_DIR {output_dir.rstrip(os.sep)}_2)."
    )
