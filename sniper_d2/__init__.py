"""SNIPER efficient multi-scale training as a Detectron2 extension.

Importing this package registers every SNIPER component in Detectron2's registries.
"""
from .config import add_sniper_config

__all__ = ["add_sniper_config"]
__version__ = "0.1.0"
