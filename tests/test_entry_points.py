"""The console scripts of pyproject.toml and the repository scripts run the same programs
(sniper_d2.cli), in-process: --help, exit status, a 2-iteration training from the shipped demo."""
import importlib
import importlib.util
import os

import pytest

import sniper_d2.cli.train as cli_train
from sniper_d2 import model_zoo
from sniper_test_data import register_dataset, tiny_records

tomllib = pytest.importorskip("tomllib")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = {  # console script -> (module, repository script)
    "sniper-train": ("sniper_d2.cli.train", "train_net.py"),
    "sniper-predict": ("sniper_d2.cli.predict", "tools/predict.py"),
    "sniper-analyze": ("sniper_d2.cli.analyze_dataset", "tools/analyze_dataset.py"),
    "sniper-visualize": ("sniper_d2.cli.visualize_chips", "tools/visualize_chips.py"),
    "sniper-visualize-focus": ("sniper_d2.cli.visualize_focus", "tools/visualize_focus.py"),
}


def _load_script(path):
    spec = importlib.util.spec_from_file_location(f"script_{os.path.basename(path)[:-3]}", os.path.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pyproject_declares_every_console_script():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts == {name: f"{module}:run" for name, (module, _) in SCRIPTS.items()}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_repository_script_is_the_console_script_program(name):
    module = importlib.import_module(SCRIPTS[name][0])
    script = _load_script(SCRIPTS[name][1])
    shared = ("main", "run", "argument_parser", "build_config") if name == "sniper-train" else ("main", "run", "parse_args")
    assert all(getattr(script, n) is getattr(module, n) for n in shared)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_exits_zero_with_the_usage(name, capsys):
    module = importlib.import_module(SCRIPTS[name][0])
    with pytest.raises(SystemExit) as exit_:
        module.run(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--config-file" in out and "usage:" in out


def test_tool_run_exits_zero_whatever_main_returns(monkeypatch):
    """A console script exits with run()'s return value: main's report (a dict) must not be it."""
    module = importlib.import_module("sniper_d2.cli.analyze_dataset")
    monkeypatch.setattr(module, "main", lambda argv: {"report": argv})
    assert module.run(["--config-file", "x.yaml"]) is None


def test_train_run_trains_the_shipped_demo_config(tmp_path, monkeypatch):
    name = register_dataset("sniper_test_entry_point", tiny_records(tmp_path, num_images=6, seed=1))
    monkeypatch.chdir(tmp_path)  # the demo's relative OUTPUT_DIR and datasets go here
    cli_train.run([
        "--config-file", model_zoo.get_config_file("demo/sniper_shapes_R18_FPN.yaml"),
        "DATASETS.TRAIN", f"('{name}',)", "DATASETS.TEST", "()", "SOLVER.MAX_ITER", "2",
        "SOLVER.IMS_PER_BATCH", "4", "DATALOADER.NUM_WORKERS", "0", "SNIPER.CHIP_SIZE", "64",
        "SNIPER.TRAIN.SCALES", "(2.0, 1.0, 'longest:64')", "SNIPER.TRAIN.VALID_RANGES", "((-1, 16), (8, 40), (32, -1))",
        "SNIPER.TRAIN.CHIP_STRIDE", "8", "SNIPER.TRAIN.MIN_BOX_SIZE", "2",
    ])
    assert (tmp_path / "output" / "demo" / "model_final.pth").is_file()  # OUTPUT_DIR "output/demo", cwd-relative


def test_build_config_refuses_a_lazy_config_naming_main():
    args = cli_train.argument_parser().parse_args(["--config-file", "configs/lazy/sniper_R_50_FPN.py"])
    with pytest.raises(ValueError, match="LazyConfig .* main\\(\\) runs LazyConfigs"):
        cli_train.build_config(args)


def test_tools_refuse_a_lazy_config():
    visualize = importlib.import_module("sniper_d2.cli.visualize_chips")
    with pytest.raises(ValueError, match="is a LazyConfig .*this tool reads YAML configs"):
        visualize.main(["--config-file", model_zoo.get_config_file("lazy/sniper_R_50_FPN.py"), "--output", "x"])

