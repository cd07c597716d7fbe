"""sniper_d2: SNIPER efficient multi-scale training as a Detectron2 extension.

Detectron2 itself is deliberately not a requirement: it is not published on the package index
under its own name, and an installed one (a user's own build) must never be replaced.
See README.md for how to get one.
"""
from setuptools import find_packages, setup

setup(
    name="sniper_d2",
    version="0.1.0",
    description="SNIPER efficient multi-scale training for Detectron2",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["sniper_d2", "sniper_d2.*"]),
    python_requires=">=3.8",
    install_requires=[
        "numpy",
        "pycocotools>=2.0.2",
        "fvcore>=0.1.5",
        "opencv-python-headless>=4.5",
        "torch>=1.13,<3",
        "torchvision>=0.14",
        "tqdm",
    ],
    extras_require={"test": ["pytest", "hypothesis"]},
)
