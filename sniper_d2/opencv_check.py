"""OpenCV (``cv2``) is needed but not declared as a dependency (see pyproject.toml): this module
fails ``import sniper_d2`` early (it runs :func:`check_opencv` when imported), naming the packages
that provide ``cv2``, when it is missing."""
import importlib

__all__ = ["check_opencv"]

INSTALL_HINT = (
    "Install exactly one OpenCV build: `pip install opencv-python-headless` (servers, no GUI) or "
    "`pip install opencv-python` (with GUI windows), or `pip install \"sniper_d2[opencv]\"` (the headless "
    "one). If either is installed already, do not add the other: both provide the same cv2 module."
)


def check_opencv() -> None:
    """Raise ImportError naming the OpenCV packages if ``import cv2`` fails."""
    try:
        importlib.import_module("cv2")
    except ImportError as e:
        raise ImportError(f"sniper_d2 needs OpenCV, but `import cv2` failed ({e}). {INSTALL_HINT}") from e


check_opencv()
