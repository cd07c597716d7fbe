#!/usr/bin/env python
"""``python tools/predict.py``: the installed ``sniper-predict`` program; its code and
documentation are in ``sniper_d2/cli/predict.py`` (``--help`` prints them)."""
import sys

from sniper_d2.cli.predict import (  # noqa: F401  (importable from here as before)
    IMAGE_EXTENSIONS,
    coco_results,
    dataset_info,
    expand_inputs,
    main,
    output_names,
    parse_args,
    read_bgr_image,
    run,
)

if __name__ == "__main__":
    run(sys.argv[1:])
