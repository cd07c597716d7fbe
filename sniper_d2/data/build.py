"""Wiring the SNIPER training data pipeline into Detectron2's ``build_detection_train_loader``.

annotations (``DatasetCatalog``) -> image headers checked (:func:`check_training_images`) ->
:class:`AnnotationTable` -> :class:`ChipPlanner` (chips per epoch) -> :class:`ChipSampler` (keys,
sharded by rank) -> :class:`ChipDataset` -> :class:`SniperChipMapper` -> batches of
``SOLVER.IMS_PER_BATCH`` chips (over all ranks).

:func:`build_sniper_train_loader` takes a yacs config; :func:`build_sniper_train_loader_from_args`
is the same loader from explicit arguments, for LazyConfigs (``configs/lazy/``).
"""
import logging
import os
from collections.abc import Mapping
from typing import Optional, Sequence, Tuple, Union

from detectron2.data import DatasetCatalog, build_detection_train_loader
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.utils import comm
from detectron2.utils.events import get_event_storage

from ..chips import ChipGenerator
from ..chips.scales import is_list_like
from .annotation_table import AnnotationTable
from .chip_dataset import ChipDataset
from .chip_mapper import SniperChipMapper
from .chip_plan import ChipPlanner
from .chip_sampler import ChipSampler
from .dataset_checks import check_class_lists, check_num_classes, check_scale_order
from .image_files import check_training_images
from .negative_proposals import load_negative_proposals

__all__ = [
    "SniperTrainLoader",
    "build_chip_planner",
    "build_sniper_train_loader",
    "build_sniper_train_loader_from_args",
    "get_training_dicts",
    "sniper_loader_config",
    "sniper_seed",
]

logger = logging.getLogger(__name__)


def sniper_seed(cfg) -> int:
    """The chip-sequence seed: SNIPER.SEED, else cfg.SEED when >= 0, else 0 (same on all ranks)."""
    if cfg.SNIPER.SEED >= 0:
        return int(cfg.SNIPER.SEED)
    return int(cfg.SEED) if cfg.SEED >= 0 else 0


def get_training_dicts(name: str):
    if name not in DatasetCatalog.list():
        raise KeyError(
            f"Training dataset '{name}' (DATASETS.TRAIN) is not registered. Register it first, e.g. "
            "detectron2.data.datasets.register_coco_instances(name, {}, json_file, image_root); "
            f"registered datasets include: {', '.join(sorted(DatasetCatalog.list())[:20])}."
        )
    return DatasetCatalog.get(name)


def build_chip_planner(cfg, check_files: bool = True) -> ChipPlanner:
    """The epoch chip planner for ``cfg.DATASETS.TRAIN`` (with negative proposals if configured).

    ``check_files``: for training: read every image's header (the file exists, is an image, is not
    truncated and has the annotated size; fail naming each problem, or skip unreadable images with
    ``SNIPER.TRAIN.SKIP_UNREADABLE_IMAGES``; the result is cached per dataset under
    ``OUTPUT_DIR/sniper_image_check``), check that the datasets' classes fit
    ``MODEL.ROI_HEADS.NUM_CLASSES`` and agree, and that the scales run finest first (False:
    annotations only, for analysis).
    """
    names = list(cfg.DATASETS.TRAIN)
    datasets = [(name, get_training_dicts(name)) for name in names]
    if check_files:
        check_class_lists(names)
        check_num_classes(datasets, cfg.MODEL.ROI_HEADS.NUM_CLASSES)
    files = list(cfg.SNIPER.NEG.PROPOSAL_FILES)
    proposals = None
    if files:
        if len(files) != len(names):
            raise ValueError(
                f"SNIPER.NEG.PROPOSAL_FILES has {len(files)} files but DATASETS.TRAIN has {len(names)} "
                "datasets: give one proposal file per training dataset, in the same order."
            )
        proposals = [load_negative_proposals(f, n, d) for f, (n, d) in zip(files, datasets)]
    if check_files:
        checked = check_training_images(
            datasets,
            skip_unreadable=cfg.SNIPER.TRAIN.SKIP_UNREADABLE_IMAGES,
            cache_dir=os.path.join(cfg.OUTPUT_DIR, "sniper_image_check"),
            main_process=comm.is_main_process(),
        )
        datasets = checked.datasets
        if checked.cached:
            logger.info(
                f"Image files of {', '.join(checked.cached)}: unchanged since checked (OUTPUT_DIR/sniper_image_check)"
            )
    table = AnnotationTable(datasets, proposals)
    if check_files:
        check_scale_order(cfg.SNIPER.TRAIN.SCALES, table.sizes)
    return ChipPlanner(
        table,
        ChipGenerator.from_config(cfg),
        seed=sniper_seed(cfg),
        negatives_per_image=cfg.SNIPER.NEG.CHIPS_PER_IMAGE if files else 0,
        stride_range=cfg.SNIPER.TRAIN.CHIP_STRIDE_RANGE or None,
        focus_sizes=_focus_chip_sizes(cfg),
    )


