"""benchmarks/bench_accuracy.py --mask: segm AP columns beside box AP."""
from benchmark_scripts import load_benchmark


def load_bench():
    return load_benchmark("bench_accuracy.py", "bench_accuracy_mask")


def test_mask_flag_picks_the_mask_demo_and_the_table_shows_segm_ap():
    bench = load_bench()
    args = bench.parse_args(["--mask", "--variants", "sniper"])
    assert args.config_file.endswith("configs/demo/sniper_mask_shapes_R18_FPN.yaml")
    assert bench.parse_args([]).config_file.endswith("configs/demo/sniper_shapes_R18_FPN.yaml")
    box = {"AP": 20.0, "AP50": 40.0, "APs": 10.0, "APm": 20.0, "APl": 30.0}
    run = {"variant": "sniper", "seed": 0, "iterations": 10, "mining_cpu_s": 5.0, "train_cpu_s": 100.0,
           "model_mpx": 1.0, "test_scales": ["2"],
           "tests": {"config": {"metrics": box, "cpu_s": 1.0, "segm_metrics": dict(box, AP=17.5, APs=6.25)}}}
    table = bench.markdown(bench.summarise([run]))
    header, rule, row = table.splitlines()
    assert "segm AP | segm APs |" in header and rule.count("---") == header.count("|") - 1
    assert "| 17.5 | 6.2 |" in row or "| 17.5 | 6.3 |" in row
    run["tests"]["config"].pop("segm_metrics")
    assert "segm" not in bench.markdown(bench.summarise([run]))
