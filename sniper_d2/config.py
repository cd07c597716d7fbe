"""SNIPER configuration keys (``cfg.SNIPER``), added by :func:`add_sniper_config`.

Units used below:

* *original px*: pixels of the image as stored on disk / in the annotation file.
* *chip px*: pixels of the scaled image a chip is cut from (= original px x scale factor).
* *sqrt(area)*: ``sqrt(w * h)`` of a box, the size measure SNIPER's valid ranges use.

A *scale* is written in one of three forms (see :mod:`sniper_d2.chips.scales`):

* a number, e.g. ``3.0``: a factor, chip px per original px;
* ``"longest:512"``: resize so that the longest image side is 512 px;
* ``[short, max_long]``, e.g. ``[800, 1333]``: Detectron2-style resolution, the short side
  becomes ``short`` unless the long side would exceed ``max_long``.

A *valid range* is ``(lo, hi)`` in sqrt(area) original px; ``-1`` means unbounded.
"""
from detectron2.config import CfgNode as CN

__all__ = ["add_sniper_config", "check_sniper_config", "sniper_config_from_file"]


def add_sniper_config(cfg):
    """Add the ``cfg.SNIPER`` node (SNIPER defaults for COCO) to a Detectron2 config, in place.

    Calling it twice is harmless (existing values are kept).
    """
    if "SNIPER" in cfg:
        return cfg
    cfg.SNIPER = CN()
    # Side of the square chips, chip px. Smaller chips (coarse scales, small images) are padded
    # to this size by batching.
    cfg.SNIPER.CHIP_SIZE = 512
    # Seed of the chip sequence (chip placement tie-breaks, random strides, negative-chip
    # sampling, chip order). -1: use cfg.SEED when it is >= 0, else 0. All ranks use the same
    # seed, so a resumed run continues the same sequence.
    cfg.SNIPER.SEED = -1
    # Frame of TRAIN.VALID_RANGES and TEST.VALID_RANGES. (): original px. A scale, e.g.
    # (448, 746): px of the image resized to that scale (any form of the docstring), so a range
    # means the same for every image of a dataset whose object size follows image size
    # (tools/analyze_dataset.py detects that and proposes resolution scales with this key).
    cfg.SNIPER.RANGE_REFERENCE = ()

    # ---- Training: positive chips -----------------------------------------------------------
    cfg.SNIPER.TRAIN = CN()
    # False: train_net.py uses Detectron2's standard single-image loader (a non-SNIPER baseline).
    cfg.SNIPER.TRAIN.ENABLED = True
    # Training scales, finest first (see module docstring for the three forms).
    cfg.SNIPER.TRAIN.SCALES = (3.0, 1.667, "longest:512")
    # One (lo, hi) per training scale, sqrt(area) in original px, -1 = unbounded.
    cfg.SNIPER.TRAIN.VALID_RANGES = ((-1, 80), (32, 150), (120, -1))
    # Step of the candidate-chip grid, chip px (the paper uses 32).
    cfg.SNIPER.TRAIN.CHIP_STRIDE = 32
    # Optional (min, max) chip px, inclusive: draw the stride from this range every epoch
    # instead of using CHIP_STRIDE (the authors' released code uses (56, 59)). Empty: off.
    cfg.SNIPER.TRAIN.CHIP_STRIDE_RANGE = ()
    # A ground-truth box clipped to a chip is kept only if it is at least this wide and high,
    # chip px.
    cfg.SNIPER.TRAIN.MIN_BOX_SIZE = 10
    # Extra Detectron2 augmentations applied to every chip after the crop and the flip
    # (INPUT.RANDOM_FLIP), written as expressions over detectron2.data.transforms, e.g.
    # ("RandomBrightness(0.8, 1.2)", "RandomContrast(0.8, 1.2)").
    cfg.SNIPER.TRAIN.AUGMENTATIONS = ()
    # RPN: anchors whose IoU with an invalid box (out of range, assigned to another chip,
    # or crowd) exceeds this are ignored, even if they matched a valid box.
    cfg.SNIPER.TRAIN.RPN_INVALID_IOU_THRESH = 0.3
    # False: the "no ignore" ablation. Every non-crowd box kept in a chip is valid there and
    # chips have no valid range (all proposals train the box head): the chips stay SNIPER's,
    # but objects of the wrong size for a scale are learned at that scale too.
    cfg.SNIPER.TRAIN.IGNORE_INVALID = True
    # Before training, every image's header is read once (the file exists, is an image, is not cut
    # short, has the annotated size; cached per dataset in OUTPUT_DIR/sniper_image_check). True:
    # missing, unreadable and truncated images are left out of training (logged with their
    # count) instead of failing. Size mismatches fail either way.
    cfg.SNIPER.TRAIN.SKIP_UNREADABLE_IMAGES = False
    # MiB of decoded images that each data-loader worker (each process: the budget is per
    # worker, so a machine holds up to NUM_WORKERS x GPUs x this) keeps for images it reads again
    # in the epoch, so an image with many chips (huge images, dense boxes) is decoded once, not
    # once per chip. Only images expected to be read twice or more by a worker are kept. 0: off.
    cfg.SNIPER.TRAIN.DECODE_CACHE_MB = 1024

    # ---- Training: negative chips -----------------------------------------------------------
    cfg.SNIPER.NEG = CN()
    # Proposal files (Detectron2 format, boxes in original XYXY px), one per DATASETS.TRAIN
    # entry. Empty: no negative chips (positive chips only).
    cfg.SNIPER.NEG.PROPOSAL_FILES = ()
    # Negative chips sampled per image and epoch from its pool (all of them if fewer).
    cfg.SNIPER.NEG.CHIPS_PER_IMAGE = 2
    # Per training scale: a negative chip is kept only if it holds MORE than this many
    # uncovered proposals.
    cfg.SNIPER.NEG.MIN_PROPOSALS = (25, 10, 10)

    # ---- Negative-chip mining pipeline (train_net.py --mine-negatives) ------------
    cfg.SNIPER.MINING = CN()
    # Stage 1: length of the RPN-only schedule, in epochs of positive chips.
    cfg.SNIPER.MINING.RPN_EPOCHS = 2.0
    # Stage 2: proposals kept per image and test scale, after NMS.
    cfg.SNIPER.MINING.PROPOSALS_PER_SCALE = 300
    # Stage 2: NMS IoU threshold applied to the proposals of each scale.
    cfg.SNIPER.MINING.NMS_THRESH = 0.7

    # ---- Inference --------------------------------------------------------------------------
    cfg.SNIPER.TEST = CN()
    # True: run every test image at all SNIPER.TEST.SCALES and merge; False: Detectron2's
    # single-scale inference (INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST).
    cfg.SNIPER.TEST.MULTI_SCALE = True
    # Test scales (any of the three forms), finest first.
    cfg.SNIPER.TEST.SCALES = ((1400, 2000), (800, 1280), (480, 512))
    # One (lo, hi) per test scale, sqrt(area) in original px, -1 = unbounded; a detection is
    # kept at a scale iff lo < sqrt(area) <= hi.
    cfg.SNIPER.TEST.VALID_RANGES = ((-1, 90), (32, 180), (75, -1))
    # How detections of all scales are merged per class: "soft_nms" (Gaussian) or "nms".
    cfg.SNIPER.TEST.MERGE = "soft_nms"
    # Gaussian soft-NMS: a box's score is multiplied by exp(-IoU^2 / sigma).
    cfg.SNIPER.TEST.SOFT_NMS_SIGMA = 0.55
    # Hard NMS ("nms" merge): IoU threshold.
    cfg.SNIPER.TEST.NMS_THRESH = 0.5
    # Detections whose (decayed) score falls below this are dropped.
    cfg.SNIPER.TEST.SCORE_THRESH = 0.001
    # True (the authors'): per scale, every box-head detection scoring at least SCORE_THRESH
    # goes to the range filter and the merge: no per-scale NMS and no per-scale cap
    # (MODEL.ROI_HEADS.NMS_THRESH_TEST / SCORE_THRESH_TEST and TEST.DETECTIONS_PER_IMAGE are
    # bypassed at each scale). False: Detectron2's per-scale post-processing with those keys.
    cfg.SNIPER.TEST.RAW_SCALE_DETECTIONS = True
    # RPN proposals per image and test scale (post-NMS top-k; the authors' 300). 0: the model's
    # MODEL.RPN.POST_NMS_TOPK_TEST.
    cfg.SNIPER.TEST.PROPOSALS_PER_SCALE = 300
    # Detections kept per image after merging.
    cfg.SNIPER.TEST.DETECTIONS_PER_IMAGE = 200
    # Tiled inference for huge images (sniper_d2/inference/tiling.py): memory bounded by one tile
    # instead of the whole scaled image. Side of the square tiles, scaled px (px of the image
    # resized to the test scale); 0: off, every scale runs on whole images.
    cfg.SNIPER.TEST.TILE_SIZE = 0
    # Least overlap of neighbouring tiles, scaled px. Each tile keeps the detections centred in
    # its share of the overlaps and not cut by an edge it shares with another tile, so objects up
    # to this size (minus 4 px) are found whole and once; give at least the largest object a
    # tiled scale's valid range admits (hi x scale factor).
    cfg.SNIPER.TEST.TILE_OVERLAP = 256
    # Tile a scale only when its scaled image's longer side exceeds this, px (e.g. 4000: only
    # the finest scale of huge images); 0: whenever TILE_SIZE > 0 (an image that fits in one
    # tile gives one tile, the whole image, with the same detections as untiled).
    cfg.SNIPER.TEST.TILE_ABOVE = 0

    # ---- AutoFocus (Najibi, Singh, Davis, ICCV 2019): FocusPixels and FocusChips ---------------
    # Training: MODEL.META_ARCHITECTURE "SniperAutoFocusRCNN" adds a FocusPixel branch to the
    # R-CNN and trains it jointly on the chips; other meta-architectures ignore these keys.
    cfg.SNIPER.AUTOFOCUS = CN()
    # The branch, by name in sniper_d2.modeling.FOCUS_HEAD_REGISTRY.
    cfg.SNIPER.AUTOFOCUS.HEAD_NAME = "FocusPixelHead"
    # Feature map the branch reads; its stride is the FocusPixel grid's (the authors: stride 16).
    # FPN: "p4"; C4: "res4".
    cfg.SNIPER.AUTOFOCUS.IN_FEATURE = "p4"
    # Channels of the branch's 3x3 conv.
    cfg.SNIPER.AUTOFOCUS.CONV_DIM = 256
    # FocusPixel labels, per feature-map cell of a chip, from the chip's boxes (sqrt(area) in chip
    # px): positive where the cell overlaps an object of size in (DC_LOW, SMALL_THRESH);
    # don't-care where it overlaps one in [SMALL_THRESH, DC_HIGH), one <= DC_LOW, or a crowd
    # box; negative elsewhere. The authors' COCO values for 512 px chips: 5, 64, 90.
    cfg.SNIPER.AUTOFOCUS.DC_LOW = 5.0
    cfg.SNIPER.AUTOFOCUS.SMALL_THRESH = 64.0
    cfg.SNIPER.AUTOFOCUS.DC_HIGH = 90.0
    # Weight of the FocusPixel loss (mean binary cross-entropy over the labelled cells).
    cfg.SNIPER.AUTOFOCUS.LOSS_WEIGHT = 1.0
    # AutoFocus training chips (not in the authors' code): at every training scale but the finest,
    # objects that are FocusPixel-positive there and that no positive or sampled negative chip of
    # that scale holds whole get chips of their own (a greedy cover), so that the branch learns
    # small objects at the coarse scales whose maps crop the finer ones at test time. SNIPER's
    # chips there are made for the scale's valid range: without these, a small object away from
    # larger ones reaches the branch at a coarse scale only by chance. Costs extra chips per epoch
    # (logged as "AutoFocus training"); the detector trains on them like on positive chips.
    cfg.SNIPER.AUTOFOCUS.TRAIN_CHIPS = False

    # Inference coarse to fine (needs a SniperAutoFocusRCNN model and SNIPER.TEST.MULTI_SCALE): the
    # coarsest test scale runs on the whole image; each finer scale with PRUNE runs only on the
    # FocusChips built from the next coarser scale's FocusPixel map (threshold, dilate, connected
    # components, minimum size, overlapping chips merged). One value per SNIPER.TEST.SCALES entry,
    # finest first; a scale's values say how its FocusChips come from the coarser scale's map.
    cfg.SNIPER.TEST.AUTOFOCUS = CN()
    cfg.SNIPER.TEST.AUTOFOCUS.ENABLED = False
    # False: the scale runs on the whole image. The coarsest scale must be False.
    cfg.SNIPER.TEST.AUTOFOCUS.PRUNE = (True, True, False)
    # FocusPixel probability at or above which a cell of the coarser scale's map is a FocusPixel
    # (the authors: 0.2 for the finest scale's chips, 0.02 for the middle scale's).
    cfg.SNIPER.TEST.AUTOFOCUS.THRESHOLDS = (0.2, 0.02, 0.0)
    # Side of the square dilation kernel applied to the FocusPixels, cells of that map.
    cfg.SNIPER.TEST.AUTOFOCUS.DILATIONS = (3, 3, 1)
    # Least FocusChip side, cells of that map (the authors: 20 and 16 cells of stride 16, i.e.
    # 320 and 256 px of the coarser scale).
    cfg.SNIPER.TEST.AUTOFOCUS.MIN_CHIP_SIZES = (20, 16, 1)
    # 0: every FocusChip gets the scale's RPN proposals (SNIPER.TEST.PROPOSALS_PER_SCALE per image)
    # and MODEL.RPN.PRE_NMS_TOPK_TEST candidates per level. Else a FocusChip gets both in proportion
    # to its share of the scaled image's px, at least this many, so that the RPN's and box head's
    # cost follows the chips' area rather than their number.
    cfg.SNIPER.TEST.AUTOFOCUS.MIN_CHIP_PROPOSALS = 0
    return cfg


