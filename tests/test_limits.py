"""Input limits: request bodies over INGOT_MAX_BODY_BYTES (declared or streamed) get 413
before the route runs, uploads have their own larger limit and allowed types (415), and an
upload's filename is only a label: ``../`` in it writes nothing outside the data dir."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from ingot.config import load_settings
from ingot.security.uploads import check_upload, safe_filename
from ingot.errors import IngotError as APIError  # the upload checks raise the generic errors
from serverutil import RunningServer

BODY_LIMIT = 64 * 1024
UPLOAD_LIMIT = 128 * 1024


@pytest.mark.parametrize("given, safe", [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\win.ini", "win.ini"),
    ("/abs/path/report.pdf", "report.pdf"),
    ("..", "upload"),
    ("", "upload"),
    (None, "upload"),
    (".env", "env"),
    ("nul\x00byte.txt", "nulbyte.txt"),
    ("CON.txt", "_CON.txt"),
    ("Überblick 2024.pdf", "Überblick 2024.pdf"),
    ("a:b|c?.md", "abc.md"),
])
def test_safe_filename(given, safe):
    assert safe_filename(given) == safe


def test_safe_filename_keeps_long_names_under_255_bytes_with_their_extension():
    name = safe_filename("é" * 300 + ".docx")
    assert len(name.encode()) <= 255 and name.endswith(".docx")


def test_check_upload_rejects_size_and_type(tmp_path):
    settings = load_settings(data_dir=tmp_path, max_upload_bytes=2048)
    assert check_upload("../notes.md", 100, settings) == "notes.md"
    with pytest.raises(APIError) as big:
        check_upload("a.pdf", 4096, settings)
    assert big.value.status == 413 and big.value.code == "file_too_large"
    for bad in ("tool.exe", "noext", "archive.tar.gz"):
        with pytest.raises(APIError) as typ:
            check_upload(bad, 10, settings)
        assert typ.value.status == 415 and typ.value.code == "unsupported_file_type"
    narrowed = load_settings(data_dir=tmp_path, upload_extensions="PDF, .md")
    assert narrowed.upload_extensions == ("pdf", "md")
    with pytest.raises(APIError):
        check_upload("a.txt", 10, narrowed)


@pytest.fixture(scope="module")
def limited_server(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from authutil import isolated_data_dir

    state = isolated_data_dir(data_dir, tmp_path_factory.mktemp("limits"))
    srv = RunningServer(state, "--model", "none", "--ranking-model", "none",
                        env={"INGOT_MAX_BODY_BYTES": str(BODY_LIMIT), "INGOT_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)})
    yield srv, state
    srv.stop()


def _assert_413(r: httpx.Response) -> None:
    assert r.status_code == 413, r.text[:500]
    err = r.json()["error"]
    assert err["code"] == "request_too_large" and err["type"] == "invalid_request_error"
    assert r.headers.get("x-request-id")


@pytest.mark.slow  # a server of its own with small limits
def test_declared_body_over_the_limit_is_413(limited_server):
    srv, _ = limited_server
    r = httpx.post(f"{srv.base_url}/embeddings", json={"input": "word " * (BODY_LIMIT // 4)}, timeout=60)
    _assert_413(r)
    assert "INGOT_MAX_BODY_BYTES" in r.json()["error"]["message"]


@pytest.mark.slow  # a server of its own with small limits
def test_streamed_body_over_the_limit_is_413(limited_server):
    srv, _ = limited_server

    def chunks():  # no Content-Length: chunked transfer encoding
        yield b'{"input": "'
        for _ in range(BODY_LIMIT // 1024 + 4):
            yield b"a " * 512
        yield b'"}'

    r = httpx.post(f"{srv.base_url}/embeddings", content=chunks(), headers={"content-type": "application/json"},
                   timeout=60)
    _assert_413(r)


@pytest.mark.slow  # a server of its own with small limits
def test_body_under_the_limit_is_served(limited_server):
    srv, _ = limited_server
    r = httpx.post(f"{srv.base_url}/embeddings", json={"input": "word " * (BODY_LIMIT // 6), "truncate": "END"},
                   timeout=60)
    assert r.status_code == 200, r.text[:300]


def _collection(srv: RunningServer) -> str:
    name = f"limits_{uuid.uuid4().hex[:8]}"
    r = httpx.post(f"{srv.base_url}/collections", json={"name": name}, timeout=60)
    assert r.status_code == 201, r.text
    return name


def _wait_job(srv: RunningServer, job_id: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = httpx.get(f"{srv.base_url}/jobs/{job_id}", timeout=30).json()
        if job["status"] == "done":
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not done: {job}")


@pytest.mark.slow  # a server of its own with small limits, ~17 s of uploads
def test_uploads_have_their_own_limit_and_allowed_types(limited_server):
    srv, _ = limited_server
    name = _collection(srv)
    url = f"{srv.base_url}/collections/{name}/documents"
    medium = b"Plain text line about ingot limits.\n" * (96 * 1024 // 36)  # over the JSON limit, under the upload one
    ok = httpx.post(url, files={"files": ("medium.txt", medium, "text/plain")}, timeout=60)
    assert ok.status_code == 202, ok.text
    big = b"x" * (UPLOAD_LIMIT + 1024)
    r = httpx.post(url, files={"files": ("big.txt", big, "text/plain")}, timeout=60)
    assert r.status_code == 413 and "INGOT_MAX_UPLOAD_BYTES" in r.json()["error"]["message"]
    r = httpx.post(url, files={"files": ("tool.exe", b"MZ\x90\x00", "application/octet-stream")}, timeout=60)
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_file_type"
    assert _wait_job(srv, ok.json()["id"])["documents"][0]["status"] == "done"


@pytest.mark.slow  # a server of its own with small limits
def test_traversal_in_a_filename_writes_nothing_outside_the_data_dir(limited_server, tmp_path_factory):
    srv, state = limited_server
    name = _collection(srv)
    marker = f"escape-{uuid.uuid4().hex[:10]}.txt"
    hostile = ["../../../../" + marker, "..\\..\\..\\" + marker, "/tmp/" + marker]
    files = [("files", (n, f"Secret payload {i} for the traversal test.".encode(), "text/plain"))
             for i, n in enumerate(hostile)]
    r = httpx.post(f"{srv.base_url}/collections/{name}/documents", files=files, timeout=60)
    assert r.status_code == 202, r.text
    job = _wait_job(srv, r.json()["id"])
    assert {d["filename"] for d in job["documents"]} == {marker}
    docs = httpx.get(f"{srv.base_url}/collections/{name}/documents", timeout=30).json()["data"]
    assert {d["source"] for d in docs} == {marker}
    # Nothing named like the marker anywhere outside the data dir: not in its ancestors,
    # not in the test temp tree, not in /tmp.
    state = state.resolve()
    places = [*state.parents, tmp_path_factory.getbasetemp(), Path("/tmp")]
    for place in places:
        for found in place.glob(marker):
            assert state in found.resolve().parents, found
    for found in tmp_path_factory.getbasetemp().rglob(marker):
        assert state in found.resolve().parents, found
