"""The shared store contract against Milvus Lite (the same MilvusStore code serves a cluster URI)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pymilvus", reason="pymilvus is not installed: the Milvus store cannot be tested")
pytest.importorskip("milvus_lite", reason="milvus-lite is not installed: the Milvus store needs it for .db files")

from store_contract import DIM, StoreContract, record, unit  # noqa: E402

from ingot.store.milvus_store import MilvusStore, render_filter  # noqa: E402
from ingot.store.protocol import Filter  # noqa: E402


class TestMilvusStore(StoreContract):
    def make_store(self, path: Path) -> MilvusStore:
        path.mkdir(parents=True, exist_ok=True)
        return MilvusStore(str(path / "milvus.db"))


def test_render_filter_escapes_string_literals():
    expr = render_filter(Filter(sources=('a"b\\c', "x'y\nz")))
    assert expr == r'(source in ["a\"b\\c", "x' + "'" + r'y\nz"])'
    assert render_filter(None) == ""
    assert render_filter(Filter()) == ""
    assert render_filter(Filter(acl_any=())) == "(array_length(acl) == 0)"


def test_filter_values_round_trip_exotic_strings(tmp_path):
    """Values with quotes, backslashes and control characters match themselves exactly."""
    store = MilvusStore(str(tmp_path / "nested" / "m.db"))  # parent dirs are created
    try:
        store.create_collection("c", DIM)
        odd = ['q"uote', "back\\slash", "new\nline", "tab\tand 'single'", "\\\"", "plain"]
        for i, src in enumerate(odd):
            store.replace_document("c", f"d{i}", [record(f"d{i}", 0, f"text {i}", seed=i, source=src,
                                                         acl=(src,))])
        for src in odd:
            hits = store.dense_search("c", unit(0), 10, Filter(sources=(src,)))
            assert [h.record.source for h in hits] == [src]
            hits = store.dense_search("c", unit(0), 10, Filter(acl_any=(src,)))
            assert [h.record.acl for h in hits] == [[src]]
    finally:
        store.close()


def test_optional_fields_round_trip(tmp_path):
    store = MilvusStore(str(tmp_path / "m.db"))
    try:
        store.create_collection("c", DIM)
        r = record("d", 0, "alpha beta", seed=1)
        r.page_start = r.page_end = r.location = None
        r.heading_path = []
        store.replace_document("c", "d", [r])
        hit = store.text_search("c", "alpha", 1)[0]
        assert (hit.record.page_start, hit.record.page_end, hit.record.location, hit.record.heading_path) == (
            None, None, None, [])
        assert hit.score > 0
        store.replace_document("c", "d", [])  # empty = delete the document
        assert store.count("c") == 0
        assert store.document_hashes("c") == {}
    finally:
        store.close()


def test_two_stores_share_one_lite_file(tmp_path):
    a = MilvusStore(str(tmp_path / "m.db"))
    b = MilvusStore(str(tmp_path / "m.db"))
    try:
        a.create_collection("c", DIM)
        a.replace_document("c", "d", [record("d", 0, "shared", seed=2)])
        a.close()  # b keeps the in-process server alive
        assert b.count("c") == 1
    finally:
        a.close()
        b.close()


def test_every_operation_on_a_missing_collection_raises_not_found(tmp_path):
    from ingot.store.protocol import CollectionNotFound

    store = MilvusStore(str(tmp_path / "m.db"))
    try:
        calls = [
            lambda: store.count("missing"),
            lambda: store.document_hashes("missing"),
            lambda: store.replace_document("missing", "d", [record("d", 0, "x", seed=0)]),
            lambda: store.delete_documents("missing", ["d"]),
            lambda: store.text_search("missing", "x", 1),
            lambda: store.dense_search("missing", unit(0), 1),
        ]
        for call in calls:
            with pytest.raises(CollectionNotFound):
                call()
        # A collection dropped behind this store's back (another store, same file) is missing too.
        other = MilvusStore(str(tmp_path / "m.db"))
        store.create_collection("c", DIM)
        store.count("c")
        other.drop_collection("c")
        other.close()
        with pytest.raises(CollectionNotFound):
            store.dense_search("c", unit(0), 1)
    finally:
        store.close()


def test_bm25_scores_are_positive_and_ordered(tmp_path):
    store = MilvusStore(str(tmp_path / "m.db"))
    try:
        store.create_collection("c", DIM)
        texts = ["apple apple apple banana", "apple cherry", "durian only"]
        store.replace_document("c", "d", [record("d", i, t, seed=i) for i, t in enumerate(texts)])
        hits = store.text_search("c", "apple", 10)
        assert [h.record.text for h in hits] == texts[:2]
        assert hits[0].score > hits[1].score > 0
    finally:
        store.close()


def test_acl_filter_is_scalar_on_the_acl_key():
    from ingot.store.milvus_store import acl_key, group_tag

    expr = render_filter(Filter(acl_any=("team_a", 'x" or 1==1 or "')), acl_key_field=True)
    assert "array" not in expr and "acl_key" in expr
    assert group_tag("team_a") in expr and "1==1" not in expr and "team_a" not in expr
    assert acl_key([]) == "|"
    assert acl_key(["b", "a", "a"]) == f"|{min(group_tag('a'), group_tag('b'))}|{max(group_tag('a'), group_tag('b'))}|"
    # "_" is a LIKE wildcard; tags are hex, so a group never matches a look-alike group.
    assert set(group_tag("team_a")) <= set("0123456789abcdef")
