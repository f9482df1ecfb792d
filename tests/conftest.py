from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from serverutil import RunningServer

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

_MODELS_CACHE_ENV = "INGOT_MODELS_CACHE_DIR"
_own_models_cache: str | None = None


def _pin_chat_model() -> None:
    """The suite runs on SmolLM2-135M, named here for speed (the product default ``auto``
    picks the best model installed, ~10x slower per answer); a test of ``auto`` itself
    drops the variable."""
    os.environ["INGOT_MODEL"] = "smollm2-135m-instruct"


def _pin_threads() -> None:
    """One llama.cpp thread per server: the suite runs two xdist workers on two cores, and
    two processes' spinning llama.cpp threads on shared cores stall each other (the product
    default, all cores when nothing else in the process computes, sees only its own
    process; benchmarks/RESULTS.md, "llama.cpp threads under load"). A test that sets
    threads itself wins."""
    os.environ.setdefault("INGOT_THREADS", "1")


def pytest_configure(config: pytest.Config) -> None:
    """One model cache for every server and CLI the session starts, whatever its data dir:
    the re-quantized chat model and the ONNX export are built once, not once per fresh data
    dir (~25 s each on 2 busy cores). xdist workers inherit the controller's directory; the
    cache is safe to share between processes (models/files.derived_file). Tests of the
    cache itself drop the variable (``own_models_cache``)."""
    global _own_models_cache
    _pin_chat_model()
    _pin_threads()
    if os.environ.get(_MODELS_CACHE_ENV):
        return
    _own_models_cache = tempfile.mkdtemp(prefix="ingot-test-models-")
    os.environ[_MODELS_CACHE_ENV] = _own_models_cache


def pytest_unconfigure(config: pytest.Config) -> None:
    if _own_models_cache is not None:
        os.environ.pop(_MODELS_CACHE_ENV, None)
        shutil.rmtree(_own_models_cache, ignore_errors=True)


@pytest.fixture
def own_models_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests of the model cache: models live under the test's own ``data_dir/models``."""
    monkeypatch.delenv(_MODELS_CACHE_ENV, raising=False)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One state dir for the session, so the derived model file is built once."""
    return tmp_path_factory.mktemp("ingot-data")


@pytest.fixture(scope="session")
def server(data_dir: Path):
    srv = RunningServer(data_dir)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def model_id(server: RunningServer) -> str:
    return "smollm2-135m-instruct"


@pytest.fixture
def client(server: RunningServer):
    import openai

    return openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0, timeout=120)


@pytest.fixture
def async_client(server: RunningServer):
    import openai

    return openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0, timeout=120)
