"""build_sniper_train_loader_from_args (LazyConfigs): the yacs path's loader from explicit
arguments, SNIPER keys given as a (Dict/List)Config as in YAML, errors naming the key."""
import numpy as np
import pytest
from detectron2.utils.events import EventStorage
from omegaconf import OmegaConf

from sniper_d2.data.build import build_sniper_train_loader, build_sniper_train_loader_from_args, sniper_loader_config

from sniper_test_data import small_sniper_cfg

# small_sniper_cfg's settings, written as a LazyConfig holds them (nested DictConfig / ListConfig)
LAZY = OmegaConf.create({
    "dataset_names": "sniper_test_tiny",
    "total_batch_size": 4,
    "num_classes": 80,
    "num_workers": 0,
    "sniper": {"CHIP_SIZE": 64, "SEED": 7, "TRAIN": {
        "SCALES": [2.0, 1.0, "longest:64"], "VALID_RANGES": [[-1, 16], [8, 40], [32, -1]],
        "CHIP_STRIDE": 8, "MIN_BOX_SIZE": 2}},
})


def _batches(loader, n):
    np.random.seed(0)  # the flips draw from NumPy's global generator
    with EventStorage(0):
        it = iter(loader)
        return [[(d["image_id"], d["sniper_chip"].scale_index, d["sniper_chip"].origin, d["image"].shape,
                  d["instances"].gt_boxes.tensor.tolist()) for d in next(it)] for _ in range(n)]


def test_loader_from_args_gives_the_chips_of_the_yacs_loader(tiny_dataset, tmp_path):
    cfg = small_sniper_cfg()
    cfg.OUTPUT_DIR = str(tmp_path / "yacs")
    args = dict(LAZY, output_dir=str(tmp_path / "lazy"))
    assert _batches(build_sniper_train_loader_from_args(**args), 6) == _batches(build_sniper_train_loader(cfg), 6)
    small = sniper_loader_config(**args)
    assert small.SNIPER.TRAIN.SCALES == (2.0, 1.0, "longest:64") and small.DATASETS.TRAIN == ("sniper_test_tiny",)
    assert small.is_frozen()


@pytest.mark.parametrize(
    "sniper, error, message",
    [
        ({"TRAIN": {"SCALE": [1.0]}}, KeyError, "SNIPER.TRAIN.SCALE"),
        ({"CHIP_SIZE": 8}, ValueError, "SNIPER.CHIP_SIZE must be an integer >= 16"),
        ({"TRAIN": {"VALID_RANGES": [[-1, 16]]}}, ValueError, "SNIPER.TRAIN.VALID_RANGES has 1 ranges"),
    ],
)
def test_bad_sniper_keys_fail_naming_the_key(tiny_dataset, tmp_path, sniper, error, message):
    args = dict(LAZY, output_dir=str(tmp_path))
    args["sniper"] = OmegaConf.merge(LAZY.sniper, sniper)
    with pytest.raises(error, match=message):
        sniper_loader_config(**args)


def test_unregistered_dataset_is_named(tmp_path):
    with pytest.raises(KeyError, match="DATASETS.TRAIN names 'nowhere'"):
        sniper_loader_config(**dict(LAZY, dataset_names=["nowhere"], output_dir=str(tmp_path)))
