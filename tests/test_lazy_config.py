"""LazyConfig (Python) configs: configs/lazy/ build the models of their YAML twins, and train_net.py
trains and evaluates (multi-scale) from a ``.py`` config."""
import os
import sys
import types
from collections.abc import Mapping

import pytest
import torch
from detectron2.config import instantiate
from detectron2.modeling import build_model

import sniper_d2.cli.lazy_train as lazy_train
from sniper_d2 import SniperMultiScaleInference, model_zoo
from sniper_d2.data.build import sniper_loader_config
from sniper_test_data import register_dataset, tiny_records

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import train_net  # noqa: E402

NAME = "sniper_test_lazy"
TWINS = [
    ("lazy/demo/sniper_shapes_R18_FPN.py", "demo/sniper_shapes_R18_FPN.yaml"),
    ("lazy/sniper_R_50_FPN.py", "sniper_R_50_FPN_1x.yaml"),
]


def _describe(value):
    """A module attribute as plain data: containers of any kind (ListConfig, DictConfig) as
    lists / dicts, helper objects (Matcher, Box2BoxTransform, ...) by their attributes."""
    if isinstance(value, (bool, int, float, str, type(None))):
        return value
    if isinstance(value, Mapping):
        return {str(k): _describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig":
        return [_describe(v) for v in value]
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), value.dtype)
    if isinstance(value, torch.nn.Module):
        return type(value).__name__
    if hasattr(value, "__dict__"):
        return (type(value).__name__, {k: _describe(v) for k, v in vars(value).items() if not k.startswith("_")})
    return repr(value)


def settings(model):
    """Every submodule's type, public attributes and parameter/buffer shapes."""
    out = {name: type(module).__name__ for name, module in model.named_modules()}
    out.update({f"{n}.{a}": _describe(v) for n, m in model.named_modules() for a, v in vars(m).items()
                if not a.startswith("_")})
    out.update({k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()})
    return out


@pytest.mark.parametrize("lazy, yaml", TWINS)
def test_lazy_config_builds_the_model_of_its_yaml_twin(lazy, yaml):
    cfg = model_zoo.get_config(yaml)
    cfg.MODEL.DEVICE = "cpu"
    expected = settings(build_model(cfg))
    got = settings(instantiate(model_zoo.get_config(lazy).model))
    assert got.keys() == expected.keys()
    assert {k: v for k, v in got.items() if v != expected[k]} == {}
    assert expected["proposal_generator"] == "SniperRPN" and expected["roi_heads"] == "SniperStandardROIHeads"


TEST_SETTINGS = ("scales", "valid_ranges", "range_reference", "merge", "soft_nms_sigma", "nms_thresh", "score_thresh",
                 "detections_per_image", "raw_scale_detections", "proposals_per_scale", "tile_size", "tile_overlap",
                 "tile_above")


@pytest.mark.parametrize("lazy, yaml", TWINS)
def test_lazy_multi_scale_test_is_the_yaml_sniper_test(lazy, yaml):
    cfg = model_zoo.get_config(yaml)
    cfg.MODEL.DEVICE = "cpu"
    model = build_model(cfg)
    lazy_cfg = model_zoo.get_config(lazy)
    got, expected = lazy_train.inference_model(lazy_cfg, model), SniperMultiScaleInference(cfg, model)
    assert {k: _describe(getattr(got, k)) for k in TEST_SETTINGS} == {k: _describe(getattr(expected, k))
                                                                      for k in TEST_SETTINGS}


@pytest.mark.parametrize("lazy, yaml", TWINS)
def test_lazy_config_has_the_data_and_solver_of_its_yaml_twin(lazy, yaml):
    lazy, yaml = model_zoo.get_config(lazy), model_zoo.get_config(yaml)
    args = {k: v for k, v in lazy.dataloader.train.items() if k != "_target_"}
    args.update(seed=yaml.SEED, output_dir=yaml.OUTPUT_DIR)  # interpolations of the lazy train dict
    small = sniper_loader_config(**args)
    for key in ("CHIP_SIZE", "SEED", "RANGE_REFERENCE", "TRAIN", "NEG"):  # the SNIPER keys the loader reads
        assert _describe(small.SNIPER[key]) == _describe(yaml.SNIPER[key]), key
    for key in ("DATASETS.TRAIN", "SOLVER.IMS_PER_BATCH", "DATALOADER.NUM_WORKERS", "INPUT.FORMAT", "INPUT.RANDOM_FLIP",
                "MODEL.ROI_HEADS.NUM_CLASSES"):
        a, b = small, yaml
        for part in key.split("."):
            a, b = a[part], b[part]
        assert a == b, key
    assert lazy.dataloader.test.dataset.names == yaml.DATASETS.TEST[0]
    assert lazy.optimizer.lr == yaml.SOLVER.BASE_LR and lazy.optimizer.weight_decay == yaml.SOLVER.WEIGHT_DECAY
    assert lazy.optimizer.momentum == yaml.SOLVER.MOMENTUM
    assert lazy.train.max_iter == yaml.SOLVER.MAX_ITER == lazy.lr_multiplier.scheduler.num_updates
    assert list(lazy.lr_multiplier.scheduler.milestones) == list(yaml.SOLVER.STEPS)
    assert lazy.lr_multiplier.warmup_length == yaml.SOLVER.WARMUP_ITERS / yaml.SOLVER.MAX_ITER
    assert lazy.lr_multiplier.warmup_factor == yaml.SOLVER.WARMUP_FACTOR
    assert lazy.train.checkpointer.period == yaml.SOLVER.CHECKPOINT_PERIOD
    assert lazy.train.amp.enabled == yaml.SOLVER.AMP.ENABLED and lazy.train.init_checkpoint == yaml.MODEL.WEIGHTS
    clip = yaml.SOLVER.CLIP_GRADIENTS
    assert lazy.train.clip_gradients.enabled == clip.ENABLED
    if clip.ENABLED:
        assert (lazy.train.clip_gradients.clip_type, lazy.train.clip_gradients.clip_value) == (clip.CLIP_TYPE,
                                                                                               clip.CLIP_VALUE)


