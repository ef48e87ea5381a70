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

# The paper's three data sets in the release's HDF5 layout (MNIST is fetched once, see README), and
# datasets/shapes.h5, the design card's name for the standard Shapes set: a link to the same file.
# tagger_torch/data/standard.py names these lines in the error of a missing data file.
data: venv
	$(VENV)/bin/tagger-torch make-dataset shapes --out datasets/shapes50k_20x20.h5
	ln -sf shapes50k_20x20.h5 datasets/shapes.h5
	$(VENV)/bin/tagger-torch make-dataset freq20-1mnist --out datasets/freq20-1mnist.h5
	$(VENV)/bin/tagger-torch make-dataset freq20-2mnist --out datasets/freq20-2mnist.h5

demo: venv
	$(VENV)/bin/tagger-torch make-dataset shapes --out datasets/shapes-demo.h5 \
		--n-train 10000 --n-valid 1000 --n-test 1000 --n-single 100
	@# a few minutes on the CPU; run `make demo` again after an interruption and it resumes
	if [ -f runs/demo/checkpoint.pt ]; then $(VENV)/bin/tagger-torch train --resume runs/demo --device cpu; \
	else $(VENV)/bin/tagger-torch train --hdf5 datasets/shapes-demo.h5 --preset shapes-demo --out runs/demo --device cpu; fi
	$(VENV)/bin/tagger-torch init-params --config runs/demo/config.json --out runs/demo/untrained.npz
	@echo "== untrained Tagger (the same model at its initial weights), test split:"
	@$(VENV)/bin/tagger-torch evaluate --params runs/demo/untrained.npz --config runs/demo/config.json \
		--hdf5 datasets/shapes-demo.h5 --device cpu --out runs/demo/metrics-untrained.json
	@echo "== trained Tagger, test split (trained with T=3, scored at T=5 as in the paper):"
	@$(VENV)/bin/tagger-torch evaluate --run runs/demo --hdf5 datasets/shapes-demo.h5 --device cpu \
		--out runs/demo/metrics.json
	@$(VENV)/bin/tagger-torch visualize --run runs/demo --hdf5 datasets/shapes-demo.h5 --device cpu \
		--iterations 5 --indices 0,1,2 --out runs/demo/figure.png
	@echo "figure: runs/demo/figure.png  curves: runs/demo/curves.png  scores: runs/demo/metrics.json"

clean:
	rm -rf $(VENV) *.egg-info build dist
