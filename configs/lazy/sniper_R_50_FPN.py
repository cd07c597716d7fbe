"""SNIPER Faster R-CNN R-50-FPN on COCO as a Detectron2 LazyConfig: the model, chips, solver and
multi-scale test of ../sniper_R_50_FPN_1x.yaml (with ../Base-SNIPER-FPN.yaml, where each value is
explained), written with LazyCall.

    sniper-train --config-file configs/lazy/sniper_R_50_FPN.py --num-gpus 8
    sniper-train --config-file configs/lazy/sniper_R_50_FPN.py --eval-only train.init_checkpoint=model.pth
    python train_net.py --config-file configs/lazy/sniper_R_50_FPN.py train.max_iter=1000 \\
        'dataloader.train.sniper.NEG.PROPOSAL_FILES=["output/negative_mining/proposals_coco_2017_train.pkl"]'

Negative chips: mine them with the YAML config (``train_net.py --config-file
configs/sniper_R_50_FPN_1x.yaml --mine-negatives``) or bring your own proposal files, then set
``dataloader.train.sniper.NEG.PROPOSAL_FILES`` (one file per training dataset).
"""
import torch
from detectron2.config import LazyCall as L
from detectron2.data import DatasetMapper, build_detection_test_loader, get_detection_dataset_dicts
from detectron2.evaluation import COCOEvaluator
from detectron2.layers import ShapeSpec
from detectron2.modeling.anchor_generator import DefaultAnchorGenerator
from detectron2.modeling.backbone import FPN, BasicStem, ResNet
from detectron2.modeling.backbone.fpn import LastLevelMaxPool
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.matcher import Matcher
from detectron2.modeling.meta_arch import GeneralizedRCNN
from detectron2.modeling.poolers import ROIPooler
from detectron2.modeling.proposal_generator import StandardRPNHead
from detectron2.modeling.roi_heads import FastRCNNConvFCHead, FastRCNNOutputLayers
from detectron2.solver import WarmupParamScheduler
from detectron2.solver.build import get_default_optimizer_params
from fvcore.common.param_scheduler import MultiStepParamScheduler

from sniper_d2 import SniperMultiScaleInference, SniperRPN, SniperStandardROIHeads
from sniper_d2.data.build import build_sniper_train_loader_from_args

model = L(GeneralizedRCNN)(
    backbone=L(FPN)(
        bottom_up=L(ResNet)(
            stem=L(BasicStem)(in_channels=3, out_channels=64, norm="BN"),
            stages=L(ResNet.make_default_stages)(depth=50, stride_in_1x1=True, norm="BN"),
            out_features=["res2", "res3", "res4", "res5"],
            freeze_at=2,  # stem and res2 frozen (FrozenBN), as Detectron2's FREEZE_AT 2
        ),
        in_features="${.bottom_up.out_features}",
        out_channels=256,
        top_block=L(LastLevelMaxPool)(),
    ),
    proposal_generator=L(SniperRPN)(
        in_features=["p2", "p3", "p4", "p5", "p6"],
        head=L(StandardRPNHead)(in_channels="${...backbone.out_channels}", num_anchors=3),
        anchor_generator=L(DefaultAnchorGenerator)(
            sizes=[[32], [64], [128], [256], [512]],
            aspect_ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64],
            offset=0.0,
        ),
        # the authors' anchor labels: IoU < 0.4 negative, >= 0.5 positive
        anchor_matcher=L(Matcher)(thresholds=[0.4, 0.5], labels=[0, -1, 1], allow_low_quality_matches=True),
        box2box_transform=L(Box2BoxTransform)(weights=[1.0, 1.0, 1.0, 1.0]),
        batch_size_per_image=256,
        positive_fraction=0.5,
        pre_nms_topk=(2000, 1000),
        post_nms_topk=(300, 1000),  # 300 proposals per chip, all of which reach the box head
        nms_thresh=0.7,
        anchor_boundary_thresh=32,
        smooth_l1_beta=1.0,
        loss_weight={"loss_rpn_cls": 1.0, "loss_rpn_loc": 3.0},
        # SNIPER: anchors overlapping an invalid box by more than this IoU are ignored
        invalid_iou_thresh=0.3,
        expects_chip_targets=True,
        expects_multi_scale_test=True,
    ),
    roi_heads=L(SniperStandardROIHeads)(
        num_classes=80,
        batch_size_per_image=512,
        positive_fraction=0.25,
        proposal_matcher=L(Matcher)(thresholds=[0.5], labels=[0, 1], allow_low_quality_matches=False),
        box_in_features=["p2", "p3", "p4", "p5"],
        box_pooler=L(ROIPooler)(
            output_size=7,
            scales=(1.0 / 4, 1.0 / 8, 1.0 / 16, 1.0 / 32),
            sampling_ratio=0,
            pooler_type="ROIAlignV2",
        ),
        box_head=L(FastRCNNConvFCHead)(
            input_shape=ShapeSpec(channels=256, height=7, width=7),
            conv_dims=[],
            fc_dims=[1024, 1024],
        ),
        box_predictor=L(FastRCNNOutputLayers)(
            input_shape=ShapeSpec(channels=1024),
            box2box_transform=L(Box2BoxTransform)(weights=(10, 10, 5, 5)),
            num_classes="${..num_classes}",
            cls_agnostic_bbox_reg=True,
            smooth_l1_beta=1.0,
            loss_weight={"loss_box_reg": 1.6},
            test_score_thresh=0.01,  # per test scale, before the cross-scale merge
            test_nms_thresh=0.5,
            test_topk_per_image=300,
        ),
    ),
    pixel_mean=[103.530, 116.280, 123.675],
    pixel_std=[1.0, 1.0, 1.0],
    input_format="BGR",
)

