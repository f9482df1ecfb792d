from __future__ import annotations

from pathlib import Path

import pytest

from serverutil import RunningServer

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


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
