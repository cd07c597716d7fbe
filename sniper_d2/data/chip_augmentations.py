"""Augmentations applied to training chips: the flip of ``INPUT.RANDOM_FLIP`` plus any Detectron2
augmentations listed in ``SNIPER.TRAIN.AUGMENTATIONS`` (after the chip has been cut and scaled)."""
import ast
from typing import List

from detectron2.data import transforms as T

__all__ = ["build_chip_augmentations", "parse_augmentation"]


def parse_augmentation(expression: str) -> T.Augmentation:
    """Build ``"RandomBrightness(0.8, 1.2)"``-style text into a ``detectron2.data.transforms`` object.

    Only a call of an Augmentation class of that module with literal arguments is accepted.
    """
    usage = (
        f"Cannot use augmentation {expression!r} from SNIPER.TRAIN.AUGMENTATIONS: write a call of a "
        "detectron2.data.transforms Augmentation with literal arguments, e.g. 'RandomBrightness(0.8, 1.2)'."
    )
    try:
        node = ast.parse(expression.strip(), mode="eval").body
    except SyntaxError as e:
        raise ValueError(usage) from e
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise ValueError(usage)
    cls = getattr(T, node.func.id, None)
    if not (isinstance(cls, type) and issubclass(cls, T.Augmentation)):
        raise ValueError(usage)
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    except ValueError as e:
        raise ValueError(usage) from e
    return cls(*args, **kwargs)


def build_chip_augmentations(cfg, is_train: bool) -> List[T.Augmentation]:
    """Flip (training only, per ``INPUT.RANDOM_FLIP``) followed by ``SNIPER.TRAIN.AUGMENTATIONS``.

    Photometric augmentations are the intended use; geometric ones transform the boxes too, but
    the chip's valid range (chip px) is not rescaled for them.
    """
    if not is_train:
        return []
    augs: List[T.Augmentation] = []
    if cfg.INPUT.RANDOM_FLIP != "none":
        augs.append(
            T.RandomFlip(
                horizontal=cfg.INPUT.RANDOM_FLIP == "horizontal",
                vertical=cfg.INPUT.RANDOM_FLIP == "vertical",
            )
        )
    augs.extend(parse_augmentation(e) for e in cfg.SNIPER.TRAIN.AUGMENTATIONS)
    return augs
