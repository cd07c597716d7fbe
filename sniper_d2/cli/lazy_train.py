"""Training and evaluation from a Detectron2 LazyConfig (a ``.py`` config such as
``configs/lazy/sniper_R_50_FPN.py``): what ``sniper-train`` / ``train_net.py`` run for ``.py`` files.

The config holds Detectron2's LazyConfig keys:

* ``model``: e.g. a ``GeneralizedRCNN`` with ``SniperRPN`` and ``SniperStandardROIHeads``;
* ``dataloader.train``: e.g. :func:`~sniper_d2.data.build.build_sniper_train_loader_from_args`
  (SNIPER chips); ``dataloader.test`` / ``dataloader.evaluator``: Detectron2's test loader (images
  at original resolution for the multi-scale test) and evaluator; ``dataloader.evaluator = None``
  (override ``dataloader.evaluator=null``): no evaluation;
* ``optimizer`` (``params.model`` is set to the model before instantiating, as Detectron2 does),
  ``lr_multiplier`` (a ``ParamScheduler``);
* ``train``: ``output_dir``, ``init_checkpoint``, ``max_iter``, ``device``, ``amp.enabled``,
  ``ddp`` (``create_ddp_model`` arguments), ``checkpointer`` (``PeriodicCheckpointer``
  arguments), ``eval_period``, ``log_period``, ``seed``, and SNIPER's
  ``clip_gradients = dict(enabled, clip_type, clip_value, norm_type)`` (the keys of
  ``SOLVER.CLIP_GRADIENTS``, applied with Detectron2's ``maybe_add_gradient_clipping``);

plus SNIPER's ``multi_scale_test``: ``L(SniperMultiScaleInference)(scales=..., ...)`` without its
``model`` (set to the trained model before each evaluation); absent or None: Detectron2's
single-scale inference.

As with YAML configs, chips train only with SNIPER's heads (checked before training), ``train.seed
>= 0`` makes the random draws depend on (seed, rank, iteration) only, and checkpoints are written
atomically. ``--resume`` continues from ``train.output_dir``'s last checkpoint (no run stamp: that
and ``--mine-negatives`` are for YAML configs).
"""
import logging

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import CfgNode, LazyConfig, get_cfg, instantiate
from detectron2.engine import AMPTrainer, SimpleTrainer, create_ddp_model, default_setup, default_writers, hooks
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.solver.build import maybe_add_gradient_clipping
from detectron2.utils import comm
from detectron2.utils.registry import locate

import sniper_d2  # noqa: F401  (registers SNIPER components and built-in datasets)
from sniper_d2.data import register_coco_datasets
from sniper_d2.data.build import SniperTrainLoader
from sniper_d2.engine.atomic_files import make_checkpoint_writes_atomic
from sniper_d2.engine.iteration_seeds import BUILD, IterationSeededLoader, seed_global_rngs
from sniper_d2.modeling import SniperProposalLabels, SniperRPN


__all__ = ["build_optimizer", "check_chip_aware_model", "do_test", "do_train", "inference_model", "load_config", "main"]

logger = logging.getLogger("detectron2")


def load_config(config_file: str, overrides=()):
    """The LazyConfig in ``config_file`` with Detectron2's ``key=value`` ``overrides`` applied."""
    cfg = LazyConfig.load(config_file)
    return LazyConfig.apply_overrides(cfg, list(overrides))


def inference_model(cfg, model):
    """``model`` wrapped in the config's ``multi_scale_test`` (SniperMultiScaleInference), or
    ``model`` itself when the config has none (single-scale)."""
    spec = cfg.get("multi_scale_test", None)
    if spec is None:
        return model
    spec.model = model  # as Detectron2's optimizer.params.model: the object is set, then instantiated
    return instantiate(spec)


def do_test(cfg, model) -> dict:
    """Evaluate ``model`` on ``dataloader.test`` with ``dataloader.evaluator`` (multi-scale when the
    config has ``multi_scale_test``); ``{}`` when either is None."""
    if cfg.dataloader.get("evaluator", None) is None or cfg.dataloader.get("test", None) is None:
        logger.info("dataloader.evaluator (or dataloader.test) is None: no evaluation.")
        return {}
    results = inference_on_dataset(
        inference_model(cfg, model), instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator)
    )
    if comm.is_main_process():
        print_csv_format(results)
    return results


