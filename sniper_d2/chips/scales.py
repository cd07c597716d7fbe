"""Scale specifications: how an image is resized for one level of the SNIPER pyramid.

Pure Python/numpy. A scale factor is *chip px per original px*. Lists may be of any list-like
type (list, tuple, omegaconf's ``ListConfig`` from a LazyConfig), never a string.
"""
import math
from collections.abc import Iterable, Mapping, Sized
from dataclasses import dataclass
from typing import Sequence, Tuple, Union

__all__ = ["ScaleSpec", "is_list_like", "parse_scale", "parse_scales", "scaled_size"]

ScaleLike = Union[float, int, str, Sequence[float]]


@dataclass(frozen=True)
class ScaleSpec:
    """One pyramid level.

    kind:
        ``"factor"``: ``values = (s,)``, the factor itself.
        ``"longest"``: ``values = (L,)``, the longest image side becomes L px.
        ``"resolution"``: ``values = (short, max_long)``, Detectron2-style: the short side
        becomes ``short`` px unless that makes the long side exceed ``max_long`` px.
    """

    kind: str
    values: Tuple[float, ...]

    def factor(self, width: float, height: float) -> float:
        """Scale factor (chip px per original px) for an image of ``width`` x ``height`` px."""
        if self.kind == "factor":
            return self.values[0]
        if self.kind == "longest":
            return self.values[0] / max(width, height)
        short, max_long = self.values
        return min(short / min(width, height), max_long / max(width, height))

    def __str__(self):
        if self.kind == "factor":
            return f"{self.values[0]:g}"
        if self.kind == "longest":
            return f"longest:{self.values[0]:g}"
        return f"[{self.values[0]:g}, {self.values[1]:g}]"


def is_list_like(value) -> bool:
    """A list-like config value: list, tuple, omegaconf ``ListConfig``, numpy array... (sized and
    iterable, not a string or a mapping)."""
    return isinstance(value, Iterable) and isinstance(value, Sized) and not isinstance(value, (str, bytes, Mapping))


def _positive(value, spec) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not math.isfinite(v) or v <= 0:
        raise ValueError(
            f"Invalid scale {spec!r}: {value!r} is not a positive number. A scale is a factor "
            "(e.g. 3.0), 'longest:<px>' (e.g. 'longest:512') or [short, max_long] (e.g. [800, 1333])."
        )
    return v


def parse_scale(spec: ScaleLike) -> ScaleSpec:
    """Parse one scale written as a factor, ``"longest:<px>"`` or ``[short, max_long]``."""
    if isinstance(spec, ScaleSpec):
        return spec
    if isinstance(spec, bool):
        raise ValueError(f"Invalid scale {spec!r}: expected a number, 'longest:<px>' or a pair.")
    if isinstance(spec, (int, float)):
        return ScaleSpec("factor", (_positive(spec, spec),))
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text.startswith("longest:"):
            return ScaleSpec("longest", (_positive(text.split(":", 1)[1], spec),))
        return ScaleSpec("factor", (_positive(text, spec),))
    if is_list_like(spec) and len(spec) == 2:
        short, max_long = (_positive(v, spec) for v in spec)
        return ScaleSpec("resolution", (short, max_long))
    raise ValueError(
        f"Invalid scale {spec!r}: a scale is a factor (e.g. 3.0), 'longest:<px>' "
        "(e.g. 'longest:512') or [short, max_long] (e.g. [800, 1333])."
    )


def parse_scales(specs: Sequence[ScaleLike]) -> Tuple[ScaleSpec, ...]:
    """Parse a list of scales (config ``SNIPER.TRAIN.SCALES`` / ``SNIPER.TEST.SCALES``)."""
    if not is_list_like(specs) or len(specs) == 0:
        raise ValueError(f"Expected a non-empty list of scales, got {specs!r}.")
    return tuple(parse_scale(s) for s in specs)


def scaled_size(width: float, height: float, factor: float) -> Tuple[int, int]:
    """(width, height) in px of an image of ``width`` x ``height`` px resized by ``factor``.

    Rounded to the nearest pixel, at least 1 px.
    """
    return max(1, int(round(width * factor))), max(1, int(round(height * factor)))
