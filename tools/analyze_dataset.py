#!/usr/bin/env python
"""``python tools/analyze_dataset.py``: the installed ``sniper-analyze`` program; its code and
documentation are in ``sniper_d2/cli/analyze_dataset.py`` (``--help`` prints them)."""
import sys

from sniper_d2.cli.analyze_dataset import main, parse_args, run  # noqa: F401  (importable from here as before)

if __name__ == "__main__":
    run(sys.argv[1:])
