"""The configured store opens where the settings say."""

from __future__ import annotations

from ingot.config import load_settings
from ingot.store.factory import open_store


def test_default_is_lancedb_under_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("INGOT_DATA_DIR", str(tmp_path))
    store = open_store(load_settings())
    try:
        assert type(store).__name__ == "LanceDBStore"
        store.create_collection("kb", 4)
        assert (tmp_path / "lancedb").is_dir()
    finally:
        store.close()


def test_milvus_lite_by_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("INGOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("INGOT_VECTOR_STORE", "milvus")
    monkeypatch.setenv("INGOT_MILVUS_URI", str(tmp_path / "m" / "kb.db"))
    store = open_store(load_settings())
    try:
        assert type(store).__name__ == "MilvusStore"
        store.create_collection("kb", 4)
        assert store.list_collections() == ["kb"]
        assert (tmp_path / "m" / "kb.db").exists()
    finally:
        store.close()
