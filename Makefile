# Two commands do all set-up on a fresh machine: `make run` and `make test`.
# The venv is (re)installed only when pyproject.toml changes (stamp file), so a
# second run is quick.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test bench check-reliability clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first and pinned: here it resolves to the local CPU build
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP)

# the store lives in the venv's data folder (.venv/var/matcher, see `matcher info`), shared with
# .venv/bin/matcher; the demo catalog's vectors come from models/ (verified by re-encoding a sample),
# so the first start encodes nothing
run: install
	$(VENV)/bin/matcher db upgrade
	$(VENV)/bin/matcher load --if-empty fixtures/catalog.jsonl
	$(VENV)/bin/matcher vectors import --optional models/fixture-vectors.npz
	# the loopback demo answers recommendations and takes feedback without a key
	MATCHER_OPEN_RECOMMENDATIONS=true MATCHER_OPEN_FEEDBACK=true $(VENV)/bin/gunicorn --bind $(HOST):$(PORT) --workers 1 --threads 4 \
		--timeout 300 'service.wsgi:app'

test: install
	bash tests/ensure_chromium.sh
	$(PY) -m pytest

# speed, memory, scaling and the reviewer-paper gold standard: one table, also written to
# bench/results/latest.json (6-7 min on 2 cores with the caches in var/bench/; a fresh clone fills them first: ~18 min)
bench: install
	$(PY) -m bench

# fuzzing, hostile inputs, load, faults and access control at full size (< 20 min); one table,
# also written to bench/results/reliability.json. `make test` runs the same tests small.
check-reliability: install
	$(PY) -m bench.reliability

clean:
	rm -rf $(VENV) var .pytest_cache
