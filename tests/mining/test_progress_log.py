"""Mining stage 2 reports progress with an ETA in the log (log.txt), not only on a tqdm bar."""
import logging

from sniper_d2.mining.progress_log import ProgressLog


def test_lines_at_the_interval_and_at_the_end_with_eta(caplog):
    now = [100.0]
    progress = ProgressLog(10, "proposals on d", logging.getLogger("sniper_d2.test_progress"), interval_s=30,
                           clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="sniper_d2"):
        for _ in range(10):
            now[0] += 12.0  # 12 s per image: a line every third image, and the last one
            progress.step()
    lines = [r.getMessage() for r in caplog.records if r.name == "sniper_d2.test_progress"]
    assert lines == [
        "proposals on d: 3/10 images (30 %), 12.00 s per image, ETA 0:01:24",
        "proposals on d: 6/10 images (60 %), 12.00 s per image, ETA 0:00:48",
        "proposals on d: 9/10 images (90 %), 12.00 s per image, ETA 0:00:12",
        "proposals on d: 10/10 images (100 %), 12.00 s per image, ETA 0:00:00",
    ]
