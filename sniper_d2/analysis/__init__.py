"""Dataset analysis for tuning SNIPER (``tools/analyze_dataset.py``, ``tools/visualize_chips.py``,
``tools/visualize_focus.py``).

Object sizes, which boxes each scale's valid range covers and which drive chips, chips and pixels
per image, suggested scales and valid ranges, drawings of the chips of an image and of its
AutoFocus test (FocusPixel maps and FocusChips per test scale).
"""
from .chip_panels import (
    COLOURS,
    PanelScale,
    figure_shape,
    panel_origin,
    panel_scale,
    planned_chip_figure,
    render_chip_panels,
)
from .chip_statistics import ChipStatistics, chip_statistics
from .focus_panels import (
    FOCUS_COLOURS,
    FocusPanel,
    focus_figure_shape,
    focus_panel_origin,
    focus_panels,
    render_focus_panels,
)
from .dataset_report import DatasetAnalysis, analyze_training_set, format_report, suggest_for_config, suggest_for_planner
from .pixel_cost import pyramid_pixels, single_scale_pixels
from .scale_coverage import DatasetBoxes, ScaleCoverage, image_factors, scale_coverage
from .scale_suggestion import (
    ScaleSuggestion,
    SizeDependence,
    anchor_size_band,
    size_dependence,
    suggest_for_dataset,
    suggest_scales,
)
from .size_distribution import COCO_SIZE_LIMITS, SIZE_PERCENTILES, size_distribution
from .size_histogram import plot_size_histogram
from .tool_setup import report_written, split_config_overrides, tool_argument_parser, tool_config, write_png
from .training_set import PROGRESS_MIN_ITEMS, load_training_planner, progress

__all__ = [
    "COCO_SIZE_LIMITS",
    "COLOURS",
    "ChipStatistics",
    "DatasetAnalysis",
    "DatasetBoxes",
    "FOCUS_COLOURS",
    "FocusPanel",
    "PROGRESS_MIN_ITEMS",
    "PanelScale",
    "SIZE_PERCENTILES",
    "ScaleCoverage",
    "ScaleSuggestion",
    "SizeDependence",
    "analyze_training_set",
    "anchor_size_band",
    "chip_statistics",
    "figure_shape",
    "focus_figure_shape",
    "focus_panel_origin",
    "focus_panels",
    "format_report",
    "image_factors",
    "load_training_planner",
    "panel_origin",
    "panel_scale",
    "planned_chip_figure",
    "plot_size_histogram",
    "progress",
    "pyramid_pixels",
    "render_chip_panels",
    "render_focus_panels",
    "scale_coverage",
    "single_scale_pixels",
    "size_dependence",
    "size_distribution",
    "report_written",
    "split_config_overrides",
    "suggest_for_config",
    "suggest_for_dataset",
    "suggest_for_planner",
    "suggest_scales",
    "tool_argument_parser",
    "tool_config",
    "write_png",
]
