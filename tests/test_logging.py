"""sniper_d2's log lines reach log.txt and the console in any project that sets up Detectron2's
logging with ``default_setup`` (not only in train_net.py)."""
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import logging, sys
    from detectron2.config import get_cfg
    from detectron2.engine import default_argument_parser, default_setup
    import sniper_d2
    cfg = get_cfg()
    sniper_d2.add_sniper_config(cfg)
    cfg.OUTPUT_DIR = sys.argv[1]
    default_setup(cfg, default_argument_parser().parse_args([]))
    logging.getLogger("sniper_d2.data.build").info("SNIPER epoch 0: 12 positive chips")
    logging.getLogger("sniper_d2.mining.pipeline").debug("not shown at INFO")
    if len(sys.argv) > 2:  # then the project also sets up the sniper_d2 logger itself
        from detectron2.utils.logger import setup_logger
        setup_logger(sys.argv[1], name="sniper_d2")
        logging.getLogger("sniper_d2.engine").info("once only")
""")


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """(console, log.txt) of one run of SCRIPT."""
    out_dir = tmp_path_factory.mktemp("logging")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(out_dir), "own"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout + out.stderr, (out_dir / "log.txt").read_text()


def test_default_setup_projects_get_sniper_lines_in_console_and_log_txt(logs):
    for text in logs:
        assert "sniper_d2.data.build" in text and "SNIPER epoch 0: 12 positive chips" in text
        assert "not shown at INFO" not in text


def test_own_sniper_logger_setup_prints_each_line_once(logs):
    console, log_txt = logs
    assert console.count("once only") == 1 and log_txt.count("once only") == 1
