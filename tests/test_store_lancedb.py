"""LanceDB store: the shared contract plus LanceDB-specific behaviour (ANN index past a
size threshold, atomic replace, filter quoting, freshness of the BM25 index)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from store_contract import DIM, StoreContract, record, unit

from ingot.store.lancedb_store import VECTOR_INDEX, LanceDBStore, render_filter
from ingot.store.protocol import ChunkRecord, CollectionNotFound, Filter, StoreError


class TestLanceDBStore(StoreContract):
    def make_store(self, path):
        return LanceDBStore(path)


def chunks(doc: str, n: int, *, version: str = "h1", seed0: int = 0, dim: int = DIM, **kw) -> list[ChunkRecord]:
    rng = np.random.default_rng(seed0)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return [
        ChunkRecord(id=f"{doc}-{version}-{i}", document_id=doc, content_hash=version, text=f"{doc} chunk {i} {version}",
                    vector=vecs[i], source=kw.get("source", f"{doc}.pdf"), acl=list(kw.get("acl", [])),
                    kinds=list(kw.get("kinds", ["text"])), created_at=kw.get("created", 1_700_000_000.0))
        for i in range(n)
    ]


def vector_index_names(store: LanceDBStore, name: str) -> set[str]:
    return {i.name for i in store._open(name).table.list_indices()}


@pytest.fixture
def store(tmp_path):
    s = LanceDBStore(tmp_path / "db")
    yield s
    s.close()


def test_ann_index_is_built_past_the_threshold_and_finds_the_nearest(tmp_path):
    dim = 16
    s = LanceDBStore(tmp_path / "db", index_threshold=400)
    s.create_collection("big", dim)
    docs = {f"d{j}": chunks(f"d{j}", 50, seed0=j, dim=dim) for j in range(9)}
    for doc, recs in docs.items():
        s.replace_document("big", doc, recs)
        assert (VECTOR_INDEX in vector_index_names(s, "big")) == (s.count("big") >= 400)
    assert VECTOR_INDEX in vector_index_names(s, "big")
    # every probe finds its own record first, with an exact (refined) similarity
    for doc, i in [("d0", 0), ("d3", 17), ("d8", 49)]:
        hit = s.dense_search("big", docs[doc][i].vector, 5)[0]
        assert hit.record.id == docs[doc][i].id
        assert hit.score == pytest.approx(1.0, abs=1e-3)
    # rows written after the index was trained (not folded in yet) are still found
    late = chunks("late", 3, seed0=99, dim=dim)
    s.replace_document("big", "late", late)
    assert s.dense_search("big", late[1].vector, 3)[0].record.id == late[1].id
    # a replaced document's old chunks are gone from indexed results too
    s.replace_document("big", "d3", chunks("d3", 2, version="h2", seed0=300, dim=dim))
    hits = s.dense_search("big", docs["d3"][17].vector, 10)
    assert all(h.record.id != docs["d3"][17].id for h in hits)
    # filters are prefilters on the ANN path too: top-k among allowed rows only
    only = s.dense_search("big", docs["d0"][0].vector, 5, Filter(document_ids=("d5",)))
    assert len(only) == 5 and {h.record.document_id for h in only} == {"d5"}
    s.optimize("big")
    assert s.dense_search("big", late[1].vector, 1)[0].record.id == late[1].id
    s.close()
    again = LanceDBStore(tmp_path / "db", index_threshold=400)
    assert again.dimensions("big") == dim
    assert again.dense_search("big", docs["d8"][49].vector, 1)[0].record.id == docs["d8"][49].id
    again.close()


def test_replace_document_is_one_commit_and_atomic_for_readers(store):
    store.create_collection("docs", DIM)
    store.replace_document("docs", "other", chunks("other", 3, seed0=1))
    versions = {"v1": chunks("doc", 3, version="v1", seed0=2), "v2": chunks("doc", 5, version="v2", seed0=3)}
    store.replace_document("docs", "doc", versions["v1"])
    table = store._open("docs").table
    before = table.version
    store.replace_document("docs", "doc", versions["v2"])
    assert table.version == before + 1  # a single commit
    expected = {v: {r.id for r in recs} for v, recs in versions.items()}

    stop = threading.Event()
    seen: list[set[str]] = []
    errors: list[BaseException] = []

    def reader():
        try:
            while not stop.is_set():
                hits = store.dense_search("docs", unit(0), 50, Filter(document_ids=("doc",)))
                seen.append({h.record.id for h in hits})
                text = store.text_search("docs", "doc chunk", 50, Filter(document_ids=("doc",)))
                seen.append({h.record.id for h in text})
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for n in range(16):
        store.replace_document("docs", "doc", versions["v1" if n % 2 else "v2"])
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert seen and all(ids in (expected["v1"], expected["v2"]) for ids in seen), [ids for ids in seen if ids not in expected.values()][:3]
    assert store.count("docs") == 3 + 3  # last write was v1 (n=15)
    assert store.document_hashes("docs") == {"other": "h1", "doc": "v1"}


def test_replace_with_empty_records_deletes_and_keeps_others(store):
    store.create_collection("docs", DIM)
    store.replace_document("docs", "a", chunks("a", 4))
    store.replace_document("docs", "b", chunks("b", 2))
    store.replace_document("docs", "a", [])
    assert store.count("docs") == 2
    assert store.document_hashes("docs") == {"b": "h1"}
    assert store.delete_documents("docs", ["a"]) == 0
    assert store.delete_documents("docs", []) == 0


def test_records_must_match_document_and_dimension(store):
    store.create_collection("docs", DIM)
    with pytest.raises(StoreError):
        store.replace_document("docs", "a", chunks("b", 1))
    with pytest.raises(StoreError):
        store.replace_document("docs", "a", chunks("a", 1, dim=DIM + 1))
    with pytest.raises(StoreError):
        store.dense_search("docs", np.ones(DIM + 1, np.float32), 3)
    assert store.count("docs") == 0


def test_hits_carry_every_field(store):
    store.create_collection("docs", DIM)
    rec = record("d", 0, "Alpha beta gamma.", seed=7, source="x.pdf", kinds=("text", "table"), acl=("g",),
                 created=1_750_000_000.5)
    rec.page_end = None
    store.replace_document("docs", "d", [rec])
    for hit in (store.dense_search("docs", unit(7), 1)[0], store.text_search("docs", "gamma", 1)[0]):
        got = hit.record
        assert (got.id, got.document_id, got.content_hash, got.text, got.source) == (
            rec.id, "d", "h1", "Alpha beta gamma.", "x.pdf")
        assert (got.page_start, got.page_end, got.location) == (1, None, "page 1")
        assert (got.heading_path, got.kinds, got.acl, got.created_at) == (["Intro"], ["text", "table"], ["g"], 1_750_000_000.5)


def test_text_search_is_fresh_after_writes_and_optimize(store):
    store.create_collection("docs", DIM)
    store.replace_document("docs", "a", [record("a", 0, "Aardvarks dig burrows.", seed=1)])
    assert [h.record.document_id for h in store.text_search("docs", "aardvarks", 5)] == ["a"]
    store.optimize("docs")  # folds the rows into the BM25 index
    store.replace_document("docs", "b", [record("b", 0, "Badgers dig burrows too.", seed=2)])
    assert {h.record.document_id for h in store.text_search("docs", "burrows", 5)} == {"a", "b"}
    store.replace_document("docs", "a", [record("a", 0, "Now about otters.", seed=3, content_hash="h2")])
    assert {h.record.document_id for h in store.text_search("docs", "burrows", 5)} == {"b"}
    assert [h.record.document_id for h in store.text_search("docs", "otters", 5)] == ["a"]
    store.optimize("docs")
    assert {h.record.document_id for h in store.text_search("docs", "burrows", 5)} == {"b"}
    assert store.text_search("docs", "   ", 5) == []
    assert store.text_search("docs", 'unbalanced "quote AND (', 5) == []  # no query syntax


def test_text_filter_is_a_prefilter(store):
    store.create_collection("docs", DIM)
    # many strongly matching secret chunks, one weakly matching public one
    store.replace_document("docs", "s", [record("s", i, "falcon falcon falcon", seed=i, acl=("board",)) for i in range(30)])
    store.replace_document("docs", "p", [record("p", 0, "a falcon among many other words here", seed=99)])
    hits = store.text_search("docs", "falcon", 1, Filter(acl_any=("staff",)))
    assert [h.record.document_id for h in hits] == ["p"]
    dense = store.dense_search("docs", unit(0), 1, Filter(acl_any=()))
    assert [h.record.document_id for h in dense] == ["p"]


def test_document_hashes_returns_all_documents(store):
    store.create_collection("docs", DIM)
    for j in range(25):  # more than LanceDB's default query limit of 10
        store.replace_document("docs", f"d{j}", chunks(f"d{j}", 2, version=f"v{j}", seed0=j))
    assert store.document_hashes("docs") == {f"d{j}": f"v{j}" for j in range(25)}


EVIL = ["x' OR '1'='1", "a\\", "a\\' OR 1=1 --", "b''c", "O'Brien", 'q"uote', "日本語", "x) OR (1=1"]


def test_filter_strings_round_trip_exactly(store):
    store.create_collection("docs", DIM)
    for j, value in enumerate(EVIL):
        store.replace_document("docs", value, chunks(value, 1, seed0=j, source=value, acl=[value], kinds=[value]))
    store.replace_document("docs", "public", chunks("public", 1, seed0=50))
    for value in EVIL:
        for flt in (Filter(sources=(value,)), Filter(document_ids=(value,)), Filter(kinds=(value,))):
            assert [h.record.document_id for h in store.dense_search("docs", unit(0), 20, flt)] == [value]
        visible = {h.record.document_id for h in store.dense_search("docs", unit(0), 20, Filter(acl_any=(value,)))}
        assert visible == {value, "public"}
    assert store.delete_documents("docs", [EVIL[0], "nope"]) == 1
    assert store.count("docs") == len(EVIL)


def test_render_filter():
    assert render_filter(None) is None
    assert render_filter(Filter()) is None
    assert render_filter(Filter(sources=("it's",))) == "(source IN ('it''s'))"
    assert render_filter(Filter(acl_any=())) == "(array_has_any(read_groups, ['']))"
    # the public marker is always first; duplicates and an empty group add nothing
    assert render_filter(Filter(acl_any=("g", "", "g", "h'"))) == "(array_has_any(read_groups, ['', 'g', 'h''']))"
    sql = render_filter(Filter(kinds=("table",), acl_any=("g",), created_after=1.5, created_before=2e9))
    assert sql == ("(array_has_any(kinds, ['table'])) AND (array_has_any(read_groups, ['', 'g'])) AND "
                   "(created_at > 1.5) AND (created_at < 2000000000.0)")
    # collections made before the read_groups column
    assert render_filter(Filter(acl_any=()), read_groups=False) == "(acl IS NULL OR array_length(acl) = 0)"
    assert render_filter(Filter(acl_any=("g",)), read_groups=False) == (
        "(acl IS NULL OR array_length(acl) = 0 OR array_has_any(acl, ['g']))")
    with pytest.raises(StoreError):
        render_filter(Filter(created_after=float("nan")))
    with pytest.raises(StoreError):
        render_filter(Filter(sources=(3,)))  # type: ignore[arg-type]


def test_created_bounds(store):
    store.create_collection("docs", DIM)
    for j, ts in enumerate([100.0, 200.0, 300.0]):
        store.replace_document("docs", f"d{j}", chunks(f"d{j}", 1, seed0=j, created=ts))
    got = {h.record.document_id for h in store.dense_search("docs", unit(0), 10, Filter(created_after=100.0, created_before=300.0))}
    assert got == {"d1"}


def test_unknown_and_dropped_collections(tmp_path):
    a = LanceDBStore(tmp_path / "db")
    b = LanceDBStore(tmp_path / "db")
    a.create_collection("docs", DIM)
    a.replace_document("docs", "d", chunks("d", 2))
    assert b.count("docs") == 2  # another handle sees the writes
    b.drop_collection("docs")
    for op in (lambda: a.count("docs"), lambda: a.dense_search("docs", unit(0), 1),
               lambda: a.text_search("docs", "chunk", 1), lambda: a.document_hashes("docs"),
               lambda: a.replace_document("docs", "d", []), lambda: a.delete_documents("docs", ["d"]),
               lambda: a.drop_collection("docs"), lambda: a.count("../etc"), lambda: a.count("")):
        with pytest.raises(CollectionNotFound):
            op()
    a.create_collection("docs", DIM)  # can be recreated
    assert a.count("docs") == 0 and a.list_collections() == ["docs"]
    a.close()
    b.close()
    with pytest.raises(StoreError):
        a.count("docs")


def test_concurrent_writers_on_one_store(store):
    store.create_collection("docs", DIM)
    errors: list[BaseException] = []

    def writer(w: int):
        try:
            for j in range(6):
                store.replace_document("docs", f"w{w}-{j}", chunks(f"w{w}-{j}", 3, seed0=w * 100 + j))
                store.replace_document("docs", f"w{w}-{j}", chunks(f"w{w}-{j}", 2, version="h2", seed0=w * 100 + j))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.count("docs") == 4 * 6 * 2
    assert set(store.document_hashes("docs").values()) == {"h2"}


def test_writes_fold_rows_into_the_text_index_periodically(tmp_path):
    s = LanceDBStore(tmp_path / "db", optimize_every_commits=3, optimize_every_rows=10**9)
    s.create_collection("docs", DIM)
    table = s._open("docs").table
    s.replace_document("docs", "a", chunks("a", 2))
    s.replace_document("docs", "b", chunks("b", 2))
    assert table.index_stats("text_idx").num_unindexed_rows == 4
    s.replace_document("docs", "c", chunks("c", 2))  # third commit: optimize
    assert table.index_stats("text_idx").num_unindexed_rows == 0
    s.replace_document("docs", "d", chunks("d", 2))
    s.close()
    again = LanceDBStore(tmp_path / "db", optimize_every_rows=3)
    assert again._open("docs").rows_since_optimize == 2  # picked up from the index stats
    again.replace_document("docs", "e", chunks("e", 1))
    assert again._open("docs").table.index_stats("text_idx").num_unindexed_rows == 0
    assert {h.record.document_id for h in again.text_search("docs", "chunk", 20)} == set("abcde")
    again.close()


def test_acl_filter_uses_the_indexed_read_groups_column(store):
    store.create_collection("docs", DIM)
    table = store._open("docs").table
    assert {"read_groups_idx", "kinds_idx", "document_id_idx", "source_idx"} <= vector_index_names(store, "docs")
    store.replace_document("docs", "pub", chunks("pub", 2, seed0=1))
    store.replace_document("docs", "a", chunks("a", 2, seed0=2, acl=["ga"]))
    store.optimize("docs")  # these rows are now covered by the LABEL_LIST index ...
    store.replace_document("docs", "b", chunks("b", 2, seed0=3, acl=["gb", "ga"]))
    store.replace_document("docs", "pub2", chunks("pub2", 1, seed0=4))  # ... these are not yet
    assert table.index_stats("read_groups_idx").num_unindexed_rows == 3
    assert sorted(table.search().select(["document_id", "read_groups"]).to_arrow()
                  .column("read_groups").to_pylist()) == [[""]] * 3 + [["ga"]] * 2 + [["gb", "ga"]] * 2

    def visible(groups):
        flt = Filter(acl_any=groups)
        dense = {h.record.document_id for h in store.dense_search("docs", unit(0), 20, flt)}
        text = {h.record.document_id for h in store.text_search("docs", "chunk", 20, flt)}
        assert dense == text
        return dense

    assert visible(()) == {"pub", "pub2"}
    assert visible(("ga",)) == {"pub", "pub2", "a", "b"}
    assert visible(("gb",)) == {"pub", "pub2", "b"}
    assert visible(("nobody", "")) == {"pub", "pub2"}  # "" is not a group: it adds nothing
    # hits carry the ACL as written (the public marker never leaks out)
    assert {tuple(h.record.acl) for h in store.dense_search("docs", unit(0), 20)} == {(), ("ga",), ("gb", "ga")}


def test_empty_acl_group_is_rejected(store):
    store.create_collection("docs", DIM)
    with pytest.raises(StoreError, match="ACL groups"):
        store.replace_document("docs", "d", chunks("d", 1, acl=["ok", ""]))
    assert store.count("docs") == 0


def test_collection_without_read_groups_still_filters_acls(tmp_path):
    """A collection created before schema 2 (no read_groups column) keeps working."""
    import lancedb

    from ingot.store.lancedb_store import READERS, collection_schema

    old = collection_schema(DIM)
    old = old.remove(old.get_field_index(READERS))
    lancedb.connect(str(tmp_path / "db")).create_table("old", schema=old)
    s = LanceDBStore(tmp_path / "db")
    try:
        assert not s._open("old").read_groups
        s.replace_document("old", "pub", chunks("pub", 2, seed0=1))
        s.replace_document("old", "sec", chunks("sec", 2, seed0=2, acl=["g"]))
        s.optimize("old")  # adds the scalar indices the old table can have
        assert "kinds_idx" in vector_index_names(s, "old")
        for groups, expected in (((), {"pub"}), (("g",), {"pub", "sec"}), (("x",), {"pub"})):
            flt = Filter(acl_any=groups)
            assert {h.record.document_id for h in s.dense_search("old", unit(0), 10, flt)} == expected
            assert {h.record.document_id for h in s.text_search("old", "chunk", 10, flt)} == expected
    finally:
        s.close()


def test_index_maintenance_is_off_the_write_path_when_asked(tmp_path):
    """With auto_maintain=False (how open_store opens it) a write past the threshold only
    commits; maintain() then trains the index while readers keep reading."""
    from ingot.store.maintenance import BackgroundMaintenance

    dim = 16
    s = LanceDBStore(tmp_path / "db", index_threshold=400, optimize_every_commits=3, auto_maintain=False)
    s.create_collection("big", dim)
    docs = {f"d{j}": chunks(f"d{j}", 50, seed0=j, dim=dim) for j in range(9)}
    for doc, recs in docs.items():
        s.replace_document("big", doc, recs)
    assert VECTOR_INDEX not in vector_index_names(s, "big")
    assert s._open("big").table.index_stats("text_idx").num_unindexed_rows == 450  # no optimize either
    stop = threading.Event()
    reads: list[str] = []
    errors: list[BaseException] = []

    def reader():
        try:
            while not stop.is_set():
                reads.append(s.dense_search("big", docs["d4"][7].vector, 1)[0].record.id)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    thread = threading.Thread(target=reader)
    thread.start()
    maintenance = BackgroundMaintenance(s)
    maintenance.request("big")
    maintenance.request("big")  # merged with the waiting one, or run again after it: both fine
    assert maintenance.wait(timeout=120)
    stop.set()
    thread.join()
    assert not errors and reads and set(reads) == {docs["d4"][7].id}
    assert VECTOR_INDEX in vector_index_names(s, "big")
    assert s._open("big").table.index_stats("text_idx").num_unindexed_rows == 0
    s.maintain("big")  # nothing due: no rebuild
    assert s._open("big").indexed_rows == 450
    maintenance.request("gone")  # a dropped collection is skipped, not raised
    assert maintenance.wait(timeout=60)
    s.close()
    s.maintain("big")  # a late background call after close is a no-op
