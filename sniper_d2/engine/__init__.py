"""Training/evaluation loop pieces: the SNIPER trainer."""
from .trainer import SniperTrainer

__all__ = ["SniperTrainer"]