def _lazy_args(out, *extra):
    return train_net.argument_parser().parse_args([
        "--config-file", model_zoo.get_config_file("lazy/demo/sniper_shapes_R18_FPN.py"),
        "train.max_iter=2", f"train.output_dir={out}", "train.seed=3",
        f"dataloader.train.dataset_names={NAME}", "dataloader.train.total_batch_size=4",
        "dataloader.train.num_workers=0", "dataloader.train.sniper.CHIP_SIZE=64",
        'dataloader.train.sniper.TRAIN.SCALES=[2.0,1.0,"longest:64"]',
        "dataloader.train.sniper.TRAIN.VALID_RANGES=[[-1,16],[8,40],[32,-1]]",
        "dataloader.train.sniper.TRAIN.CHIP_STRIDE=8", "dataloader.train.sniper.TRAIN.MIN_BOX_SIZE=2",
        f"dataloader.test.dataset.names={NAME}", "dataloader.test.num_workers=0",
        'multi_scale_test.scales=[1.0,"longest:64"]', "multi_scale_test.valid_ranges=[[-1,40],[32,-1]]",
        *extra,
    ])


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    records = tiny_records(tmp_path_factory.mktemp("lazy_data"), num_images=6, seed=0)
    return register_dataset(NAME, records)


def test_train_net_trains_two_iterations_from_the_lazy_demo_and_tests_multi_scale(tiny_dataset, tmp_path, monkeypatch):
    wrapped = []
    build = lazy_train.inference_model

    def recording(cfg, model):
        wrapped.append(build(cfg, model))
        return wrapped[-1]

    monkeypatch.setattr(lazy_train, "inference_model", recording)
    out = tmp_path / "out"
    results = train_net.main(_lazy_args(out))
    assert set(results["bbox"]) >= {"AP", "AP50", "APs"}
    [inference] = wrapped
    assert isinstance(inference, SniperMultiScaleInference)
    assert [str(s) for s in inference.scales] == ["1", "longest:64"]  # ListConfig scales from the config
    assert (out / "model_final.pth").is_file() and (out / "config.yaml").is_file()
    log = (out / "log.txt").read_text()
    assert "SNIPER epoch 0:" in log and "iter: 1" in log
    # the saved config loads back as the LazyConfig that ran
    saved = lazy_train.load_config(str(out / "config.yaml"))
    assert saved.train.max_iter == 2 and saved.dataloader.train.dataset_names == NAME


def test_lazy_training_without_test_set_and_resume(tiny_dataset, tmp_path):
    out = tmp_path / "out"
    assert train_net.main(_lazy_args(out, "dataloader.evaluator=null")) == {}
    first = torch.load(out / "model_final.pth", map_location="cpu", weights_only=False)["iteration"]
    args = _lazy_args(out, "dataloader.evaluator=null", "train.max_iter=3")
    args.resume = True
    train_net.main(args)
    assert torch.load(out / "model_final.pth", map_location="cpu", weights_only=False)["iteration"] == first + 1 == 2


def test_gradient_clipping_and_single_scale_test_from_the_config():
    cfg = model_zoo.get_config("lazy/demo/sniper_shapes_R18_FPN.py")
    model = torch.nn.Linear(2, 2)
    optimizer = lazy_train.build_optimizer(cfg, model)
    assert isinstance(optimizer, torch.optim.SGD) and type(optimizer) is not torch.optim.SGD  # clipping subclass
    cfg.train.clip_gradients.enabled = False
    cfg.optimizer._target_ = torch.optim.SGD
    assert type(lazy_train.build_optimizer(cfg, model)) is torch.optim.SGD
    cfg.multi_scale_test = None
    assert lazy_train.inference_model(cfg, model) is model


def test_chips_with_stock_heads_and_mining_with_a_lazy_config_fail_clearly():
    model = instantiate(model_zoo.get_config("lazy/demo/sniper_shapes_R18_FPN.py").model)
    lazy_train.check_chip_aware_model(model)
    with pytest.raises(ValueError, match="model.proposal_generator is object.*Use L\\(SniperRPN\\)"):
        lazy_train.check_chip_aware_model(types.SimpleNamespace(proposal_generator=object()))
    stock_heads = types.SimpleNamespace(proposal_generator=model.proposal_generator, roi_heads=object())
    with pytest.raises(ValueError, match="model.roi_heads is object.*SniperStandardROIHeads"):
        lazy_train.check_chip_aware_model(stock_heads)
    args = train_net.argument_parser().parse_args([
        "--config-file", model_zoo.get_config_file("lazy/sniper_R_50_FPN.py"), "--mine-negatives"])
    with pytest.raises(ValueError, match="--mine-negatives runs with YAML configs"):
        train_net.main(args)