def check_chip_aware_model(model) -> None:
    """Chips label boxes valid or invalid; only SNIPER's heads read that (stock ones would train
    invalid boxes as positives): raise naming the head to use otherwise."""
    generator = getattr(model, "proposal_generator", None)
    if not isinstance(generator, SniperRPN):
        raise ValueError(
            f"dataloader.train gives SNIPER chips, but model.proposal_generator is {type(generator).__name__}, "
            "which ignores SNIPER's chip labels: boxes outside a chip's valid range would train as positives. "
            "Use L(SniperRPN)(...) (sniper_d2.modeling), or Detectron2's build_detection_train_loader."
        )
    heads = getattr(model, "roi_heads", None)
    if heads is not None and not isinstance(heads, SniperProposalLabels):
        raise ValueError(
            f"dataloader.train gives SNIPER chips, but model.roi_heads is {type(heads).__name__}, which ignores "
            "SNIPER's chip labels. Use L(SniperStandardROIHeads)(...) (FPN) or L(SniperRes5ROIHeads)(...) (C4)."
        )


def _gradient_clipping_config(clip) -> CfgNode:
    """``SOLVER.CLIP_GRADIENTS`` of a Detectron2 config from ``train.clip_gradients``."""
    cfg = get_cfg()
    cfg.SOLVER.CLIP_GRADIENTS.merge_from_other_cfg(CfgNode({k.upper(): v for k, v in clip.items()}))
    return cfg


def build_optimizer(cfg, model):
    """The config's optimizer for ``model`` (``optimizer.params.model`` set), with
    ``train.clip_gradients`` applied through Detectron2's ``maybe_add_gradient_clipping``."""
    cfg.optimizer.params.model = model
    clip = cfg.train.get("clip_gradients", None)
    if clip is not None and clip.get("enabled", False):
        target = cfg.optimizer._target_
        optimizer_class = locate(target) if isinstance(target, str) else target
        cfg.optimizer._target_ = maybe_add_gradient_clipping(_gradient_clipping_config(clip), optimizer_class)
    return instantiate(cfg.optimizer)


def do_train(args, cfg) -> dict:
    """Train as ``cfg.train`` says (resuming with ``args.resume``); returns the last evaluation's
    results (``{}`` without evaluation)."""
    seed = int(cfg.train.get("seed", -1))
    if seed >= 0:  # the model's initialisation does not depend on what ran before in this process
        seed_global_rngs(seed, comm.get_rank(), BUILD)
    model = instantiate(cfg.model)
    model.to(cfg.train.device)
    optimizer = build_optimizer(cfg, model)
    train_loader = instantiate(cfg.dataloader.train)
    if isinstance(train_loader, SniperTrainLoader):
        check_chip_aware_model(model)
    if seed >= 0:
        train_loader = IterationSeededLoader(train_loader, seed, comm.get_rank())
    ddp = dict(cfg.train.get("ddp", {}))
    if not str(cfg.train.device).startswith("cuda"):
        ddp["device_ids"] = None  # CPU processes (gloo): torch rejects device_ids for CPU modules
    model = create_ddp_model(model, **ddp)
    trainer = (AMPTrainer if cfg.train.amp.enabled else SimpleTrainer)(model, train_loader, optimizer)
    checkpointer = DetectionCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    make_checkpoint_writes_atomic(checkpointer)
    results = {}

    def test_and_keep():
        results.clear()
        results.update(do_test(cfg, model))
        return results

    trainer.register_hooks([
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if comm.is_main_process() else None,
        hooks.EvalHook(cfg.train.eval_period, test_and_keep),
        hooks.PeriodicWriter(default_writers(cfg.train.output_dir, cfg.train.max_iter), period=cfg.train.log_period)
        if comm.is_main_process() else None,
    ])
    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=args.resume)
    start_iter = trainer.iter + 1 if args.resume and checkpointer.has_checkpoint() else 0
    trainer.train(start_iter, cfg.train.max_iter)
    return dict(results)


def main(args):
    """Train (or with ``--eval-only`` evaluate ``train.init_checkpoint``) the LazyConfig
    ``args.config_file`` with ``args.opts`` as ``key=value`` overrides."""
    if args.mine_negatives:
        raise ValueError(
            "--mine-negatives runs with YAML configs (configs/*.yaml); with a LazyConfig, mine with the "
            "matching YAML config and pass the proposal files as dataloader.train.sniper.NEG.PROPOSAL_FILES."
        )
    register_coco_datasets(args.register_coco)
    cfg = load_config(args.config_file, args.opts)
    default_setup(cfg, args)  # logging, train.output_dir/config.yaml, seeds
    if args.eval_only:
        model = instantiate(cfg.model)
        model.to(cfg.train.device)
        DetectionCheckpointer(model).load(cfg.train.init_checkpoint)
        return do_test(cfg, model)
    return do_train(args, cfg)
