# Two commands for a fresh clone:  `make demo`  (the main job)  and  `make test`
# (`make test-fast` while working: the tests not marked slow).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: demo test test-fast bench references lint clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt requirements-dask.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

## make demo: the main job: the three drivers with the constants at their top, offline, on the
## embedded MNIST sample (mnist10k); 4-8.5 minutes on 2 idle cores (246 s on a fresh clone at
## 4d60371, 10:30 UTC on 2026-12-06; 122 + 295 + 83 s in the references earlier that day),
## plus the venv the first time.
## Results: MNIST_activation/, MNIST_lr/, MNIST_batch/.
demo: $(VENV)/.installed
	MPLBACKEND=Agg $(PY) test_epoch_alpha_relu.py
	MPLBACKEND=Agg $(PY) test_lr_alpha.py
	MPLBACKEND=Agg $(PY) test_batch_alpha.py

## make test: everything the tests need, then every test (exit code 5, "no tests", fails too),
## in TEST_WORKERS processes (pytest-xdist), each test file whole in one of them (its module
## fixtures made once), the longest files first (tests/conftest.py). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
PYTEST := MPLBACKEND=Agg $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
test: $(VENV)/.installed-dev
	$(PYTEST)

## make test-fast: the same without the tests marked slow, while working (exit code 5 fails too).
test-fast: $(VENV)/.installed-dev
	$(PYTEST) -m "not slow"

$(VENV)/.installed-bench: $(VENV)/.installed requirements-bench.txt
	$(PY) -m pip install --quiet -r requirements-bench.txt
	touch $@

## make bench: the benchmark scripts in bench/ (PyTorch CPU as the peer; prints `name value target PASS|FAIL`).
bench: $(VENV)/.installed-bench
	for f in bench/bench_*.py; do echo "== $$f"; MPLBACKEND=Agg $(PY) $$f || exit 1; done

## make references: regenerate every committed reference folder (MNIST: activation, lr, batch,
## size, and the conv net's activation study; Fashion-MNIST, from Debian's dataset-fashion-mnist:
## activation, lr, and size on its first 8,000 / 2,000 images, the size of mnist10k), each with the
## drivers' constants as shipped plus the entry's flags. An entry is
## <Dataset>_<study>/<run name>=<driver>[,<flag>,<value>...]: the run goes to that folder (the
## MLP's is reference/, another network's reference_<model>/), with the commas as spaces.
## Refuses a git tree with uncommitted changes (each results.json records the commit it ran
## from, clean); the runs write to .references/ and replace the committed folders only once all
## of them succeeded: the one place that replaces them. About 27 min on 2 idle cores (the
## conv net's 20 epochs about 4 of them; 06:14-06:41 UTC on 2026-12-06).
## PY=/path/to/python: that interpreter instead of the .venv (e.g. PY=/work/venv/bin/python).
REFERENCE_RUNS := MNIST_activation/reference=test_epoch_alpha_relu.py \
	MNIST_lr/reference=test_lr_alpha.py MNIST_batch/reference=test_batch_alpha.py \
	FashionMNIST_activation/reference=test_epoch_alpha_relu.py \
	FashionMNIST_lr/reference=test_lr_alpha.py MNIST_size/reference=test_size_alpha.py \
	MNIST_activation/reference_cnn=test_epoch_alpha_relu.py,--model,cnn,--hidden,120,--epochs,20 \
	FashionMNIST_size/reference=test_size_alpha.py,--subset,8000
references: $(if $(filter command line,$(origin PY)),,$(VENV)/.installed)
	$(if $(shell git status --porcelain --untracked-files=no),$(error make references: the git tree has uncommitted changes (git status): commit or stash them first, the references must come from a clean commit))
	rm -rf .references
	@set -e; for run in $(REFERENCE_RUNS); do \
		target=$${run%%=*}; command=$$(echo "$${run#*=}" | tr , ' '); \
		case $$target in FashionMNIST_*) data="--dataset fashion_mnist";; *) data="";; esac; \
		echo "== $$target: $(PY) $$command $$data --out-root .references --run-name $${target#*/}"; \
		MPLBACKEND=Agg $(PY) $$command $$data --out-root .references --run-name $${target#*/}; \
	done
	@for run in $(REFERENCE_RUNS); do target=$${run%%=*}; test -f .references/$$target/results.json \
		|| { echo "make references: .references/$$target/results.json is missing: nothing was replaced; look at the run's output above" >&2; exit 2; }; done
	@set -e; for run in $(REFERENCE_RUNS); do target=$${run%%=*}; mkdir -p $$(dirname $$target); \
		rm -rf $$target; mv .references/$$target $$target; echo "replaced $$target"; done
	rmdir .references/*/ .references

clean:
	rm -rf $(VENV) .pytest_cache
