"""The contract every vector store must pass (Haystack's pattern): subclass
``StoreContract`` and provide ``make_store(path)``, which opens a store rooted at ``path``
(opening the same path again must see the same data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingot.store.protocol import ChunkRecord, CollectionExists, CollectionNotFound, Filter, StoreError, VectorStore

DIM = 8


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def record(doc: str, i: int, text: str, *, seed: int, source: str = "a.pdf", kinds=("text",), acl=(),
           created: float = 1_700_000_000.0, content_hash: str = "h1") -> ChunkRecord:
    return ChunkRecord(
        id=f"{doc}-{content_hash}-{i}", document_id=doc, content_hash=content_hash, text=text, vector=unit(seed),
        source=source, page_start=i + 1, page_end=i + 1, location=f"page {i + 1}", heading_path=["Intro"],
        kinds=list(kinds), acl=list(acl), created_at=created,
    )


CORPUS = [
    ("d1", ["The quarterly revenue grew by twelve percent.", "Zebras graze on the savanna at dawn."],
     {"source": "finance.pdf"}),
    ("d2", ["Kubernetes schedules pods onto nodes.", "Revenue recognition follows IFRS 15."],
     {"source": "ops.docx", "kinds": ("text", "table")}),
    ("d3", ["Secret merger plans for project Falcon."], {"source": "board.pptx", "acl": ("board",)}),
]


class StoreContract:
    def make_store(self, path: Path) -> VectorStore:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path):
        s = self.make_store(tmp_path / "store")
        yield s
        s.close()

    @pytest.fixture
    def filled(self, store):
        store.create_collection("docs", DIM)
        seed = 0
        for doc, texts, extra in CORPUS:
            records = []
            for i, text in enumerate(texts):
                records.append(record(doc, i, text, seed=seed, **extra))
                seed += 1
            store.replace_document("docs", doc, records)
        return store

    def test_collections_lifecycle(self, store):
        store.create_collection("alpha", DIM)
        assert "alpha" in store.list_collections()
        with pytest.raises(CollectionExists):
            store.create_collection("alpha", DIM)
        store.drop_collection("alpha")
        assert "alpha" not in store.list_collections()
        with pytest.raises(CollectionNotFound):
            store.drop_collection("alpha")
        with pytest.raises(StoreError):
            store.create_collection("bad name; drop", DIM)

    def test_insert_count_and_hashes(self, filled):
        assert filled.count("docs") == 5
        assert filled.document_hashes("docs") == {"d1": "h1", "d2": "h1", "d3": "h1"}

    def test_replace_swaps_all_chunks_of_a_document(self, filled):
        new = [record("d1", 0, "Revenue fell sharply this quarter.", seed=100, content_hash="h2", source="finance.pdf")]
        filled.replace_document("docs", "d1", new)
        assert filled.count("docs") == 4
        assert filled.document_hashes("docs")["d1"] == "h2"
        hits = filled.dense_search("docs", unit(100), 10)
        assert hits[0].record.id == new[0].id
        assert not [h for h in hits if h.record.document_id == "d1" and h.record.content_hash == "h1"]

    def test_delete_documents(self, filled):
        assert filled.delete_documents("docs", ["d2", "nope"]) == 2
        assert filled.count("docs") == 3
        assert "d2" not in filled.document_hashes("docs")

    def test_dense_search_orders_by_similarity(self, filled):
        hits = filled.dense_search("docs", unit(2), 3)  # seeds: d1 -> 0,1; d2 -> 2,3; d3 -> 4
        assert hits[0].record.text == "Kubernetes schedules pods onto nodes."
        assert len(hits) == 3
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        assert hits[0].score == pytest.approx(1.0, abs=1e-3)
        top = hits[0].record
        assert (top.source, top.page_start, top.location, top.heading_path) == ("ops.docx", 1, "page 1", ["Intro"])

    def test_text_search_is_bm25(self, filled):
        hits = filled.text_search("docs", "zebras savanna", 3)
        assert hits and hits[0].record.text.startswith("Zebras")
        revenue = [h.record.document_id for h in filled.text_search("docs", "revenue", 5)]
        assert set(revenue) == {"d1", "d2"}

    def test_filters(self, filled):
        q = unit(0)
        by_source = filled.dense_search("docs", q, 10, Filter(sources=("ops.docx",)))
        assert {h.record.source for h in by_source} == {"ops.docx"}
        by_kind = filled.dense_search("docs", q, 10, Filter(kinds=("table",)))
        assert {h.record.document_id for h in by_kind} == {"d2"}
        by_doc = filled.text_search("docs", "revenue", 10, Filter(document_ids=("d2",)))
        assert {h.record.document_id for h in by_doc} == {"d2"}
        late = filled.dense_search("docs", q, 10, Filter(created_after=1_800_000_000.0))
        assert late == []

    def test_acl_filter_hides_other_groups(self, filled):
        q = unit(4)  # the board chunk's own vector
        public = filled.dense_search("docs", q, 10, Filter(acl_any=("staff",)))
        assert "d3" not in {h.record.document_id for h in public}
        assert len(public) == 4
        board = filled.dense_search("docs", q, 10, Filter(acl_any=("board",)))
        assert board[0].record.document_id == "d3"
        text = filled.text_search("docs", "merger Falcon", 10, Filter(acl_any=()))
        assert text == []

    def test_light_searches_agree_with_full_ones_and_fetch_reads_records(self, filled):
        q = unit(2)
        full = [(h.record.id, h.score) for h in filled.dense_search("docs", q, 5, Filter(acl_any=("staff",)))]
        light = filled.dense_search_ids("docs", q, 5, Filter(acl_any=("staff",)))
        assert [i for i, _ in light] == [i for i, _ in full]
        assert [s for _, s in light] == pytest.approx([s for _, s in full], abs=1e-5)
        text = filled.text_search_ids("docs", "revenue", 5, Filter(acl_any=("staff",)))
        assert [i for i, _ in text] == [h.record.id for h in filled.text_search("docs", "revenue", 5,
                                                                                   Filter(acl_any=("staff",)))]
        wanted = [light[1][0], "no-such-id", light[0][0]]
        records = filled.fetch("docs", wanted)
        assert [r.id for r in records] == [light[1][0], light[0][0]]
        top = filled.dense_search("docs", q, 1)[0].record
        fetched = filled.fetch("docs", [top.id])[0]
        assert (fetched.text, fetched.source, fetched.page_start, fetched.heading_path, fetched.kinds, fetched.acl) == (
            top.text, top.source, top.page_start, top.heading_path, top.kinds, top.acl)
        assert filled.fetch("docs", []) == []
        assert filled.fetch("docs", ["x' OR '1'='1"]) == []

    def test_acl_groups_match_exactly(self, store):
        store.create_collection("acl", DIM)
        for i, groups in enumerate((["teamXa"], ["team_a"], ["team%"], ["team_ab"], [])):
            store.replace_document("acl", f"d{i}", [record(f"d{i}", 0, f"note {i}", seed=i, acl=groups)])
        for groups, visible in ((("team_a",), {"d1", "d4"}), (("team%",), {"d2", "d4"}), (("tea",), {"d4"}),
                                (("teamXa", "team_ab"), {"d0", "d3", "d4"})):
            dense = {h.record.document_id for h in store.dense_search("acl", unit(0), 10, Filter(acl_any=groups))}
            text = {h.record.document_id for h in store.text_search("acl", "note", 10, Filter(acl_any=groups))}
            assert dense == visible and text == visible, (groups, dense, text)

    def test_filter_values_cannot_inject(self, filled):
        for evil in ("x' OR '1'='1", 'x" or 1=1 or "', "finance.pdf') OR (1=1"):
            assert filled.dense_search("docs", unit(0), 10, Filter(sources=(evil,))) == []
            hits = filled.dense_search("docs", unit(4), 10, Filter(acl_any=(evil,)))
            assert "d3" not in {h.record.document_id for h in hits}

    def test_reopen_sees_the_same_data(self, filled, tmp_path):
        filled.close()
        again = self.make_store(tmp_path / "store")
        try:
            assert again.count("docs") == 5
            assert again.dense_search("docs", unit(1), 1)[0].record.text.startswith("Zebras")
        finally:
            again.close()

    def test_unknown_collection(self, store):
        with pytest.raises(CollectionNotFound):
            store.dense_search("missing", unit(0), 1)
