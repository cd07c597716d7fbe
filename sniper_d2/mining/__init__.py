"""Negative-chip mining (SNIPER_SPEC section 3): a short RPN-only schedule on positive chips
(stage 1), its proposals on the full training images (stage 2), then SNIPER training that samples
negative chips from them (stage 3). :func:`mine_negative_proposals` runs stages 1-2."""
from .pipeline import mine_negative_proposals, mining_paths
from .proposal_extraction import extract_proposals, save_proposal_file
from .rpn_stage import rpn_stage_config

__all__ = ["extract_proposals", "mine_negative_proposals", "mining_paths", "rpn_stage_config", "save_proposal_file"]
