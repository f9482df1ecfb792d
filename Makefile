# Two commands a new user needs: `make serve` and `make test`. Both install first.
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install install-dev serve test test-fast bench clean

install:
	bash scripts/install.sh

install-dev:
	bash scripts/install.sh test,bench

serve: install
	$(VENV)/bin/ingot serve --host $(HOST) --port $(PORT)

test: install-dev
	$(VENV)/bin/python -m pytest -q

# The fast tier: everything not marked slow (tests/*: @pytest.mark.slow), about 2 minutes.
test-fast: install-dev
	$(VENV)/bin/python -m pytest -q -m "not slow"

bench: install-dev
	$(VENV)/bin/python benchmarks/generation.py

clean:
	rm -rf $(VENV) build *.egg-info