def _focus_chip_sizes(cfg) -> Optional[Tuple[float, float]]:
    """(DC_LOW, SMALL_THRESH) of SNIPER.AUTOFOCUS when training adds AutoFocus training chips: the
    model has a FocusPixel branch (MODEL.META_ARCHITECTURE a SniperAutoFocusRCNN) and
    SNIPER.AUTOFOCUS.TRAIN_CHIPS is on; else None."""
    from ..modeling import SniperAutoFocusRCNN  # the data package does not import models otherwise

    focus = cfg.SNIPER.AUTOFOCUS
    try:
        arch = META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE)
    except KeyError:
        return None  # Detectron2 names the unknown architecture when it builds the model
    if not (focus.TRAIN_CHIPS and isinstance(arch, type) and issubclass(arch, SniperAutoFocusRCNN)):
        return None
    return float(focus.DC_LOW), float(focus.SMALL_THRESH)


class SniperTrainLoader:
    """Iterable over training batches (lists of chip dicts) that

    * starts the chip sequence where the run stands: when iterated inside Detectron2's training
      loop, it reads the current iteration from the event storage, so a resumed run continues the
      sequence of an uninterrupted one;
    * writes each new epoch's chip statistics to the event storage (``sniper/*``) and the log.
    """

    def __init__(self, data_loader, sampler: ChipSampler, chips_per_rank_iteration: int):
        self.data_loader = data_loader
        self.sampler = sampler
        self.chips_per_rank_iteration = chips_per_rank_iteration

    @staticmethod
    def _storage():
        try:
            return get_event_storage()
        except AssertionError:  # not inside a training loop
            return None

    def __iter__(self):
        storage = self._storage()
        self.sampler.start = (storage.iter if storage is not None else 0) * self.chips_per_rank_iteration
        last_epoch = -1
        for batch in self.data_loader:
            epoch = max(d["sniper_epoch"] for d in batch)
            if epoch > last_epoch:
                last_epoch = epoch
                self._log_epoch(epoch, batch[[d["sniper_epoch"] for d in batch].index(epoch)]["sniper_epoch_stats"])
            yield batch

    def _log_epoch(self, epoch: int, stats: dict) -> None:
        focus = f" + {stats['focus_chips']:.0f} AutoFocus training" if stats["focus_chips"] else ""
        logger.info(
            f"SNIPER epoch {epoch}: {stats['positive_chips']:.0f} positive{focus} + {stats['negative_chips']:.0f} "
            f"negative chips from {stats['images']:.0f} images ({stats['chips_per_image']:.2f} chips/image, "
            f"{stats['pixels_per_image'] / 1e6:.3f} Mpx/image)"
        )
        storage = self._storage()
        if storage is not None:
            storage.put_scalar("sniper/epoch", epoch, smoothing_hint=False)
            for key, value in stats.items():
                storage.put_scalar(f"sniper/{key}", value, smoothing_hint=False)


