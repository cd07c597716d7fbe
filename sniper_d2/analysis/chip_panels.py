"""Drawing one image's chips and boxes, one panel per training scale (``tools/visualize_chips.py``).

Every panel shows the whole image in original-image orientation, resized so that its longest
side is ``panel_size`` px and shown in light grey so that the coloured chips and boxes stand out;
chip windows (``Chip.box``, original px) and ground-truth boxes are drawn in that frame. A box is
*valid at a scale* if it is valid in some chip of that scale. Valid boxes are solid, invalid and
crowd boxes dashed, so the difference does not rest on colour alone. Colours are BGR (OpenCV).
"""
from collections import Counter
from typing import Dict, List, NamedTuple, Sequence, Tuple

import cv2
import numpy as np
from detectron2.data.detection_utils import read_image

from ..chips import Chip
from ..data import ChipPlanner

__all__ = [
    "BACKGROUND",
    "COLOURS",
    "GAP_PX",
    "LEGEND_PX",
    "PanelScale",
    "SAMPLE_PX",
    "TITLE_PX",
    "draw_line",
    "draw_line_legend",
    "draw_rectangle",
    "figure_shape",
    "light_grey_panel",
    "panel_display_size",
    "panel_origin",
    "panel_scale",
    "planned_chip_figure",
    "put_text",
    "render_chip_panels",
    "text_width",
]

COLOURS: Dict[str, Tuple[int, int, int]] = {
    "positive chip": (255, 128, 0),
    "negative chip": (255, 0, 255),
    "AutoFocus chip": (200, 160, 0),
    "valid box": (0, 170, 0),
    "invalid box": (0, 0, 255),
    "crowd box (ignored)": (0, 140, 255),
}
# Per legend entry: (line thickness px, dashed).
_LINE_STYLES: Dict[str, Tuple[int, bool]] = {
    "positive chip": (2, False),
    "negative chip": (2, False),
    "AutoFocus chip": (2, True),
    "valid box": (2, False),
    "invalid box": (1, True),
    "crowd box (ignored)": (1, True),
}
TITLE_PX = 24  # figure title row: the image
HEADER_PX = 44  # per panel: two text lines (scale, counts)
LEGEND_PX = 28
GAP_PX = 8  # between panels
_DASH_PX = 5
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.45
SAMPLE_PX = 22  # length of a legend entry's line sample
BACKGROUND = 255


class PanelScale(NamedTuple):
    """One training scale as a panel header shows it: config text, factor for this image (chip px
    per original px) and valid range (config pair, sqrt(area) original px, -1 = unbounded)."""

    label: str
    factor: float
    valid_range: Tuple[float, float]


def text_width(text: str) -> int:
    return cv2.getTextSize(text, _FONT, _FONT_SCALE, 1)[0][0]


def _legend_width() -> int:
    return 8 + sum(SAMPLE_PX + 6 + text_width(name) + 16 for name in COLOURS)


def panel_scale(width: int, height: int, panel_size: int) -> float:
    """Display px per original px: the image's longest side becomes ``panel_size`` px."""
    return panel_size / max(width, height)


def panel_display_size(width: int, height: int, panel_size: int) -> Tuple[int, int]:
    g = panel_scale(width, height, panel_size)
    return max(1, int(round(width * g))), max(1, int(round(height * g)))


