# The two commands of README.md. Both set up (or reuse) ./.venv first; PYTHON=/path/to/python
# runs them in an existing environment instead.
PY := $(if $(PYTHON),$(PYTHON),.venv/bin/python)

.PHONY: env demo test

env:
	@bash tools/setup_env.sh

test: env
	$(PY) -m pytest -q tests
