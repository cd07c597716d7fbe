# The two commands of README.md. Both set up (or reuse) ./.venv first; PYTHON=/path/to/python
# runs them in an existing environment instead.
PY := $(if $(PYTHON),$(PYTHON),.venv/bin/python)
DEMO_CONFIG := configs/demo/sniper_shapes_R18_FPN.yaml

.PHONY: env demo test

env:
	@bash tools/setup_env.sh

# SNIPER on the built-in synthetic dataset, CPU, next to Detectron2's single-scale baseline with the
# same model and the same training CPU budget (one process each, side by side): SNIPER = negative
# mining (RPN stage + proposals), training on positive and negative chips, multi-scale evaluation.
# Ends with both COCO results in one table and which won.
demo: env
	$(PY) benchmarks/bench_accuracy.py --config-file $(DEMO_CONFIG) --variants single,sniper --budget 360 \
		--tests main --output output/demo $(ARGS)

test: env
	$(PY) -m pytest -q tests
