#!/usr/bin/env python
"""``python tools/visualize_chips.py``: the installed ``sniper-visualize`` program; its code and
documentation are in ``sniper_d2/cli/visualize_chips.py`` (``--help`` prints them)."""
import sys

from sniper_d2.cli.visualize_chips import (  # noqa: F401  (importable from here as before)
    main,
    output_name,
    parse_args,
    run,
    select_images,
)

if __name__ == "__main__":
    run(sys.argv[1:])