def sniper_config_from_file(config_file: str, opts=()):
    """Detectron2's defaults with the SNIPER keys, the YAML ``config_file`` merged in, then the
    ``KEY VALUE`` overrides ``opts`` (a ``CfgNode``, not frozen, not checked)."""
    from detectron2.config import get_cfg

    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    return cfg


def check_sniper_config(cfg) -> None:
    """Fail fast, with the key to fix, on SNIPER settings that cannot work.

    Checks the bounds of every numeric SNIPER key, scale/valid-range parsing and lengths (errors
    name the key: TRAIN or TEST), the stride settings, the merge mode, that
    every dataset in DATASETS.TRAIN / TEST is registered, one proposal file per training dataset,
    and that AMP/device settings fit the machine.
    """
    import torch
    from detectron2.data import DatasetCatalog

    from .chips.scales import parse_scale, parse_scales
    from .chips.valid_range import parse_valid_ranges

    s = cfg.SNIPER
    _check_bounds(s)
    if s.RANGE_REFERENCE:
        try:
            parse_scale(s.RANGE_REFERENCE)
        except ValueError as e:
            raise ValueError(f"SNIPER.RANGE_REFERENCE: {e} Use () for original px.") from None
    train_scales = _parsed("SNIPER.TRAIN.SCALES", parse_scales, s.TRAIN.SCALES)
    _parsed("SNIPER.TRAIN.VALID_RANGES", parse_valid_ranges, s.TRAIN.VALID_RANGES, len(train_scales),
            "SNIPER.TRAIN.VALID_RANGES")
    if len(s.NEG.MIN_PROPOSALS) != len(train_scales):
        raise ValueError(
            f"SNIPER.NEG.MIN_PROPOSALS has {len(s.NEG.MIN_PROPOSALS)} values but SNIPER.TRAIN.SCALES has "
            f"{len(train_scales)} scales: give one minimum proposal count per training scale."
        )
    test_scales = _parsed("SNIPER.TEST.SCALES", parse_scales, s.TEST.SCALES)
    _parsed("SNIPER.TEST.VALID_RANGES", parse_valid_ranges, s.TEST.VALID_RANGES, len(test_scales),
            "SNIPER.TEST.VALID_RANGES")
    if not 1 <= s.TRAIN.CHIP_STRIDE < s.CHIP_SIZE - 1:
        raise ValueError(f"SNIPER.TRAIN.CHIP_STRIDE must be in [1, CHIP_SIZE - 2], got {s.TRAIN.CHIP_STRIDE}.")
    if s.TRAIN.CHIP_STRIDE_RANGE:
        r = tuple(s.TRAIN.CHIP_STRIDE_RANGE)
        if len(r) != 2 or not 1 <= r[0] <= r[1] < s.CHIP_SIZE - 1:
            raise ValueError(
                f"SNIPER.TRAIN.CHIP_STRIDE_RANGE must be () or (min, max) with 1 <= min <= max < CHIP_SIZE - 1, got {r}."
            )
    if s.TRAIN.ENABLED:
        _check_chip_aware_heads(cfg)
    _check_autofocus(s, len(test_scales))
    if s.TEST.MERGE not in ("soft_nms", "nms"):
        raise ValueError(f"SNIPER.TEST.MERGE must be 'soft_nms' or 'nms', got {s.TEST.MERGE!r}.")
    registered = set(DatasetCatalog.list())
    for key in ("TRAIN", "TEST"):
        for name in cfg.DATASETS.get(key):
            if name not in registered:
                raise KeyError(
                    f"DATASETS.{key} names '{name}', which is not a registered dataset. Register it first "
                    "(e.g. detectron2.data.datasets.register_coco_instances) or fix the name."
                )
    if s.NEG.PROPOSAL_FILES and len(s.NEG.PROPOSAL_FILES) != len(cfg.DATASETS.TRAIN):
        raise ValueError(
            f"SNIPER.NEG.PROPOSAL_FILES has {len(s.NEG.PROPOSAL_FILES)} files for {len(cfg.DATASETS.TRAIN)} "
            "training datasets: give one per DATASETS.TRAIN entry, in order (or none)."
        )
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("MODEL.DEVICE is 'cuda' but no GPU is available: add `MODEL.DEVICE cpu SOLVER.AMP.ENABLED False`.")
    if cfg.SOLVER.AMP.ENABLED and not cfg.MODEL.DEVICE.startswith("cuda"):
        raise RuntimeError("SOLVER.AMP.ENABLED needs a CUDA device (Detectron2's AMPTrainer): set it to False on CPU.")


