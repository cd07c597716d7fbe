"""Drawing one image's AutoFocus test, one panel per test scale, coarsest first (``tools/visualize_focus.py``).

Every panel shows the whole image in light grey, resized so that its longest side is
``panel_size`` px, under that scale's FocusPixel map (:class:`~sniper_d2.inference.autofocus.FocusMap`)
as a translucent heat overlay (OpenCV's TURBO colour map: probability 0 dark blue, 1 dark red).
Cells where the scale did not run have no prediction: they are dimmed and hatched instead. On top,
the regions the scale ran on (a pruned scale's FocusChips, else the whole image) are drawn solid
and the FocusChips its map gives the next finer scale dashed, so that the difference does not rest
on colour alone. Colours are BGR (OpenCV).
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..inference.autofocus import FocusMap
from .chip_panels import (
    BACKGROUND, LEGEND_PX, SAMPLE_PX, TITLE_PX, draw_line_legend, draw_rectangle, figure_shape, light_grey_panel,
    panel_origin, panel_scale, put_text, text_width,
)

__all__ = ["FOCUS_COLOURS", "FocusPanel", "focus_figure_shape", "focus_panel_origin", "focus_panels",
           "render_focus_panels"]

FOCUS_COLOURS = {
    "ran on": (0, 170, 0),
    "FocusChips for the next finer scale": (255, 0, 255),
}
# Per rectangle legend entry: (line thickness px, dashed).
_LINE_STYLES = {"ran on": (2, False), "FocusChips for the next finer scale": (2, True)}
NOT_RUN = "not run at this scale"
HEAT_LABEL = "FocusPixel probability 0 .. 1"
HEADER_PX = 62  # per panel: three text lines (scale; where it ran; the next finer scale's chips)
HEAT_ALPHA = 0.5  # weight of the heat colour over the grey image
_HATCH_PX = 6  # period of the diagonal hatching of cells not run, display px
_SWATCH_PX = (SAMPLE_PX, 12)  # legend swatch (width, height), display px


class FocusPanel(NamedTuple):
    """One test scale of one image as its panel shows it."""

    label: str  # the scale as configured (SNIPER.TEST.SCALES entry)
    factor: float  # scaled px per original px, for this image
    focus_map: FocusMap  # over the whole image at this scale; NaN cells: not run
    regions: np.ndarray  # int64 (K, 4) XYXY original px the scale ran on
    pruned: bool  # ran only on FocusChips of the next coarser scale's map
    processed_share: float  # scaled px run at this scale over those of the image resized whole to it
    next_chips: Optional[np.ndarray]  # (K, 4) original px: its map's FocusChips for the next finer scale
    next_threshold: Optional[float]  # FocusPixel probability those chips need; None when next_chips is


def focus_panels(inference) -> List[FocusPanel]:
    """The panels, coarsest first, of the one image of the last call of ``inference``, a
    :class:`~sniper_d2.inference.SniperMultiScaleInference` with AutoFocus whose ``pixel_counts``
    were reset before that call (so that its shares are this image's)."""
    if not inference.autofocus:
        raise ValueError("focus_panels needs a SniperMultiScaleInference with autofocus=True "
                         "(SNIPER.TEST.AUTOFOCUS.ENABLED).")
    counts = inference.pixel_counts
    if counts.images != 1 or len(inference.last_focus_maps) != 1:
        raise ValueError(f"focus_panels: pixel_counts cover {counts.images} images and the last call had "
                         f"{len(inference.last_focus_maps)}; call reset_pixel_counts(), then run the one image "
                         "to draw.")
    panels = []
    for k in reversed(range(len(inference.scales))):
        focus_map = inference.last_focus_maps[0][k]
        next_pruned = k > 0 and inference.focus_prune[k - 1]
        panels.append(FocusPanel(
            label=str(inference.scales[k]),
            factor=focus_map.factor,
            focus_map=focus_map,
            regions=inference.last_focus_chips[0][k],
            pruned=inference.focus_prune[k],
            processed_share=counts.processed[k] / counts.full_pyramid[k],
            next_chips=inference.last_focus_chips[0][k - 1] if next_pruned else None,
            next_threshold=inference.focus_thresholds[k - 1] if next_pruned else None,
        ))
    return panels


def _legend_width() -> int:
    texts = [*FOCUS_COLOURS, NOT_RUN, HEAT_LABEL]
    return 8 + sum(SAMPLE_PX + 6 + text_width(text) + 16 for text in texts)


def focus_figure_shape(width: int, height: int, num_scales: int, panel_size: int) -> Tuple[int, int]:
    """(height, width) px of the figure for a ``width`` x ``height`` image (original px)."""
    return figure_shape(width, height, num_scales, panel_size, header_px=HEADER_PX, legend_width=_legend_width())


def focus_panel_origin(width: int, height: int, panel_index: int, panel_size: int) -> Tuple[int, int]:
    """(x, y) px in the figure of the top-left corner of image panel ``panel_index`` (0: coarsest scale)."""
    return panel_origin(width, height, panel_index, panel_size, header_px=HEADER_PX)


def _hatch(shape: Tuple[int, int]) -> np.ndarray:
    """Bool (h, w): the px of diagonal lines every ``_HATCH_PX`` px."""
    rows, cols = np.indices(shape)
    return (rows + cols) % _HATCH_PX == 0


def _not_run(background: np.ndarray) -> np.ndarray:
    """``background`` dimmed and hatched: how px of cells not run look."""
    dimmed = background // 2
    dimmed[_hatch(background.shape[:2])] = 140
    return dimmed


def _overlay(background: np.ndarray, focus_map: FocusMap, g: float) -> np.ndarray:
    """``background`` (the panel, ``g`` display px per original px) under ``focus_map``'s heat colours."""
    ph, pw = background.shape[:2]
    display_px_per_cell = g * focus_map.stride / focus_map.factor
    rows = np.minimum(((np.arange(ph) + 0.5) / display_px_per_cell).astype(np.int64), focus_map.cells.shape[0] - 1)
    cols = np.minimum(((np.arange(pw) + 0.5) / display_px_per_cell).astype(np.int64), focus_map.cells.shape[1] - 1)
    probabilities = focus_map.cells[rows[:, None], cols[None, :]]
    ran = ~np.isnan(probabilities)
    levels = np.round(np.clip(np.nan_to_num(probabilities), 0, 1) * 255).astype(np.uint8)
    heat = cv2.addWeighted(cv2.applyColorMap(levels, cv2.COLORMAP_TURBO), HEAT_ALPHA, background, 1 - HEAT_ALPHA, 0)
    return np.where(ran[..., None], heat, _not_run(background))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _headers(panel: FocusPanel, finest: bool) -> Tuple[str, str, str]:
    """The three header lines of a panel: the scale; where it ran; what its map chose for the next finer scale."""
    ran = _count(len(panel.regions), "FocusChip") if panel.pruned else "the whole image"
    if panel.next_chips is not None:
        next_line = f"next finer: {_count(len(panel.next_chips), 'FocusChip')}, p >= {panel.next_threshold:g}"
    else:
        next_line = "finest scale" if finest else "next finer: runs whole"
    return (f"scale {panel.label} (x{panel.factor:.3g})", f"ran on {ran}, {panel.processed_share:.0%} of px",
            next_line)


def render_focus_panels(image: np.ndarray, panels: Sequence[FocusPanel], title: str,
                        panel_size: int = 512) -> np.ndarray:
    """The figure (HxWx3 uint8 BGR, :func:`focus_figure_shape`) of one image's AutoFocus test.

    Args:
        image: HxWx3 uint8 BGR, the image as run (original px).
        panels: the test scales, coarsest first (:func:`focus_panels`).
        title: first line of the figure (which image).
        panel_size: longest side of each panel, px.
    """
    height, width = image.shape[:2]
    g = panel_scale(width, height, panel_size)
    background = light_grey_panel(image, panel_size)
    ph, pw = background.shape[:2]
    figure = np.full((*focus_figure_shape(width, height, len(panels), panel_size), 3), BACKGROUND, np.uint8)
    put_text(figure, title, 4, TITLE_PX - 8)
    for index, panel in enumerate(panels):
        drawing = _overlay(background, panel.focus_map, g)
        for region in panel.regions:
            draw_rectangle(drawing, region, g, FOCUS_COLOURS["ran on"], *_LINE_STYLES["ran on"])
        kind = "FocusChips for the next finer scale"
        for chip in panel.next_chips if panel.next_chips is not None else ():
            draw_rectangle(drawing, chip, g, FOCUS_COLOURS[kind], *_LINE_STYLES[kind])
        x, y = focus_panel_origin(width, height, index, panel_size)
        figure[y : y + ph, x : x + pw] = drawing
        for line, text in enumerate(_headers(panel, index == len(panels) - 1)):
            put_text(figure, text, x + 2, y - 44 + 18 * line)
    _draw_legend(figure)
    return figure


def _draw_legend(figure: np.ndarray) -> None:
    y = figure.shape[0] - LEGEND_PX // 2
    x = draw_line_legend(figure, FOCUS_COLOURS, _LINE_STYLES, 8, y)
    swatch_w, swatch_h = _SWATCH_PX
    top = y - swatch_h // 2
    swatch = figure[top : top + swatch_h, x : x + swatch_w]
    swatch[...] = _not_run(np.full_like(swatch, 200))
    put_text(figure, NOT_RUN, x + swatch_w + 6, y + 5)
    x += swatch_w + 6 + text_width(NOT_RUN) + 16
    ramp = np.linspace(0, 255, swatch_w).astype(np.uint8)[None, :].repeat(swatch_h, axis=0)
    grey = np.full((swatch_h, swatch_w, 3), 200, np.uint8)
    figure[top : top + swatch_h, x : x + swatch_w] = cv2.addWeighted(
        cv2.applyColorMap(ramp, cv2.COLORMAP_TURBO), HEAT_ALPHA, grey, 1 - HEAT_ALPHA, 0
    )
    put_text(figure, HEAT_LABEL, x + swatch_w + 6, y + 5)
