# Everything runs inside .venv, created on first use. On this project's CI/dev machines a CPU
# build of torch lies on disk; users elsewhere may override, e.g. `make test TORCH_SPEC=torch`.
PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.installed
PYTEST     := $(PY) -m pytest -q -p no:cacheprovider

.PHONY: venv test parity test-slow data demo clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

# All fast tests (unit tests and the parity suite). Slow ones: `make test-slow`.
test: venv
	$(PYTEST) -m "not slow" tests parity_tests

# The NumPy-reference vs PyTorch parity suite alone.
parity: venv
	$(PYTEST) -m "not slow" parity_tests

test-slow: venv
	$(PYTEST) -m slow tests parity_tests

# The paper's three data sets in the release's HDF5 layout (MNIST is fetched once, see README).
data: venv
	$(VENV)/bin/tagger-torch make-dataset shapes --out datasets/shapes50k_20x20.h5
	$(VENV)/bin/tagger-torch make-dataset freq20-1mnist --out datasets/freq20-1mnist.h5
	$(VENV)/bin/tagger-torch make-dataset freq20-2mnist --out datasets/freq20-2mnist.h5

demo: venv
	$(VENV)/bin/tagger-torch make-dataset shapes --out datasets/shapes-demo.h5 \
		--n-train 5000 --n-valid 1000 --n-test 1000 --n-single 100
	$(VENV)/bin/tagger-torch data-summary datasets/shapes-demo.h5

clean:
	rm -rf $(VENV) *.egg-info build dist
