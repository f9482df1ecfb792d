#!/usr/bin/env bash
# Builds llama.cpp's own `llama-server` (C++, continuous batching) from the llama.cpp that
# llama-cpp-python vendors, so benchmarks/generation.py can compare ingot with the server
# people actually pick, running the very same ggml kernels ingot runs.
#
# Same portable CPU flags as scripts/install.sh uses for the wheel (the native build dies
# with "Illegal instruction" in AMX code on these VMs). Offline: no curl, no OpenSSL, no web
# UI (neither npm nor the Hugging Face download of prebuilt UI assets). Only the
# `llama-server` target, linked statically, into a cache keyed by version + flags:
#   ~/.cache/ingot/llama-server-<version>-<key>/llama-server
# reused when present. Prints the binary's path on the last line of stdout.
#
#   scripts/build_llama_server.sh            # build (20-45 min on 2 cores; 44 on a loaded VM) or reuse
#   LLAMA_SERVER=$(scripts/build_llama_server.sh | tail -1)
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${INGOT_VENV:-.venv}"
LLAMA_CPP_VERSION="0.3.36"
# Keep in step with LLAMA_CMAKE_ARGS in scripts/install.sh (LLAVA_BUILD is the wheel's own
# option and means nothing to llama.cpp's CMakeLists, so it is not here).
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
# Server-only switches: offline (LLAMA_CURL is deprecated and ignored by this llama.cpp but
# is kept for older trees), no HTTPS, no web UI, nothing but the server, one static binary.
SERVER_CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF"
CACHE_ROOT="${INGOT_LLAMA_SERVER_CACHE:-$HOME/.cache/ingot}"
FLAGS_KEY="$(printf '%s %s %s' "$LLAMA_CPP_VERSION" "$LLAMA_CMAKE_ARGS" "$SERVER_CMAKE_ARGS" | sha256sum | cut -c1-16)"
OUT_DIR="$CACHE_ROOT/llama-server-$LLAMA_CPP_VERSION-$FLAGS_KEY"
BIN="$OUT_DIR/llama-server"

if [ -x "$BIN" ]; then
    echo "[llama-server] reusing $BIN" >&2
    echo "$BIN"
    exit 0
fi

# Tools first, with a clear message: nothing below works without them.
missing=""
command -v cmake >/dev/null 2>&1 || missing="$missing cmake"
command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || missing="$missing C-compiler"
command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || missing="$missing C++-compiler"
command -v make >/dev/null 2>&1 || command -v ninja >/dev/null 2>&1 || missing="$missing make"
if [ -n "$missing" ]; then
    echo "[llama-server] error: missing:$missing" >&2
    echo "[llama-server] on Debian/Ubuntu (as root): apt-get install -y cmake build-essential" >&2
    exit 3
fi
CMAKE_VERSION="$(cmake --version | head -1 | awk '{print $3}')"
case "$CMAKE_VERSION" in
    3.1[4-9]*|3.[2-9][0-9]*|[4-9].*) ;;
    *) echo "[llama-server] error: cmake $CMAKE_VERSION is too old (llama.cpp needs >= 3.14)" >&2; exit 3 ;;
esac
[ -x "$VENV/bin/pip" ] || { echo "[llama-server] error: $VENV/bin/pip not found (run scripts/install.sh first)" >&2; exit 3; }

mkdir -p "$CACHE_ROOT"
# This run's own work folder next to OUT_DIR (same filesystem: publishing is one rename),
# outside any git checkout, so llama.cpp's build-info does not read the wrong repository.
WORK="$(mktemp -d "$OUT_DIR.tmp.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"

SDIST="${LLAMA_CPP_SDIST:-}"
if [ -z "$SDIST" ]; then
    # pip's cache serves the sdist on later runs; the first one needs the index (or set
    # LLAMA_CPP_SDIST to a local llama_cpp_python-0.3.36.tar.gz).
    echo "[llama-server] fetching the llama-cpp-python $LLAMA_CPP_VERSION sdist" >&2
    "$VENV/bin/pip" download -q --no-deps --no-binary :all: "llama-cpp-python==$LLAMA_CPP_VERSION" -d "$WORK/sdist" >&2
    SDIST="$(ls "$WORK"/sdist/llama_cpp_python-*.tar.gz | head -1)"
fi
tar -xzf "$SDIST" -C "$WORK"
SRC="$WORK/llama_cpp_python-$LLAMA_CPP_VERSION/vendor/llama.cpp"
[ -f "$SRC/tools/server/CMakeLists.txt" ] || { echo "[llama-server] error: no vendor/llama.cpp/tools/server in $SDIST" >&2; exit 4; }

# The sdist has no .git: take the vendored commit from the wheel's CHANGELOG entry for this
# version ("update llama.cpp to ggml-org/llama.cpp@<sha>") so `llama-server --version` says it.
COMMIT="$(awk -v v="## [$LLAMA_CPP_VERSION]" 'index($0, v) == 1 {on=1; next} on && /^## \[/ {exit} on' \
    "$WORK/llama_cpp_python-$LLAMA_CPP_VERSION/CHANGELOG.md" 2>/dev/null \
    | grep -o 'llama.cpp@[0-9a-f]*' | head -1 | cut -d@ -f2 || true)"
COMMIT="${COMMIT:-unknown}"

JOBS="${JOBS:-$(nproc)}"
echo "[llama-server] building llama-server (llama.cpp@$COMMIT from llama-cpp-python $LLAMA_CPP_VERSION, $JOBS jobs; 20-45 min on 2 cores, once)" >&2
start=$(date +%s)
# shellcheck disable=SC2086  # the flag strings are word lists on purpose
cmake -S "$SRC" -B "$WORK/build" $LLAMA_CMAKE_ARGS $SERVER_CMAKE_ARGS \
    -DLLAMA_BUILD_COMMIT="$COMMIT" >"$WORK/cmake.log" 2>&1 \
    || { tail -40 "$WORK/cmake.log" >&2; echo "[llama-server] error: cmake configure failed" >&2; exit 5; }
cmake --build "$WORK/build" --target llama-server -j "$JOBS" >"$WORK/build.log" 2>&1 \
    || { tail -40 "$WORK/build.log" >&2; echo "[llama-server] error: build failed" >&2; exit 5; }
built="$WORK/build/bin/llama-server"
[ -x "$built" ] || { echo "[llama-server] error: the build produced no bin/llama-server" >&2; exit 5; }

mkdir -p "$WORK/out"
cp "$built" "$WORK/out/llama-server"
cp "$SRC/LICENSE" "$WORK/out/LICENSE.llama.cpp"
printf 'llama-cpp-python %s\nllama.cpp %s\ncmake %s %s\n' "$LLAMA_CPP_VERSION" "$COMMIT" "$LLAMA_CMAKE_ARGS" "$SERVER_CMAKE_ARGS" >"$WORK/out/BUILD_INFO"
# mv -T fails when another run published first: keep theirs.
mv -T "$WORK/out" "$OUT_DIR" 2>/dev/null || [ -x "$BIN" ] \
    || { echo "[llama-server] error: cannot publish into $OUT_DIR" >&2; exit 6; }
echo "[llama-server] built in $(( $(date +%s) - start ))s: $BIN" >&2
echo "$BIN"
