# The two commands of README.md. Both set up (or reuse) ./.venv first; PYTHON=/path/to/python
# runs them in an existing environment instead.
PY := $(if $(PYTHON),$(PYTHON),.venv/bin/python)
DEMO_CONFIG := configs/demo/sniper_shapes_R18_FPN.yaml

.PHONY: env demo test

env:
	@bash tools/setup_env.sh

# SNIPER on the built-in synthetic dataset, CPU: negative mining (RPN stage + proposals), training
# on positive and negative chips, multi-scale evaluation; ends with chip statistics and COCO AP.
demo: env
	$(PY) train_net.py --config-file $(DEMO_CONFIG) --mine-negatives $(ARGS)

test: env
	$(PY) -m pytest -q tests
