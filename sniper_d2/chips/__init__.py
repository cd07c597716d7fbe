"""Chip generation (pure numpy): where SNIPER's training chips are chosen.

Flow per image and scale: size rules pick the driving boxes (:mod:`.driving_boxes`); a greedy set
cover over a grid of candidate chips (:mod:`.candidates`, :mod:`.greedy_cover`) gives the positive
chips (:mod:`.positive`); proposals away from them give negative chips (:mod:`.negative`); each
box is then valid in the one chip per scale holding most of it (:mod:`.assignment`).
:class:`ChipGenerator` (:mod:`.generator`) ties this together for all scales of an image.
At test time, AutoFocus's FocusChips (:mod:`.focus_chips`) say where a finer scale runs.
"""
from .assignment import assign_valid_boxes
from .box_checks import check_boxes, check_image_size, clip_proposals
from .candidates import CandidateGrid, candidate_grid, containing_ranges, containing_rects
from .chip import Chip
from .driving_boxes import BoxShapes, SizeRule, box_shapes, box_sizes, driving_rules, proposal_rules
from .focus_chips import focus_chips, focus_chips_to_original
from .generator import ChipGenerator
from .greedy_cover import greedy_cover
from .negative import negative_chips_at_scale, sample_negative_chips, touches_any
from .positive import positive_chips_at_scale
from .scales import ScaleSpec, parse_scale, parse_scales, scaled_size
from .valid_range import ValidRange, parse_valid_ranges

__all__ = [
    "Chip",
    "ChipGenerator",
    "BoxShapes",
    "CandidateGrid",
    "ScaleSpec",
    "SizeRule",
    "ValidRange",
    "assign_valid_boxes",
    "box_shapes",
    "box_sizes",
    "candidate_grid",
    "check_boxes",
    "check_image_size",
    "clip_proposals",
    "containing_ranges",
    "containing_rects",
    "driving_rules",
    "focus_chips",
    "focus_chips_to_original",
    "greedy_cover",
    "negative_chips_at_scale",
    "proposal_rules",
    "parse_scale",
    "parse_scales",
    "parse_valid_ranges",
    "positive_chips_at_scale",
    "sample_negative_chips",
    "scaled_size",
    "touches_any",
]
