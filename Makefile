# Two commands a new user needs: `make serve` and `make test`. Both install first.
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
# Test processes (pytest-xdist); a test module stays on one process, so its servers are
# started once. 2 cuts the suite on 2 cores from ~18 to ~14 min; 0 runs it in this process.
TEST_WORKERS ?= 2
PYTEST = $(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

.PHONY: install install-dev serve test test-fast bench clean

install:
	bash scripts/install.sh

install-dev:
	bash scripts/install.sh test,bench

serve: install
	$(VENV)/bin/ingot serve --host $(HOST) --port $(PORT)

test: install-dev
	$(PYTEST)

# The fast tier: everything not marked slow (tests/*: @pytest.mark.slow), about 2 minutes.
test-fast: install-dev
	$(PYTEST) -m "not slow"

bench: install-dev
	$(VENV)/bin/python benchmarks/generation.py

clean:
	rm -rf $(VENV) build *.egg-info
