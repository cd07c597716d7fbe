"""sniper_d2 as an installed add-on: the wheel carries the configs and the console scripts, and
installed in a fresh environment (not editable, repository not on sys.path) every script runs and
the shipped demo config trains from any directory. Also: declared dependencies cover the imports,
OpenCV is not required by name, and a missing cv2 fails naming the packages."""
import ast
import glob
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest
from packaging.requirements import Requirement

import sniper_d2.opencv_check as opencv_check

tomllib = pytest.importorskip("tomllib")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ("sniper-train", "sniper-predict", "sniper-analyze", "sniper-visualize", "sniper-visualize-focus")
# import name -> distribution, where they differ; None: deliberately not declared (see pyproject.toml)
DISTRIBUTION = {"PIL": "Pillow", "cv2": None, "detectron2": None, "yaml": "PyYAML"}


def _pyproject():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def _third_party_imports():
    """Top-level names imported by the package and the shipped LazyConfigs (stdlib and sniper_d2 left out)."""
    files = glob.glob(os.path.join(REPO, "sniper_d2", "**", "*.py"), recursive=True)
    files += glob.glob(os.path.join(REPO, "configs", "**", "*.py"), recursive=True)
    names = set()
    for path in files:
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"sniper_d2"}


def test_dependencies_declare_every_third_party_import_but_opencv_and_detectron2():
    declared = {Requirement(r).name.lower() for r in _pyproject()["project"]["dependencies"]}
    imported = _third_party_imports()
    assert {"numpy", "torch", "cv2", "PIL", "tqdm", "matplotlib", "tabulate", "pycocotools", "fvcore"} <= imported
    missing = {DISTRIBUTION.get(n, n).lower() for n in imported if DISTRIBUTION.get(n, n)} - declared
    assert not missing, f"imported at run time but not in pyproject.toml's dependencies: {missing}"
    assert not any("opencv" in name for name in declared)
    assert _pyproject()["project"]["optional-dependencies"]["opencv"] == ["opencv-python-headless>=4.5"]


def test_missing_opencv_fails_naming_both_packages(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` raises ImportError
    with pytest.raises(ImportError, match="sniper_d2 needs OpenCV") as error:
        opencv_check.check_opencv()
    for option in ("pip install opencv-python-headless", "pip install opencv-python", 'sniper_d2[opencv]'):
        assert option in str(error.value)


def _run(args, cwd, env, timeout=300):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from a copy of the checkout, installed (not editable) into a new virtual
    environment that sees this one's packages (torch, detectron2, ...) through a .pth file."""
    if importlib.util.find_spec("setuptools.command.bdist_wheel") is None and importlib.util.find_spec("wheel") is None:
        pytest.fail("Building the wheel offline (no build isolation) needs setuptools >= 70.1 or the `wheel` package "
                    "in this environment: pip install 'setuptools>=70.1,<81' (tools/setup_env.sh does).")
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "output", "datasets", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis",
        ".pytest_cache", "tests", "benchmarks", "docs"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--disable-pip-version-check", "-q", "-w", str(tmp / "dist"), str(source)], tmp, dict(os.environ))
    [wheel] = glob.glob(str(tmp / "dist" / "sniper_d2-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, dict(os.environ))
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(purelib, "sniper_d2_test_base.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
          "--disable-pip-version-check", "-q", wheel], tmp, dict(os.environ))
    run_dir = tmp / "elsewhere"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(OMP_NUM_THREADS="1", SNIPER_D2_DATASETS=str(tmp / "datasets"), PYTHONWARNINGS="ignore")
    return {"wheel": wheel, "venv": venv, "python": python, "purelib": purelib, "cwd": run_dir, "env": env}


def test_wheel_carries_configs_scripts_and_satisfied_requirements(installed):
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read("sniper_d2-0.1.0.dist-info/METADATA").decode()
        entry_points = wheel.read("sniper_d2-0.1.0.dist-info/entry_points.txt").decode()
    repo_configs = {os.path.relpath(p, REPO).replace(os.sep, "/")
                    for p in glob.glob(os.path.join(REPO, "configs", "**", "*.*"), recursive=True)
                    if "__pycache__" not in p}
    assert {f"sniper_d2/model_zoo/{c}" for c in repo_configs} <= names
    assert all(f"{s} = sniper_d2.cli." in entry_points for s in SCRIPTS)
    requirements = [Requirement(line.split(":", 1)[1].strip()) for line in metadata.splitlines()
                    if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not any("opencv" in r.name for r in requirements)
    for requirement in requirements:  # what this environment has fulfils what the wheel asks for
        assert requirement.specifier.contains(importlib.metadata.version(requirement.name), prereleases=True), requirement


def test_installed_package_imports_from_its_own_copy(installed):
    where = _run([str(installed["python"]), "-c",
                  "import sniper_d2, sys; from sniper_d2 import model_zoo; print(sniper_d2.__file__); "
                  "print(model_zoo.get_config_file('demo/sniper_shapes_R18_FPN.yaml')); print(sys.path)"],
                 installed["cwd"], installed["env"])
    module_file, demo, path = where.splitlines()[:3]
    assert module_file.startswith(installed["purelib"]) and demo.startswith(installed["purelib"])
    assert REPO not in ast.literal_eval(path)


@pytest.mark.slow  # about a minute on 2 CPU cores: six processes that each import torch and detectron2
def test_installed_console_scripts_run_and_the_shipped_demo_trains(installed, tmp_path):
    bin_dir, cwd, env = installed["venv"] / "bin", installed["cwd"], installed["env"]
    demo = os.path.join(installed["purelib"], "sniper_d2", "model_zoo", "configs", "demo", "sniper_shapes_R18_FPN.yaml")
    helps = [subprocess.Popen([str(bin_dir / s), "--help"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for s in SCRIPTS]
    out = tmp_path / "out"
    _run([str(bin_dir / "sniper-train"), "--config-file", demo, "SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "4",
          "DATALOADER.NUM_WORKERS", "0", "DATASETS.TEST", "()", "OUTPUT_DIR", str(out)], cwd, env)
    assert (out / "model_final.pth").is_file()
    for script, process in zip(SCRIPTS, helps):
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0 and "--config-file" in stdout, (script, stderr[-2000:])
    listing = _run([str(installed["python"]), "-m", "sniper_d2.model_zoo"], cwd, env)
    assert "lazy/demo/sniper_shapes_R18_FPN.py" in listing and installed["purelib"] in listing
