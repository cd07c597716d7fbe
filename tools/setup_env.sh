#!/usr/bin/env bash
# Create (or reuse) the Python environment sniper_d2 runs in, installing only what is missing.
#
#   tools/setup_env.sh                  -> ./.venv (created if absent)
#   PYTHON=/path/to/python tools/setup_env.sh
#                                       -> that interpreter's environment, e.g. an existing
#                                          Detectron2 project's venv; nothing already importable
#                                          is replaced.
#
# A second run only checks (a few seconds). torch/torchvision are pinned to the releases this
# machine kind carries (2.14.1 / 0.29.1). Detectron2 is installed only when `import detectron2`
# fails, from the `sal-detectron2` wheel (a repackaged upstream build, see README.md). OpenCV
# (opencv-python-headless) only when `import cv2` fails: sniper_d2 does not require a build by name,
# so an existing opencv-python is kept. Every path ends with setuptools >= 70.1, < 81: a working
# pkg_resources, which detectron2.model_zoo imports, and bdist_wheel for the packaging tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${PYTHON:-}" ]; then
  py="$PYTHON"
else
  if [ ! -x .venv/bin/python ]; then
    echo "[setup_env] creating .venv"
    python3 -m venv .venv
  fi
  py="$PWD/.venv/bin/python"
fi
# checked from / so that the repository checkout itself does not count as an installed sniper_d2
have() { (cd / && "$py" -c "$1") >/dev/null 2>&1; }
# pip's own exit status counts (pipefail); the filter only hides this machine's noisy index warnings
pip_install() { "$py" -m pip install --disable-pip-version-check -q "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }; }

stamp=$("$py" -c 'import sys; print(sys.prefix)')/.sniper_d2_setup
# the build files of sniper_d2: when either changes, sniper_d2 is re-installed
want=$(cat setup.py pyproject.toml | cksum | cut -d' ' -f1)
# Fast path: everything already there (one interpreter start).
if [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ] \
   && have "import torch, torchvision, detectron2, sniper_d2, pytest, hypothesis, pkg_resources, setuptools.command.bdist_wheel"; then
  exit 0
fi

if ! have "import torch, torchvision"; then
  echo "[setup_env] installing torch 2.14.1 / torchvision 0.29.1 (a few minutes)"
  pip_install torch==2.14.1 torchvision==0.29.1
fi

if ! have "import detectron2"; then
  echo "[setup_env] detectron2 not importable: installing the sal-detectron2 0.7.2 wheel"
  site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  # The wheel is tagged for CPython 3.10; its Python modules run on 3.11 (no compiled _C needed).
  pip_install --no-deps --only-binary=:all: --python-version 3.10 --implementation cp \
    --target "$site" sal-detectron2==0.7.2
  pip_install Pillow matplotlib pycocotools termcolor yacs tabulate cloudpickle tqdm \
    tensorboard 'omegaconf>=2.1,<2.4' 'hydra-core>=1.1' fvcore iopath packaging 'setuptools<81'
fi

# sniper_d2 itself (editable) and the test tools; re-run when setup.py or pyproject.toml changes.
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ] || ! have "import sniper_d2, pytest, hypothesis"; then
  extras=test
  if ! have "import cv2"; then
    extras=test,opencv  # the headless OpenCV build, only where no OpenCV build is installed
  fi
  echo "[setup_env] installing sniper_d2 (editable) and test tools ($extras)"
  # setuptools resolved together with sniper_d2: torch asks for setuptools >= 77.0.3, which alone
  # would upgrade it past 80 and remove pkg_resources
  pip_install -e ".[$extras]" 'setuptools>=70.1,<81'
  echo "$want" > "$stamp"
fi

# detectron2.model_zoo imports pkg_resources, which setuptools 81 removed; the packaging tests build
# sniper_d2's wheel offline with this setuptools, whose own bdist_wheel needs 70.1 or later
if ! have "import pkg_resources, setuptools.command.bdist_wheel"; then
  echo "[setup_env] installing setuptools>=70.1,<81 (pkg_resources for detectron2.model_zoo, bdist_wheel for the tests)"
  pip_install 'setuptools>=70.1,<81'
fi

(cd / && "$py" -W ignore -c "import torch, torchvision, detectron2, sniper_d2, pkg_resources") \
  || { echo "[setup_env] ERROR: the environment of $py is incomplete (see the traceback above)" >&2; exit 1; }
