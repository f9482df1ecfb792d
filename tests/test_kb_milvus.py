"""The same knowledge-base API on Milvus (Milvus Lite file): the path to a cluster URI."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from authutil import isolated_data_dir
from kbutil import MULTI_PAGE_PDF, need_docs, page_containing, search, upload, wait_job
from serverutil import RunningServer

pytestmark = pytest.mark.slow  # a server on Milvus Lite, ~20 s


def test_upload_search_replace_delete_on_milvus(data_dir: Path, tmp_path: Path) -> None:
    need_docs(MULTI_PAGE_PDF)
    home = isolated_data_dir(data_dir, tmp_path)
    env = {"INGOT_VECTOR_STORE": "milvus", "INGOT_MILVUS_URI": str(tmp_path / "kb.db")}
    srv = RunningServer(home, "--model", "none", env=env)
    try:
        base = srv.base_url
        assert httpx.post(f"{base}/collections", json={"name": "mdocs"}).status_code == 201
        job = wait_job(base, upload(base, "mdocs", [(MULTI_PAGE_PDF.name, MULTI_PAGE_PDF.read_bytes()),
                                                    ("note.txt", b"The vault code is 7319.")])["id"])
        assert job["progress"] == {"total": 2, "finished": 2, "failed": 0}
        for mode in ("dense", "bm25", "hybrid"):
            top = search(base, "mdocs", "Who patented the typewriter in 1868?", mode=mode, top_k=3)["data"][0]
            assert top["source"] == MULTI_PAGE_PDF.name and top["page_start"] == page_containing(MULTI_PAGE_PDF, "Sholes")
        again = wait_job(base, upload(base, "mdocs", [("note.txt", b"The vault code is 4455.")])["id"])
        assert again["documents"][0]["action"] == "replaced"
        texts = [p["text"] for p in search(base, "mdocs", "vault code", mode="bm25")["data"]]
        assert "The vault code is 4455." in texts and "The vault code is 7319." not in texts
        info = httpx.get(f"{base}/collections/mdocs").json()
        docs = httpx.get(f"{base}/collections/mdocs/documents").json()["data"]
        assert info["chunks"] == sum(d["chunks"] for d in docs)
        assert httpx.delete(f"{base}/collections/mdocs").status_code == 200
        assert httpx.get(f"{base}/collections/mdocs").status_code == 404
    finally:
        srv.stop()