dataloader = dict(
    # SNIPER chips; `sniper` holds SNIPER keys as in YAML (add_sniper_config's defaults otherwise)
    train=L(build_sniper_train_loader_from_args)(
        dataset_names="coco_2017_train",
        total_batch_size=128,  # chips per iteration, over all processes
        num_classes="${model.roi_heads.num_classes}",
        num_workers=4,
        image_format="${model.input_format}",
        random_flip="horizontal",
        seed="${train.seed}",
        output_dir="${train.output_dir}",
        sniper=dict(
            CHIP_SIZE=512,
            TRAIN=dict(
                SCALES=[3.0, 1.667, "longest:512"],
                VALID_RANGES=[[-1, 80], [32, 150], [120, -1]],
                CHIP_STRIDE=32,
            ),
            NEG=dict(PROPOSAL_FILES=[], CHIPS_PER_IMAGE=2, MIN_PROPOSALS=[25, 10, 10]),
        ),
    ),
    # whole images at original resolution: the multi-scale test resizes them per scale
    test=L(build_detection_test_loader)(
        dataset=L(get_detection_dataset_dicts)(names="coco_2017_val", filter_empty=False),
        mapper=L(DatasetMapper)(is_train=False, augmentations=[], image_format="${model.input_format}"),
        num_workers=4,
    ),
    evaluator=L(COCOEvaluator)(dataset_name="${..test.dataset.names}", output_dir="${train.output_dir}/inference"),
)

# SNIPER's test (SNIPER.TEST.*): every scale with its valid range, merged by soft-NMS. `model` is
# set to the trained model when evaluating; None here means Detectron2's single-scale test.
multi_scale_test = L(SniperMultiScaleInference)(
    scales=[[1400, 2000], [800, 1280], [480, 512]],
    valid_ranges=[[-1, 90], [32, 180], [75, -1]],
    range_reference=None,
    merge="soft_nms",
    soft_nms_sigma=0.55,
    nms_thresh=0.5,
    score_thresh=0.001,
    raw_scale_detections=True,  # the authors': per scale no NMS and no cap before the merge
    proposals_per_scale=300,
    detections_per_image=200,
    tile_size=0,  # > 0: huge images in tiles of this many scaled px (SNIPER.TEST.TILE_*)
    tile_overlap=256,
    tile_above=0,
)

optimizer = L(torch.optim.SGD)(
    params=L(get_default_optimizer_params)(weight_decay_norm=0.0),  # params.model: set when training
    lr=0.12,
    momentum=0.9,
    weight_decay=0.0000125,
)

# lr x0.1 at 5.33 of 7 epochs after a linear warm-up over 1000 iterations from 1/30 of the lr; the
# milestones count iterations of a 98300-iteration run, the schedule stretches with train.max_iter
lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(values=[1.0, 0.1], milestones=[74900], num_updates=98300),
    warmup_length=1000 / 98300,
    warmup_method="linear",
    warmup_factor=0.0333333,
)

train = dict(
    output_dir="./output",
    init_checkpoint="detectron2://ImageNetPretrained/MSRA/R-50.pkl",
    max_iter=98300,
    device="cuda",
    amp=dict(enabled=True),
    ddp=dict(broadcast_buffers=False, find_unused_parameters=False, fp16_compression=False),
    checkpointer=dict(period=2000, max_to_keep=100),
    eval_period=0,  # 0: evaluate once, at the end
    log_period=20,
    seed=-1,  # >= 0: every random draw depends on (seed, rank, iteration) only
    clip_gradients=dict(enabled=False),  # SOLVER.CLIP_GRADIENTS keys in lower case
)