def _check_chip_aware_heads(cfg) -> None:
    """With the chip loader, the RPN and ROI heads must read SNIPER's chip labels: stock heads
    would train invalid (out-of-range, other chips', crowd) boxes as positives."""
    from detectron2.modeling import PROPOSAL_GENERATOR_REGISTRY, ROI_HEADS_REGISTRY

    from .modeling import SniperProposalLabels, SniperRPN

    wanted = [("MODEL.PROPOSAL_GENERATOR.NAME", cfg.MODEL.PROPOSAL_GENERATOR.NAME, PROPOSAL_GENERATOR_REGISTRY,
               SniperRPN, "SniperRPN")]
    if cfg.MODEL.META_ARCHITECTURE != "ProposalNetwork":
        wanted.append(("MODEL.ROI_HEADS.NAME", cfg.MODEL.ROI_HEADS.NAME, ROI_HEADS_REGISTRY, SniperProposalLabels,
                       "SniperStandardROIHeads (FPN) or SniperRes5ROIHeads (C4)"))
    for key, name, registry, base, fix in wanted:
        try:
            cls = registry.get(name)
        except KeyError:
            raise KeyError(f"{key} '{name}' is not registered in Detectron2's {registry._name} registry.") from None
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise ValueError(
                f"SNIPER.TRAIN.ENABLED trains on chips, but {key} is '{name}', which ignores SNIPER's chip "
                f"labels: boxes outside a chip's valid range would train as positives. Set {key} to {fix} "
                f"(or a subclass of {base.__name__}), or set SNIPER.TRAIN.ENABLED False for Detectron2's "
                "single-image training."
            )


