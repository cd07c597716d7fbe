"""CPU demo as a LazyConfig: ../../demo/sniper_shapes_R18_FPN.yaml written with LazyCall (SNIPER on
the built-in synthetic shapes dataset, from random initialisation; a ResNet-18 FPN with thin FPN and
box head; chips of 128 px at scales 2.0, 1.0 and longest side 128).

    sniper-train --config-file configs/lazy/demo/sniper_shapes_R18_FPN.py
    sniper-train --config-file configs/lazy/demo/sniper_shapes_R18_FPN.py train.max_iter=20 \\
        train.output_dir=/tmp/demo dataloader.evaluator=null

Outputs go to ./output/demo_lazy (relative to the current directory, as Detectron2's ./output);
the dataset is generated under ./datasets (or $SNIPER_D2_DATASETS) on first use.
"""
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone import ResNet
from detectron2.modeling.backbone.resnet import BasicBlock

from ..sniper_R_50_FPN import dataloader, lr_multiplier, model, multi_scale_test, optimizer, train

# ResNet-18 with a 32-channel stem (RESNETS.DEPTH 18, STEM_OUT_CHANNELS 32, RES2_OUT_CHANNELS 64)
model.backbone.bottom_up.stem.out_channels = 32
model.backbone.bottom_up.stages = [
    L(ResNet.make_stage)(block_class=BasicBlock, num_blocks=2, stride_per_block=[stride, 1],
                         in_channels=in_channels, out_channels=out_channels, norm="BN")
    for stride, in_channels, out_channels in ((1, 32, 64), (2, 64, 128), (2, 128, 256), (2, 256, 512))
]
model.backbone.out_channels = 64
model.backbone.norm = "BN"  # from random init, un-normalised FPN outputs blow up the heads
model.proposal_generator.anchor_generator.sizes = [[16], [32], [64], [128], [256]]
model.proposal_generator.batch_size_per_image = 128
model.proposal_generator.pre_nms_topk = (1000, 1000)
model.proposal_generator.post_nms_topk = (300, 300)
model.roi_heads.num_classes = 3
model.roi_heads.batch_size_per_image = 64
model.roi_heads.box_head.input_shape = ShapeSpec(channels=64, height=7, width=7)
model.roi_heads.box_head.fc_dims = [256, 256]
model.roi_heads.box_predictor.input_shape = ShapeSpec(channels=256)
model.roi_heads.box_predictor.test_topk_per_image = 100

dataloader.train.dataset_names = "sniper_shapes_train"
dataloader.train.total_batch_size = 16
dataloader.train.num_workers = 1
dataloader.train.sniper = dict(
    CHIP_SIZE=128,
    SEED=0,
    TRAIN=dict(
        SCALES=[2.0, 1.0, "longest:128"],
        VALID_RANGES=[[-1, 32], [24, 96], [80, -1]],
        CHIP_STRIDE=16,
        MIN_BOX_SIZE=4,
    ),
    NEG=dict(MIN_PROPOSALS=[10, 6, 4]),
)
dataloader.test.dataset.names = "sniper_shapes_val"
dataloader.test.num_workers = 1

multi_scale_test.scales = [2.0, 1.0, "longest:160"]
multi_scale_test.valid_ranges = [[-1, 40], [20, 120], [64, -1]]
multi_scale_test.detections_per_image = 100

optimizer.lr = 0.05

# 240 iterations, lr x0.1 at 190, warm-up over 20
lr_multiplier.scheduler.milestones = [190]
lr_multiplier.scheduler.num_updates = 240
lr_multiplier.warmup_length = 20 / 240

train.output_dir = "output/demo_lazy"
train.init_checkpoint = ""
train.max_iter = 240
train.device = "cpu"
train.amp.enabled = False
train.checkpointer.period = 100000
train.clip_gradients = dict(enabled=True, clip_type="norm", clip_value=5.0)
