"""Files that are either complete or absent: written under a temporary name, renamed when done.

A process killed while writing leaves at most ``<path>.tmp`` behind (ignored, overwritten by the
next write of ``path``), never a torn ``path`` that a re-run would take for a finished output.
"""
import os

__all__ = ["TMP_SUFFIX", "AtomicFile", "atomic_write", "make_checkpoint_writes_atomic"]

TMP_SUFFIX = ".tmp"


class AtomicFile:
    """``with AtomicFile(path, "wb") as f:`` writes ``f`` to ``path + TMP_SUFFIX`` in the same
    directory; a clean exit flushes it to disk and renames it to ``path`` (``os.replace``, atomic
    on POSIX), an exception removes it and leaves ``path`` as it was."""

    def __init__(self, path, mode: str = "wb"):
        if "w" not in mode or "+" in mode:
            raise ValueError(f"AtomicFile writes whole files: mode 'w' or 'wb', not {mode!r} (file {path})")
        self.path = os.fspath(path)
        self.tmp_path = self.path + TMP_SUFFIX
        self._file = open(self.tmp_path, mode)

    def __enter__(self):
        return self._file

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self.tmp_path, self.path)
        else:
            self._file.close()
            try:
                os.remove(self.tmp_path)
            except FileNotFoundError:
                pass
        return False


def atomic_write(path, mode: str = "wb") -> AtomicFile:
    """Open ``path`` for an all-or-nothing write (creating its directory); use with ``with``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return AtomicFile(path, mode)


class _AtomicWritePathManager:
    """A Detectron2/iopath PathManager whose whole-file writes to local paths are atomic; every
    other call (reads, URLs, appends) goes to the wrapped one."""

    def __init__(self, path_manager):
        self._path_manager = path_manager

    def open(self, path, mode: str = "r", **kwargs):
        if mode in ("w", "wb") and "://" not in str(path):
            return atomic_write(path, mode)
        return self._path_manager.open(path, mode, **kwargs)

    def __getattr__(self, name):
        if name == "_path_manager":  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self._path_manager, name)


def make_checkpoint_writes_atomic(checkpointer) -> None:
    """Make a Detectron2 ``Checkpointer``'s ``save`` (``model_XXXX.pth``) and its
    ``last_checkpoint`` tag all-or-nothing, through its public ``path_manager`` attribute: a kill
    during a save leaves the previous checkpoint and tag in place."""
    if not isinstance(checkpointer.path_manager, _AtomicWritePathManager):
        checkpointer.path_manager = _AtomicWritePathManager(checkpointer.path_manager)
