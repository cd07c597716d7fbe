"""Loading a script of benchmarks/ (not a package) as a module, for tests of its report functions."""
import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark(script: str, module_name: str):
    """``benchmarks/<script>`` imported fresh under ``module_name`` (nothing runs: its main is guarded)."""
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