def _check_autofocus(sniper_node, num_test_scales: int) -> None:
    """AutoFocus label thresholds in order; with SNIPER.TEST.AUTOFOCUS.ENABLED, one inference value per
    test scale and the coarsest scale not pruned."""
    af = sniper_node.AUTOFOCUS
    if not af.DC_LOW < af.SMALL_THRESH <= af.DC_HIGH:
        raise ValueError(
            "SNIPER.AUTOFOCUS: need DC_LOW < SMALL_THRESH <= DC_HIGH (sqrt(area), chip px), got "
            f"{af.DC_LOW}, {af.SMALL_THRESH}, {af.DC_HIGH}."
        )
    test = sniper_node.TEST.AUTOFOCUS
    if test.ENABLED:  # the per-scale lists only matter (and only must fit TEST.SCALES) when on
        from .inference.autofocus import check_autofocus_settings

        check_autofocus_settings(num_test_scales, test.PRUNE, test.THRESHOLDS, test.DILATIONS, test.MIN_CHIP_SIZES)


def _parsed(key, parse, *args):
    """``parse(*args)``, its ValueError prefixed with the config key (unless it names it)."""
    try:
        return parse(*args)
    except ValueError as e:
        if key in str(e):
            raise
        raise ValueError(f"{key}: {e}") from None