def light_grey_panel(image: np.ndarray, panel_size: int) -> np.ndarray:
    """HxWx3 uint8 BGR ``image`` resized so that its longest side is ``panel_size`` px, in light
    grey (values 70-248) so that coloured drawings stand out."""
    height, width = image.shape[:2]
    interpolation = cv2.INTER_AREA if panel_scale(width, height, panel_size) < 1 else cv2.INTER_LINEAR
    grey = cv2.cvtColor(cv2.resize(image, panel_display_size(width, height, panel_size), interpolation=interpolation),
                        cv2.COLOR_BGR2GRAY)
    return cv2.cvtColor((grey * 0.7 + 70).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def figure_shape(
    width: int, height: int, num_scales: int, panel_size: int, header_px: int = HEADER_PX, legend_width: int = 0
) -> Tuple[int, int]:
    """(height, width) px of the figure for a ``width`` x ``height`` image (original px): a title
    row, ``header_px`` of text above the panels, a legend row at least ``legend_width`` px wide
    (0: the chip legend's)."""
    pw, ph = panel_display_size(width, height, panel_size)
    legend = legend_width or _legend_width()
    return TITLE_PX + header_px + ph + LEGEND_PX, max(num_scales * pw + (num_scales - 1) * GAP_PX, legend)


def panel_origin(width: int, height: int, scale_index: int, panel_size: int, header_px: int = HEADER_PX) -> Tuple[int, int]:
    """(x, y) px in the figure of the top-left corner of scale ``scale_index``'s image panel."""
    pw, _ = panel_display_size(width, height, panel_size)
    return scale_index * (pw + GAP_PX), TITLE_PX + header_px


def draw_line(canvas: np.ndarray, p0, p1, colour, thickness: int, dashed: bool) -> None:
    if not dashed:
        cv2.line(canvas, p0, p1, colour, thickness)
        return
    length = max(abs(p1[0] - p0[0]), abs(p1[1] - p0[1]))
    for start in range(0, length + 1, 2 * _DASH_PX):
        stop = min(start + _DASH_PX - 1, length)
        a = (p0[0] + (p1[0] - p0[0]) * start // max(length, 1), p0[1] + (p1[1] - p0[1]) * start // max(length, 1))
        b = (p0[0] + (p1[0] - p0[0]) * stop // max(length, 1), p0[1] + (p1[1] - p0[1]) * stop // max(length, 1))
        cv2.line(canvas, a, b, colour, thickness)


def draw_rectangle(panel: np.ndarray, box, g: float, colour, thickness: int, dashed: bool) -> None:
    """Draw XYXY ``box`` (original px, end exclusive) scaled by ``g`` (display px per original px);
    edges stay inside the panel."""
    h, w = panel.shape[:2]
    x0, y0, x1, y1 = (float(v) * g for v in box)
    left, top = int(np.clip(round(x0), 0, w - 1)), int(np.clip(round(y0), 0, h - 1))
    right, bottom = int(np.clip(round(x1) - 1, 0, w - 1)), int(np.clip(round(y1) - 1, 0, h - 1))
    corners = [(left, top), (right, top), (right, bottom), (left, bottom)]
    for p0, p1 in zip(corners, corners[1:] + corners[:1]):
        draw_line(panel, p0, p1, colour, thickness, dashed)


def _draw_box(panel: np.ndarray, box, g: float, kind: str) -> None:
    """Draw XYXY ``box`` (original px) scaled by ``g`` in the style of legend entry ``kind``."""
    draw_rectangle(panel, box, g, COLOURS[kind], *_LINE_STYLES[kind])


def put_text(canvas: np.ndarray, text: str, x: int, y: int) -> None:
    cv2.putText(canvas, text, (x, y), _FONT, _FONT_SCALE, (0, 0, 0), 1, cv2.LINE_AA)


def _fmt_range(valid_range) -> str:
    lo, hi = valid_range
    return f"[{0 if lo == -1 else lo:g}, {'inf' if hi == -1 else format(hi, 'g')})"


def render_chip_panels(
    image: np.ndarray,
    boxes: np.ndarray,
    crowd: np.ndarray,
    chips: Sequence[Chip],
    valid_ids: Sequence[np.ndarray],
    scales: Sequence[PanelScale],
    title: str,
    panel_size: int = 512,
) -> np.ndarray:
    """The figure (HxWx3 uint8 BGR, :func:`figure_shape`) of one image's chips.

    Args:
        image: HxWx3 uint8 BGR, the image as stored (original px).
        boxes: (N, 4) XYXY original px; ``crowd``: (N,) bool.
        chips: the image's chips of one epoch (positive, AutoFocus training and negative, any order).
        valid_ids: per chip, the boxes valid in it (as from :meth:`ChipPlanner.image_chips`).
        scales: the training scales, finest first.
        title: first line of the figure (which image, which epoch).
        panel_size: longest side of each panel, px.
    """
    height, width = image.shape[:2]
    num_scales = len(scales)
    g = panel_scale(width, height, panel_size)
    background = light_grey_panel(image, panel_size)
    pw, ph = panel_display_size(width, height, panel_size)
    figure = np.full((*figure_shape(width, height, num_scales, panel_size), 3), BACKGROUND, np.uint8)
    put_text(figure, title, 4, TITLE_PX - 8)
    for s, scale in enumerate(scales):
        at_scale = [(chip, ids) for chip, ids in zip(chips, valid_ids) if chip.scale_index == s]
        valid = np.zeros(len(boxes), bool)
        for _, ids in at_scale:
            valid[ids] = True
        panel = background.copy()
        for chip, _ in sorted(at_scale, key=lambda item: item[0].negative):  # negatives on top
            _draw_box(panel, chip.box, g, _chip_kind(chip))
        kinds: List[Tuple[int, str]] = [
            (k, "crowd box (ignored)" if crowd[k] else "valid box" if valid[k] else "invalid box")
            for k in range(len(boxes))
        ]
        for k, kind in sorted(kinds, key=lambda item: item[1] == "valid box"):  # valid boxes on top
            _draw_box(panel, boxes[k], g, kind)
        x, y = panel_origin(width, height, s, panel_size)
        figure[y : y + ph, x : x + pw] = panel
        counts = Counter(_chip_kind(chip) for chip, _ in at_scale)
        focus = f"{counts['AutoFocus chip']} AutoFocus, " if counts["AutoFocus chip"] else ""
        header = f"scale {scale.label} (x{scale.factor:.3g}), valid {_fmt_range(scale.valid_range)} px"
        put_text(figure, header, x + 2, y - 26)
        put_text(
            figure,
            f"{counts['positive chip']} pos, {focus}{counts['negative chip']} neg chips; {int(valid.sum())} valid, "
            f"{int((~valid & ~crowd).sum())} invalid boxes",
            x + 2,
            y - 8,
        )
    shown = {k: c for k, c in COLOURS.items() if k != "AutoFocus chip" or any(chip.focus for chip in chips)}
    draw_line_legend(figure, shown, _LINE_STYLES, 8, figure.shape[0] - LEGEND_PX // 2)
    return figure


def _chip_kind(chip: Chip) -> str:
    """The chip's legend entry."""
    return "negative chip" if chip.negative else "AutoFocus chip" if chip.focus else "positive chip"


def draw_line_legend(figure: np.ndarray, colours: Dict[str, Tuple[int, int, int]], styles: Dict[str, Tuple[int, bool]],
                     x: int, y: int) -> int:
    """One legend entry per ``colours`` item, left to right from ``(x, y)`` px (the line's height):
    a line sample in the item's colour and ``styles[name]`` = ``(thickness, dashed)``, then its
    name. Returns the x px after the last entry."""
    for name, colour in colours.items():
        thickness, dashed = styles[name]
        draw_line(figure, (x, y), (x + SAMPLE_PX, y), colour, thickness + 1, dashed)
        put_text(figure, name, x + SAMPLE_PX + 6, y + 5)
        x += SAMPLE_PX + 6 + text_width(name) + 16
    return x


def planned_chip_figure(planner: ChipPlanner, index: int, epoch: int, panel_size: int = 512) -> np.ndarray:
    """The figure of image ``index`` of ``planner.table`` with the chips training draws for it in
    ``epoch`` (:meth:`ChipPlanner.image_chips`, the epoch's stride). Reads the image file."""
    ann = planner.table[index]
    try:
        image = read_image(ann.file_name, format="BGR")
    except OSError as e:
        raise FileNotFoundError(f"Cannot read {ann.ref}: {e}. Fix the image root / file name of the dataset.") from e
    if image.shape[:2] != (ann.height, ann.width):
        raise ValueError(
            f"{ann.ref}: the image file is {image.shape[1]}x{image.shape[0]} px but the annotations say "
            f"{ann.width}x{ann.height} px (width x height). Fix the dataset's width/height or the file."
        )
    stride = planner.epoch_stride(epoch)
    positives, negatives, valid_ids = planner.image_chips(index, epoch, stride)
    generator = planner.generator
    scales = [
        PanelScale(str(spec), factor, valid_range.as_config())
        for spec, (factor, _), valid_range in zip(
            generator.scales, generator.image_scales(ann.width, ann.height), generator.valid_ranges
        )
    ]
    title = f"{ann.ref}, epoch {epoch}, chip {generator.chip_size} px, stride {stride} px"
    return render_chip_panels(
        image, ann.boxes, ann.crowd, positives + negatives, valid_ids, scales, title, panel_size
    )
