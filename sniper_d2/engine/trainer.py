"""``SniperTrainer``: Detectron2's DefaultTrainer with the SNIPER chip loader and multi-scale test."""
import logging
import os
import weakref

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import build_detection_test_loader
from detectron2.engine import AMPTrainer, DefaultTrainer, SimpleTrainer, TrainerBase
from detectron2.evaluation import COCOEvaluator
from detectron2.utils import comm
from torch.nn.parallel import DistributedDataParallel

from ..data import build_sniper_train_loader
from ..inference import build_inference_model, build_test_mapper
from .atomic_files import make_checkpoint_writes_atomic
from .iteration_seeds import BUILD, IterationSeededLoader, seed_global_rngs

__all__ = ["SniperTrainer"]

logger = logging.getLogger(__name__)


class SniperTrainer(DefaultTrainer):
    """DefaultTrainer whose training data are SNIPER chips (``SNIPER.TRAIN.ENABLED``) and whose
    evaluation runs the multi-scale pyramid (``SNIPER.TEST.MULTI_SCALE``).

    It also trains with several CPU processes (gloo): stock DefaultTrainer hands
    ``device_ids=[local_rank]`` to DistributedDataParallel, which torch rejects for CPU modules.

    Re-running is safe: checkpoints and ``last_checkpoint`` are written atomically (a kill during
    a save leaves the previous ones), and with ``SEED >= 0`` the random draws depend on (seed,
    rank, iteration) only (:mod:`.iteration_seeds`), so a resumed run ends with the weights of an
    uninterrupted one.
    """

    def __init__(self, cfg):
        if cfg.SEED >= 0:  # the model's initialisation does not depend on what ran before in this process
            seed_global_rngs(cfg.SEED, comm.get_rank(), BUILD)
        if comm.get_world_size() == 1 or torch.cuda.is_available():
            super().__init__(cfg)
            make_checkpoint_writes_atomic(self.checkpointer)
            return
        # Multi-process CPU: the same construction as DefaultTrainer with device_ids=None.
        TrainerBase.__init__(self)
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        model = DistributedDataParallel(model, device_ids=None, broadcast_buffers=False)
        trainer_cls = AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer
        self._trainer = trainer_cls(model, data_loader, optimizer)
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = DetectionCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        make_checkpoint_writes_atomic(self.checkpointer)
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    def train(self):
        """Train, evaluate (DefaultTrainer; :meth:`test` logs the AP), then log the chips of the last epoch."""
        results = super().train()
        if comm.is_main_process():
            self._log_summary()
        return results

    def _log_summary(self):
        histories = self.storage.histories()
        if "sniper/epoch" in histories:
            stats = {k: histories[f"sniper/{k}"].latest() for k in (
                "epoch", "positive_chips", "negative_chips", "focus_chips", "chips_per_image", "pixels_per_image")}
            focus = f"{stats['focus_chips']:.0f} AutoFocus training, " if stats["focus_chips"] else ""
            logger.info(
                f"SNIPER chips (epoch {stats['epoch']:.0f}): {stats['positive_chips']:.0f} positive, {focus}"
                f"{stats['negative_chips']:.0f} negative, {stats['chips_per_image']:.2f} chips/image, "
                f"{stats['pixels_per_image'] / 1e6:.3f} Mpx/image"
            )

    @classmethod
    def build_train_loader(cls, cfg):
        """SNIPER chips (or Detectron2's loader); with ``SEED >= 0`` seeded per iteration."""
        if cfg.SNIPER.TRAIN.ENABLED:
            loader = build_sniper_train_loader(cfg)
        else:
            loader = super().build_train_loader(cfg)
        if cfg.SEED >= 0:
            loader = IterationSeededLoader(loader, cfg.SEED, comm.get_rank())
        return loader

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_detection_test_loader(cfg, dataset_name, mapper=build_test_mapper(cfg))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference")
        return COCOEvaluator(dataset_name, output_dir=output_folder)

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        """Evaluate ``model`` on ``DATASETS.TEST`` (multi-scale when ``SNIPER.TEST.MULTI_SCALE``);
        logs one "SNIPER result on <dataset>" line per dataset, in training and ``--eval-only``."""
        if isinstance(model, DistributedDataParallel):
            model = model.module
        results = super().test(cfg, build_inference_model(cfg, model), evaluators)
        if comm.is_main_process():
            for dataset_name, metrics in _per_dataset(results, cfg.DATASETS.TEST).items():
                if "bbox" in metrics:
                    logger.info(f"SNIPER result on {dataset_name} ({_test_kind(cfg)}): {_ap_line(metrics['bbox'])}")
        return results


def _per_dataset(results, test_names) -> dict:
    """``{dataset: {task: metrics}}`` from DefaultTrainer.test's results, which it flattens to
    ``{task: metrics}`` when there is one test dataset."""
    if len(test_names) == 1 and test_names[0] not in results:
        return {test_names[0]: results}
    return results


def _test_kind(cfg) -> str:
    if not cfg.SNIPER.TEST.MULTI_SCALE:
        return f"single-scale test, {cfg.INPUT.MIN_SIZE_TEST}/{cfg.INPUT.MAX_SIZE_TEST} px"
    scales = ", ".join(str(s) for s in cfg.SNIPER.TEST.SCALES)
    return f"multi-scale test: {scales}"


def _ap_line(metrics) -> str:
    """COCO box metrics as one line (NaN: no object of that size in the dataset)."""
    return " ".join(f"{k} {metrics[k]:.1f}" for k in ("AP", "AP50", "AP75", "APs", "APm", "APl") if k in metrics)
