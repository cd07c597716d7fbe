"""Build hook of sniper_d2 (metadata, dependencies and console scripts are in pyproject.toml).

``build_py`` copies the repository's ``configs/`` (top-level, where the repository keeps it) into
the built package as ``sniper_d2/model_zoo/configs``, so that a wheel carries every config with
its relative ``_BASE_`` paths and LazyConfig imports intact (``sniper_d2.model_zoo`` finds them
there). Editable installs skip the copy: they read the checkout's ``configs/`` directly.
"""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


class BuildPyWithConfigs(build_py):
    """``build_py`` plus a fresh copy of ``configs/`` in ``<build_lib>/sniper_d2/model_zoo/configs``."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        if not os.path.isfile(os.path.join(CONFIGS, "Base-SNIPER-FPN.yaml")):
            raise FileNotFoundError(
                f"{CONFIGS} is missing or incomplete: build sniper_d2 from its repository or from an sdist "
                "(MANIFEST.in includes configs/)."
            )
        target = os.path.join(self.build_lib, "sniper_d2", "model_zoo", "configs")
        if os.path.isdir(target):  # a previous build's copy may hold configs deleted since
            shutil.rmtree(target)
        shutil.copytree(CONFIGS, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithConfigs})
