"""The configs shipped with sniper_d2, found by name, in the manner of ``detectron2.model_zoo``.

Names are paths relative to the repository's ``configs/`` folder: ``"sniper_R_50_FPN_1x.yaml"``,
``"demo/sniper_shapes_R18_FPN.yaml"``, ``"lazy/sniper_R_50_FPN.py"``. A wheel carries a copy of
that folder as ``sniper_d2/model_zoo/configs`` (made by ``setup.py``'s ``build_py`` step, so
``_BASE_`` paths and LazyConfig imports between configs resolve inside the copy); a source
checkout or an editable install reads the checkout's ``configs/`` itself.
"""
import difflib
import os
from typing import List

from detectron2.config import LazyConfig

from ..config import sniper_config_from_file

__all__ = ["config_root", "get_config", "get_config_file", "list_configs"]

# the folder a wheel installs, and the checkout's (two levels above this package's folder)
_PACKAGED_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
_CHECKOUT_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")
# a file every copy of the configs holds: tells sniper_d2's configs from another "configs" folder
_MARKER = "Base-SNIPER-FPN.yaml"
_SUFFIXES = (".yaml", ".py")


def config_root() -> str:
    """The folder of sniper_d2's configs: the installed copy, else the source checkout's ``configs/``."""
    for root in (_PACKAGED_ROOT, _CHECKOUT_ROOT):
        if os.path.isfile(os.path.join(root, _MARKER)):
            return root
    raise FileNotFoundError(
        f"sniper_d2's configs are neither installed ({_PACKAGED_ROOT}) nor in a source checkout "
        f"({_CHECKOUT_ROOT}): reinstall sniper_d2 from a wheel or from its repository (pip install .), "
        "whose build copies configs/ into the package."
    )


def list_configs() -> List[str]:
    """Names of every shipped config (``.yaml`` and LazyConfig ``.py``), sorted, ``/``-separated."""
    root = config_root()
    names = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if d != "__pycache__"]
        for name in files:
            if name.endswith(_SUFFIXES):
                names.append(os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/"))
    return sorted(names)


def get_config_file(config_path: str) -> str:
    """The absolute path of the shipped config named ``config_path`` (e.g.
    ``"sniper_R_50_FPN_1x.yaml"``); raises naming the available configs if there is none."""
    root = config_root()
    path = os.path.normpath(os.path.join(root, config_path))
    inside = os.path.commonpath([root, path]) == root
    if not (inside and config_path.endswith(_SUFFIXES) and os.path.isfile(path)):
        available = list_configs()
        close = difflib.get_close_matches(config_path, available, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise FileNotFoundError(
            f"'{config_path}' is not one of sniper_d2's configs (in {root}).{hint} Available: "
            f"{', '.join(available)}. For a config file of your own, give its path to --config-file / "
            "merge_from_file instead."
        )
    return path


def get_config(config_path: str):
    """The config named ``config_path``, like ``detectron2.model_zoo.get_config``: for ``.yaml``
    Detectron2's defaults with the SNIPER keys (:func:`~sniper_d2.add_sniper_config`) and the file
    merged in (a ``CfgNode``, not frozen); for ``.py`` the LazyConfig (an omegaconf ``DictConfig``)."""
    path = get_config_file(config_path)
    if path.endswith(".py"):
        return LazyConfig.load(path)
    return sniper_config_from_file(path)