# key -> (test, what a valid value is); checked in check_sniper_config
_BOUNDS = {
    "CHIP_SIZE": (lambda v: _is_int(v) and v >= 16, "an integer >= 16 (chip px)"),
    "SEED": (lambda v: _is_int(v) and v >= -1, "an integer >= 0, or -1 (use cfg.SEED)"),
    "TRAIN.MIN_BOX_SIZE": (lambda v: _is_number(v) and v >= 0, "a number >= 0 (chip px)"),
    "TRAIN.RPN_INVALID_IOU_THRESH": (lambda v: _is_number(v) and 0 <= v <= 1, "an IoU in [0, 1]"),
    "TRAIN.DECODE_CACHE_MB": (lambda v: _is_number(v) and v >= 0, "a number of MiB >= 0 (0: no cache)"),
    "NEG.CHIPS_PER_IMAGE": (lambda v: _is_int(v) and v >= 0, "an integer >= 0 (0: no negative chips)"),
    "NEG.MIN_PROPOSALS": (lambda v: all(_is_int(x) and x >= 0 for x in v), "integers >= 0, one per training scale"),
    "MINING.RPN_EPOCHS": (lambda v: _is_number(v) and v > 0, "a number of epochs > 0"),
    "MINING.PROPOSALS_PER_SCALE": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "MINING.NMS_THRESH": (lambda v: _is_number(v) and 0 < v <= 1, "an IoU in (0, 1]"),
    "TEST.SOFT_NMS_SIGMA": (lambda v: _is_number(v) and v > 0, "a number > 0"),
    "TEST.NMS_THRESH": (lambda v: _is_number(v) and 0 < v <= 1, "an IoU in (0, 1]"),
    "TEST.SCORE_THRESH": (lambda v: _is_number(v) and 0 <= v < 1, "a score in [0, 1)"),
    "TEST.PROPOSALS_PER_SCALE": (lambda v: _is_int(v) and v >= 0, "an integer >= 0 (0: MODEL.RPN.POST_NMS_TOPK_TEST)"),
    "TEST.DETECTIONS_PER_IMAGE": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "TEST.TILE_SIZE": (lambda v: _is_int(v) and (v == 0 or v >= 32), "0 (off) or an integer >= 32 (scaled px)"),
    "TEST.TILE_OVERLAP": (lambda v: _is_int(v) and v >= 0, "an integer >= 0 (scaled px), below TEST.TILE_SIZE"),
    "TEST.TILE_ABOVE": (lambda v: _is_int(v) and v >= 0, "an integer >= 0 (scaled px; 0: tile every scale)"),
    "AUTOFOCUS.CONV_DIM": (lambda v: _is_int(v) and v >= 1, "an integer >= 1 (channels)"),
    "AUTOFOCUS.DC_LOW": (lambda v: _is_number(v) and v >= 0, "a number >= 0 (sqrt(area), chip px)"),
    "AUTOFOCUS.SMALL_THRESH": (lambda v: _is_number(v) and v > 0, "a number > 0 (sqrt(area), chip px)"),
    "AUTOFOCUS.DC_HIGH": (lambda v: _is_number(v) and v > 0, "a number > 0 (sqrt(area), chip px)"),
    "AUTOFOCUS.LOSS_WEIGHT": (lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    "AUTOFOCUS.TRAIN_CHIPS": (lambda v: isinstance(v, bool), "True or False"),
    "TEST.AUTOFOCUS.PRUNE": (lambda v: all(isinstance(x, bool) for x in v), "one True/False per test scale"),
    "TEST.AUTOFOCUS.THRESHOLDS": (lambda v: all(_is_number(x) and 0 <= x <= 1 for x in v),
                                  "probabilities in [0, 1], one per test scale"),
    "TEST.AUTOFOCUS.DILATIONS": (lambda v: all(_is_int(x) and x >= 1 for x in v),
                                 "integers >= 1 (cells; 1: no dilation), one per test scale"),
    "TEST.AUTOFOCUS.MIN_CHIP_SIZES": (lambda v: all(_is_int(x) and x >= 1 for x in v),
                                      "integers >= 1 (cells), one per test scale"),
    "TEST.AUTOFOCUS.MIN_CHIP_PROPOSALS": (lambda v: _is_int(v) and v >= 0, "an integer >= 0 (0: the scale's proposals)"),
}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_bounds(sniper_node) -> None:
    """Raise naming the key whose value is out of its bounds (``_BOUNDS``)."""
    for key, (ok, valid) in _BOUNDS.items():
        node = sniper_node
        for part in key.split("."):
            node = node[part]
        if not ok(node):
            raise ValueError(f"SNIPER.{key} must be {valid}, got {node!r}.")
