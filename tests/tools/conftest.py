import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_tool(name: str):
    """The script ``tools/<name>.py`` as a module (its ``main(argv)`` runs it in this process)."""
    spec = importlib.util.spec_from_file_location(f"tools_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory):
    """The built-in synthetic datasets, generated once under a temporary SNIPER_D2_DATASETS."""
    previous = os.environ.get("SNIPER_D2_DATASETS")
    os.environ["SNIPER_D2_DATASETS"] = str(tmp_path_factory.mktemp("datasets"))
    yield os.environ["SNIPER_D2_DATASETS"]
    if previous is None:
        del os.environ["SNIPER_D2_DATASETS"]
    else:
        os.environ["SNIPER_D2_DATASETS"] = previous


@pytest.fixture(scope="session")
def analyze_tool():
    return _load_tool("analyze_dataset")


@pytest.fixture(scope="session")
def visualize_tool():
    return _load_tool("visualize_chips")


@pytest.fixture(scope="session")
def focus_tool():
    return _load_tool("visualize_focus")


@pytest.fixture(scope="session")
def demo_config():
    """Path of the CPU demo config (chips 128 px, scales 2.0 / 1.0 / longest:128, sniper_shapes_train)."""
    return str(REPO / "configs" / "demo" / "sniper_shapes_R18_FPN.yaml")