def build_sniper_train_loader(cfg, mapper=None, planner: Optional[ChipPlanner] = None) -> SniperTrainLoader:
    """SNIPER training loader; ``cfg.SOLVER.IMS_PER_BATCH`` counts chips over all ranks."""
    planner = planner or build_chip_planner(cfg)
    if len(planner.plan(0)) == 0:
        raise RuntimeError(planner.no_chips_message())
    planner.check_every_scale_has_chips(planner.plan(0))
    sampler = ChipSampler(planner)
    loader = build_detection_train_loader(
        cfg,
        mapper=mapper or SniperChipMapper(cfg, True),
        dataset=ChipDataset(planner),
        sampler=sampler,
        aspect_ratio_grouping=False,  # keeps batches in sampler order (exact resume)
    )
    return SniperTrainLoader(loader, sampler, cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size())


def _plain(value):
    """``value`` with mappings as dicts and list-likes as lists, all the way down (omegaconf
    ``DictConfig`` / ``ListConfig`` of a LazyConfig included), for yacs."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if is_list_like(value):
        return [_plain(item) for item in value]
    return value


def sniper_loader_config(
    *,
    dataset_names: Union[str, Sequence[str]],
    total_batch_size: int,
    num_classes: int,
    sniper: Optional[Mapping] = None,
    num_workers: int = 0,
    image_format: str = "BGR",
    random_flip: str = "horizontal",
    seed: int = -1,
    output_dir: str = "./output",
):
    """The small yacs config :func:`build_sniper_train_loader` reads, from explicit arguments:
    Detectron2's defaults and SNIPER's (:func:`~sniper_d2.add_sniper_config`) with these set, checked
    by :func:`~sniper_d2.check_sniper_config` (errors name the key).

    Args:
        dataset_names: registered training dataset(s) (``DATASETS.TRAIN``).
        total_batch_size: chips per iteration over all processes (``SOLVER.IMS_PER_BATCH``).
        num_classes: the model's classes; the datasets' must fit (``MODEL.ROI_HEADS.NUM_CLASSES``).
        sniper: overrides of the ``SNIPER`` keys, nested as in YAML, e.g. ``{"CHIP_SIZE": 128,
            "TRAIN": {"SCALES": [2.0, 1.0, "longest:128"]}}`` (a dict or a LazyConfig's ``DictConfig``);
            unknown keys fail naming them.
        num_workers: data-loader processes per training process (``DATALOADER.NUM_WORKERS``).
        image_format: ``INPUT.FORMAT``; random_flip: ``INPUT.RANDOM_FLIP``.
        seed: ``SEED``: the chip sequence's seed unless ``sniper`` sets ``SEED``.
        output_dir: ``OUTPUT_DIR``, where the image check caches its results
            (``sniper_image_check``).
    """
    from detectron2.config import CfgNode, get_cfg

    from ..config import add_sniper_config, check_sniper_config

    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.DATASETS.TRAIN = (dataset_names,) if isinstance(dataset_names, str) else tuple(dataset_names)
    cfg.DATASETS.TEST = ()
    cfg.SOLVER.IMS_PER_BATCH = int(total_batch_size)
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = int(num_classes)
    cfg.DATALOADER.NUM_WORKERS = int(num_workers)
    cfg.INPUT.FORMAT = image_format
    cfg.INPUT.RANDOM_FLIP = random_flip
    cfg.SEED = int(seed)
    cfg.OUTPUT_DIR = str(output_dir)
    if sniper:
        cfg.merge_from_other_cfg(CfgNode({"SNIPER": _plain(sniper)}))
    # The model's keys (heads, device, AMP) belong to the LazyConfig's model, not to this node:
    # the check sees neutral values for them and checks the SNIPER and dataset keys.
    checked = cfg.clone()
    checked.SNIPER.TRAIN.ENABLED = False
    checked.MODEL.DEVICE = "cpu"
    checked.SOLVER.AMP.ENABLED = False
    check_sniper_config(checked)
    cfg.freeze()
    return cfg


def build_sniper_train_loader_from_args(**kwargs) -> SniperTrainLoader:
    """:func:`build_sniper_train_loader` from explicit arguments (those of
    :func:`sniper_loader_config`), for LazyConfigs::

        dataloader.train = L(build_sniper_train_loader_from_args)(
            dataset_names="coco_2017_train", total_batch_size=128, num_classes=80,
            sniper=dict(CHIP_SIZE=512, TRAIN=dict(SCALES=[3.0, 1.667, "longest:512"])))
    """
    return build_sniper_train_loader(sniper_loader_config(**kwargs))
