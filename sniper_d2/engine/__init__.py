"""Training/evaluation loop pieces: the SNIPER trainer, and what makes re-running a command safe
(atomic checkpoint writes, stamps of what produced an output, the resume-or-refuse guard of
``train_net.py``, per-iteration seeds)."""
from .trainer import SniperTrainer

__all__ = ["SniperTrainer"]
