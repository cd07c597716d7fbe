"""Stage 1 of negative mining: the RPN-only configuration derived from the detector's."""
import math
import os

__all__ = ["NOT_IN_STAGE_ONE", "NOT_IN_MINING", "rpn_stage_config"]

# Config keys (or key prefixes) of the detector's config that change neither stage of mining: its
# box head, schedule and RPN NMS settings (replaced by rpn_stage_config), evaluation (SNIPER.TEST
# but its SCALES, used by stage 2), negative chips, where outputs go, speed settings.
NOT_IN_MINING = (
    "OUTPUT_DIR", "DATASETS.TEST", "DATASETS.PROPOSAL_FILES_TEST", "TEST", "VIS_PERIOD", "CUDNN_BENCHMARK",
    "DATALOADER.NUM_WORKERS", "MODEL.DEVICE", "MODEL.META_ARCHITECTURE", "MODEL.MASK_ON", "MODEL.KEYPOINT_ON",
    "MODEL.ROI_HEADS", "MODEL.ROI_BOX_HEAD", "MODEL.ROI_MASK_HEAD", "MODEL.ROI_KEYPOINT_HEAD",
    "MODEL.RPN.POST_NMS_TOPK_TEST", "MODEL.RPN.NMS_THRESH",
    "SOLVER.MAX_ITER", "SOLVER.STEPS", "SOLVER.CHECKPOINT_PERIOD", "SNIPER.NEG", "SNIPER.TEST", "SNIPER.AUTOFOCUS",
)
# ... and those that change stage 2 (proposal extraction) only, not the stage-1 RPN's training.
NOT_IN_STAGE_ONE = NOT_IN_MINING + (
    "SNIPER.MINING.PROPOSALS_PER_SCALE", "SNIPER.MINING.NMS_THRESH", "MODEL.RPN.PRE_NMS_TOPK_TEST",
)


def rpn_stage_config(cfg, chips_per_epoch: int, output_dir: str):
    """The detector config turned into a short RPN-only SNIPER schedule on positive chips.

    Same backbone, RPN, chips and solver, but ``ProposalNetwork``, no negative chips, no
    evaluation, and ``SNIPER.MINING.RPN_EPOCHS`` epochs of chips with no lr step (the authors'
    2-epoch RPN run ends before their step at epoch 5.33); the warm-up is capped at a fifth of the
    stage. Proposal extraction settings: ``POST_NMS_TOPK_TEST`` =
    ``SNIPER.MINING.PROPOSALS_PER_SCALE`` and ``RPN.NMS_THRESH`` = ``SNIPER.MINING.NMS_THRESH``.

    Args:
        chips_per_epoch: positive chips in one epoch of the training set.
        output_dir: where stage 1 writes its checkpoints and logs.
    """
    c = cfg.clone()
    c.defrost()
    c.MODEL.META_ARCHITECTURE = "ProposalNetwork"
    c.MODEL.MASK_ON = False
    c.MODEL.KEYPOINT_ON = False
    c.MODEL.RPN.POST_NMS_TOPK_TEST = c.SNIPER.MINING.PROPOSALS_PER_SCALE
    c.MODEL.RPN.NMS_THRESH = c.SNIPER.MINING.NMS_THRESH
    c.SNIPER.NEG.PROPOSAL_FILES = ()
    c.SNIPER.TEST.MULTI_SCALE = False
    c.DATASETS.TEST = ()
    c.TEST.EVAL_PERIOD = 0
    iters = max(1, math.ceil(c.SNIPER.MINING.RPN_EPOCHS * chips_per_epoch / c.SOLVER.IMS_PER_BATCH))
    c.SOLVER.MAX_ITER = iters
    c.SOLVER.STEPS = ()
    c.SOLVER.WARMUP_ITERS = min(c.SOLVER.WARMUP_ITERS, max(1, iters // 5))
    c.SOLVER.CHECKPOINT_PERIOD = iters + 1  # only the final model
    c.OUTPUT_DIR = output_dir
    os.makedirs(output_dir, exist_ok=True)
    c.freeze()
    return c
