"""benchmarks/bench_accuracy.py's report (what `make demo` ends with): rows, spreads, the verdict."""
import pytest

from benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_accuracy.py", "bench_accuracy")


def run(variant, seed, ap, aps, cpu, tests=None):
    metrics = {"AP": ap, "AP50": 2 * ap, "APs": aps, "APm": ap, "APl": ap}
    modes = tests or {"single": ["config"], "multisize": ["tta"], "sniper": ["config"]}[variant]
    return {
        "variant": variant, "seed": seed, "iterations": 100, "mining_cpu_s": 50.0 if variant == "sniper" else 0.0,
        "train_cpu_s": cpu, "model_mpx": 10.0, "test_scales": ["2", "1"],
        "tests": {m: {"metrics": dict(metrics), "cpu_s": 1.0} for m in modes},
    }


def test_seeds_give_mean_and_half_spread(bench):
    table = bench.summarise([run("single", 0, 10.0, 4.0, 500.0), run("single", 1, 14.0, 6.0, 520.0)])
    (row,) = table
    assert row["metrics"]["AP"] == (12.0, 2.0) and row["metrics"]["APs"] == (5.0, 1.0)
    assert row["train_cpu_s"] == 510.0 and row["seeds"] == 2
    assert "12.0 ±2.0" in bench.markdown(table)


def test_verdict_names_the_winner_against_the_best_baseline(bench):
    results = [
        run("single", 0, 10.0, 3.0, 600.0),
        run("multisize", 0, 12.0, 4.0, 610.0),
        run("sniper", 0, 15.0, 8.0, 560.0),  # + 50 s mining = 610
    ]
    (line,) = bench.verdict(bench.summarise(results))
    assert line.startswith("(c) SNIPER: AP +3.0 vs the best baseline ((b) multi-size train + TTA), APs +4.0")
    assert "training CPU x1.00: SNIPER has the higher AP; one seed: --seeds 3 shows the spread" in line
    results[2] = run("sniper", 0, 11.0, 8.0, 560.0)
    assert "the baseline has the higher AP" in bench.verdict(bench.summarise(results))[0]
    # with seeds, the difference is weighed against their spread
    seeded = [run("multisize", 0, 10.0, 4.0, 600.0), run("multisize", 1, 14.0, 4.0, 600.0),
              run("sniper", 0, 12.0, 8.0, 550.0), run("sniper", 1, 16.0, 8.0, 550.0)]
    assert "AP +2.0" in bench.verdict(bench.summarise(seeded))[0]
    assert "within the seeds' spread (+-2.0)" in bench.verdict(bench.summarise(seeded))[0]


def test_per_scale_tests_are_rows_and_feed_the_multi_scale_check(bench):
    sniper = run("sniper", 0, 15.0, 8.0, 560.0, tests=["config", "nms", "scale:0", "scale:1"])
    sniper["tests"]["scale:1"]["metrics"]["AP"] = 16.5
    table = bench.summarise([sniper])
    assert [r["mode"] for r in table] == ["config", "nms", "scale:0", "scale:1"]
    assert bench.verdict(table) == [
        "(c) SNIPER: multi-scale test -1.5 AP vs its best single-scale test (tested at scale 1 alone; goal: >= 0)."
    ]


def test_child_command_carries_every_setting(bench):
    args = bench.parse_args(["--variants", "single,sniper", "--budget", "120", "--single-size", "320", "512",
                             "--tests", "main", "--output", "/tmp/x", "SOLVER.BASE_LR", "0.01"])
    child = bench.parse_args(bench._child_command(args, "sniper", 3)[2:])
    assert (child.child, child.seed, child.budget, child.tests) == ("sniper", 3, 120.0, "main")
    assert child.single_size == [320, 512] and child.opts == ["SOLVER.BASE_LR", "0.01"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--variants", "single,bogus"])


def test_child_command_keeps_the_config_overrides(bench):
    # KEY VALUE overrides follow the child's options: a variadic option before them would swallow them
    args = bench.parse_args(["--variants", "single,autofocus", "--single-size", "288", "480",
                             "SNIPER.TRAIN.SCALES", "((325, 412), 'longest:128')", "SOLVER.BASE_LR", "0.02"])
    child = bench.parse_args(bench._child_command(args, "autofocus", 3)[2:])
    assert child.child == "autofocus" and child.seed == 3
    assert child.opts == ["SNIPER.TRAIN.SCALES", "((325, 412), 'longest:128')", "SOLVER.BASE_LR", "0.02"]
    assert child.single_size == [288, 480] and child.multisize_factors == args.multisize_factors
    assert child.autofocus_config == args.autofocus_config
