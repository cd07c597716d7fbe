"""sniper_d2.model_zoo: every shipped config by name (YAML with the SNIPER keys, LazyConfigs),
``_BASE_`` resolved inside whichever copy is read, clear errors for unknown names."""
import glob
import os
import shutil

import pytest
from detectron2.config import CfgNode
from omegaconf import DictConfig

import sniper_d2.model_zoo.config_files as config_files
from sniper_d2 import model_zoo
from sniper_d2.model_zoo.__main__ import main as model_zoo_main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_CONFIGS = sorted(
    os.path.relpath(p, os.path.join(REPO, "configs")).replace(os.sep, "/")
    for pattern in ("**/*.yaml", "**/*.py")
    for p in glob.glob(os.path.join(REPO, "configs", pattern), recursive=True)
)


def test_lists_every_config_of_the_repository():
    assert model_zoo.list_configs() == REPO_CONFIGS
    assert {"sniper_R_50_FPN_1x.yaml", "demo/sniper_shapes_R18_FPN.yaml", "lazy/sniper_R_50_FPN.py",
            "lazy/demo/sniper_shapes_R18_FPN.py"} <= set(REPO_CONFIGS)


@pytest.mark.parametrize("name", [n for n in REPO_CONFIGS if n.endswith(".yaml")])
def test_yaml_configs_come_with_the_sniper_keys_and_their_base(name):
    cfg = model_zoo.get_config(name)
    assert isinstance(cfg, CfgNode) and not cfg.is_frozen()
    assert model_zoo.get_config_file(name) == os.path.join(model_zoo.config_root(), name)
    assert cfg.MODEL.META_ARCHITECTURE in ("GeneralizedRCNN", "ProposalNetwork", "SniperAutoFocusRCNN")
    assert cfg.SNIPER.TRAIN.SCALES and cfg.SNIPER.TEST.SCALES


@pytest.mark.parametrize("name", [n for n in REPO_CONFIGS if n.endswith(".py")])
def test_lazy_configs_load_with_their_keys(name):
    cfg = model_zoo.get_config(name)
    assert isinstance(cfg, DictConfig)
    assert {"model", "dataloader", "optimizer", "lr_multiplier", "train", "multi_scale_test"} <= set(cfg)


def test_an_installed_copy_resolves_base_inside_itself(tmp_path, monkeypatch):
    copy = tmp_path / "installed" / "configs"
    shutil.copytree(os.path.join(REPO, "configs"), copy)
    (copy / "Base-SNIPER-FPN.yaml").write_text(
        (copy / "Base-SNIPER-FPN.yaml").read_text().replace("CHIP_SIZE: 512", "CHIP_SIZE: 320"))
    monkeypatch.setattr(config_files, "_PACKAGED_ROOT", str(copy))
    assert model_zoo.config_root() == str(copy)
    assert model_zoo.get_config_file("demo/sniper_shapes_R18_FPN.yaml").startswith(str(copy))
    # the demo overrides CHIP_SIZE; a leaf that does not shows the copy's Base was merged
    assert model_zoo.get_config("sniper_R_50_FPN_1x.yaml").SNIPER.CHIP_SIZE == 320
    assert model_zoo.get_config("demo/sniper_shapes_R18_FPN.yaml").MODEL.PROPOSAL_GENERATOR.NAME == "SniperRPN"
    lazy = model_zoo.get_config("lazy/demo/sniper_shapes_R18_FPN.py")  # relative import inside the copy
    assert lazy.train.device == "cpu"


def test_falls_back_to_the_checkout_and_says_when_neither_exists(tmp_path, monkeypatch):
    monkeypatch.setattr(config_files, "_PACKAGED_ROOT", str(tmp_path / "none"))
    assert model_zoo.config_root() == os.path.join(REPO, "configs")
    monkeypatch.setattr(config_files, "_CHECKOUT_ROOT", str(tmp_path / "none either"))
    with pytest.raises(FileNotFoundError, match="neither installed .* nor in a source checkout"):
        model_zoo.list_configs()


@pytest.mark.parametrize("name", ["sniper_R_50_FPN_1x.yml", "../setup.py", "configs/sniper_R_50_FPN_1x.yaml",
                                  "demo", "Base-SNIPER-FPN.txt"])
def test_unknown_names_fail_listing_the_configs(name):
    with pytest.raises(FileNotFoundError, match=f"'{name}' is not one of sniper_d2's configs") as error:
        model_zoo.get_config_file(name)
    assert all(n in str(error.value) for n in REPO_CONFIGS)
    if name == "sniper_R_50_FPN_1x.yml":
        assert "Did you mean 'sniper_R_50_FPN_1x.yaml'?" in str(error.value)


def test_module_lists_configs_and_prints_paths(capsys):
    assert model_zoo_main([]) == 0
    listing = capsys.readouterr().out
    assert all(f"  {n}\n" in listing for n in REPO_CONFIGS)
    assert model_zoo_main(["demo/sniper_shapes_R18_FPN.yaml"]) == 0
    assert capsys.readouterr().out.strip() == model_zoo.get_config_file("demo/sniper_shapes_R18_FPN.yaml")
    assert model_zoo_main(["nope.yaml"]) == 1
    assert "'nope.yaml' is not one of sniper_d2's configs" in capsys.readouterr().err
