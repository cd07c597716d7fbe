#!/usr/bin/env python
"""``python tools/visualize_focus.py``: the installed ``sniper-visualize-focus`` program; its code and
documentation are in ``sniper_d2/cli/visualize_focus.py`` (``--help`` prints them)."""
import sys

from sniper_d2.cli.visualize_focus import focus_config, main, parse_args, run, select_images  # noqa: F401

if __name__ == "__main__":
    run(sys.argv[1:])
