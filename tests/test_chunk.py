"""The chunker: token budget measured with the embedding model's real tokenizer, tables
split only between rows with the header repeated, structure and provenance carried,
stable ids, overlap between consecutive text chunks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ingot.ingest.chunk import Chunk, chunk_document, chunk_id
from ingot.ingest.elements import Element, ExtractOptions, markdown_table

DOCS = Path(__file__).resolve().parents[2] / "shared" / "data" / "docs"


@pytest.fixture(scope="module")
def tokenizer():
    """The embedding model's tokenizer, loaded here independently of the chunker (so a
    chunker that forgot to lift tokenizer.json's 128-token truncation is caught)."""
    from tokenizers import Tokenizer

    try:
        from ingot.models.registry import ALL_MINILM_L6_V2

        folder = ALL_MINILM_L6_V2.source.locate().parent
    except Exception as exc:  # the model package is not installed
        pytest.skip(f"embedding tokenizer not available: {exc}")
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def real_count(tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=True).ids)


def sentences(n: int, topic: str = "leave") -> str:
    return " ".join(f"Rule {i} says that {topic} requests need approval from the team lead." for i in range(n))


def header_of(table: str) -> str:
    return "\n".join(table.split("\n")[:2])


def table_element(rows: int, page: int = 3) -> Element:
    grid = [["Employee", "Department", "Days"]] + [[f"Person {i}", f"Dept {i % 7}", str(i)] for i in range(rows)]
    return Element(kind="table", text=markdown_table(grid), page=page, location=f"page {page}", heading_path=("Leave",))


@pytest.mark.slow  # a 10-K filing from ../shared, ~3 s
def test_chunks_never_exceed_max_tokens_on_a_real_filing(tokenizer) -> None:
    from ingot.ingest.extract import html

    path = DOCS / "unstructured" / "example-docs" / "example-10k.html"
    if not path.exists():
        pytest.skip(f"test document not available: {path}")
    elements = html.extract(path.read_bytes(), ExtractOptions(filename=path.name)).elements
    for max_tokens in (256, 128):
        chunks = chunk_document(elements, document_id="10k", content_hash="h",
                                tokenizer=tokenizer, max_tokens=max_tokens, overlap_tokens=32)
        counts = [real_count(tokenizer, c.text) for c in chunks]
        assert max(counts) <= max_tokens
        assert counts == [c.token_count for c in chunks]
        assert [c.index for c in chunks] == list(range(len(chunks)))
        # Nothing lost: every table row that fits a chunk (with its header) is in one, whole.
        rows = {
            line
            for e in elements
            if e.kind == "table"
            for line in e.text.split("\n")[2:]
            if real_count(tokenizer, header_of(e.text) + "\n" + line) <= max_tokens
        }
        chunked = {line for c in chunks for line in c.text.split("\n")}
        assert len(rows) > 350 and rows <= chunked  # exhibit rows with long link targets may not fit 128


def test_long_text_is_split_at_sentences_and_by_tokens(tokenizer) -> None:
    paragraph = sentences(60)
    run_on = " ".join(f"word{i}" for i in range(900))  # one "sentence" far over the budget
    elements = [Element(kind="text", text=paragraph, page=1), Element(kind="text", text=run_on, page=2)]
    chunks = chunk_document(elements, document_id="d", content_hash="h",
                            tokenizer=tokenizer, max_tokens=96, overlap_tokens=0)
    assert all(real_count(tokenizer, c.text) <= 96 for c in chunks)
    text_chunks = [c for c in chunks if c.page_end == 1]
    assert len(text_chunks) > 1
    for chunk in text_chunks:  # whole sentences only
        assert chunk.text.startswith("Rule ") and chunk.text.endswith("team lead.")
    words = " ".join(c.text for c in chunks if c.page_start == 2).split()
    assert words == run_on.split()  # split by tokens, nothing lost or repeated


def test_table_split_repeats_header_and_never_cuts_a_row(tokenizer) -> None:
    table = table_element(80)
    intro = Element(kind="text", text="Days taken per person this year.", page=3, heading_path=("Leave",))
    chunks = chunk_document([intro, table], document_id="d", content_hash="h",
                            tokenizer=tokenizer, max_tokens=128, overlap_tokens=32)
    assert len(chunks) > 3
    header = "| Employee | Department | Days |\n|---|---|---|"
    source_rows = table.text.split("\n")[2:]
    seen: list[str] = []
    for chunk in chunks:
        assert real_count(tokenizer, chunk.text) <= 128
        assert chunk.kinds == sorted(chunk.kinds)
        start = chunk.text.index("| Employee")
        assert chunk.text[start:].startswith(header)
        body = chunk.text[start:].split("\n")[2:]
        assert all(row in source_rows for row in body)  # whole rows only
        seen += body
    assert seen == source_rows  # each row exactly once: overlap never repeats table rows
    assert chunks[0].text.startswith("Days taken per person this year.")


def test_a_split_table_repeats_its_wrapped_column_names_in_every_chunk(tokenizer) -> None:
    """"Polarization" over "resistance (Ω)": a continuation chunk that repeated only the
    first header line named the column "Polarization" (the RAG golden set's 6 g question)."""
    grid = [["Inhibitor", "Polarization", "Corrosion"], ["concentration (g)", "resistance (Ω)", "rate (mm/year)"]]
    grid += [[str(g), f"{100 + g}.180", f"0.{g:02d}18"] for g in range(40)]
    table = Element(kind="table", text=markdown_table(grid), page=1, heading_path=("Table 1",))
    chunks = chunk_document([table], document_id="d", content_hash="h", tokenizer=tokenizer, max_tokens=96)
    assert len(chunks) > 2
    head = "\n".join(table.text.split("\n")[:3])
    for chunk in chunks:
        assert chunk.text.startswith(head) and real_count(tokenizer, chunk.text) <= 96
    rows = [line for c in chunks for line in c.text.split("\n")[3:]]
    assert rows == table.text.split("\n")[3:]


def test_consecutive_table_parts_flow_without_a_second_header(tokenizer) -> None:
    grid = [["Item", "Cost"]] + [[f"item {i}", str(i)] for i in range(12)]
    parts = [
        Element(kind="table", text=markdown_table([grid[0], *grid[1 + i : 7 + i]]), page=1, heading_path=("Costs",))
        for i in (0, 6)
    ]
    chunks = chunk_document(parts, document_id="d", content_hash="h", tokenizer=tokenizer, max_tokens=512)
    assert len(chunks) == 1
    assert chunks[0].text.count("| Item | Cost |") == 1 and chunks[0].text.endswith("| item 11 | 11 |")


def test_heading_path_page_span_and_section_boundaries(tokenizer) -> None:
    elements = [
        Element(kind="title", text="Leave", page=1, location="page 1", meta={"level": 1}),
        Element(kind="text", text=sentences(3), page=1, location="page 1", heading_path=("Leave",)),
        Element(kind="title", text="Sick leave", page=2, location="page 2", heading_path=("Leave",), meta={"level": 2}),
        Element(
            kind="text", text="Report sickness before 9 am.", page=2, location="page 2", heading_path=("Leave", "Sick leave")
        ),
        Element(kind="title", text="Expenses", page=3, location="page 3", meta={"level": 1}),
        Element(kind="text", text="Receipts are required.", page=3, location="page 3", heading_path=("Expenses",)),
    ]
    chunks = chunk_document(elements, document_id="d", content_hash="h", tokenizer=tokenizer, max_tokens=512)
    assert len(chunks) == 2  # a new top-level heading starts a new chunk
    first, second = chunks
    assert first.text.startswith("Leave\n\nRule 0") and "Report sickness before 9 am." in first.text
    assert "Expenses" not in first.text and second.text == "Expenses\n\nReceipts are required."
    assert (first.page_start, first.page_end, first.location) == (1, 2, "page 1 – page 2")
    assert first.heading_path == ("Leave",) and second.heading_path == ("Expenses",)
    assert (second.page_start, second.page_end) == (3, 3)
    assert first.kinds == ["text", "title"]
    json.dumps([c.to_dict() for c in chunks])
    assert first.to_dict()["heading_path"] == ["Leave"]


def test_a_title_is_not_left_at_the_end_of_a_chunk(tokenizer) -> None:
    elements = [
        Element(kind="text", text=sentences(5), heading_path=("A",)),
        Element(kind="title", text="Details", heading_path=("A",)),
        Element(kind="text", text=sentences(5, "travel"), heading_path=("A", "Details")),
    ]
    chunks = chunk_document(elements, document_id="d", content_hash="h",
                            tokenizer=tokenizer, max_tokens=100, overlap_tokens=0)
    assert all(not c.text.endswith("Details") for c in chunks)
    assert any(c.text.startswith("Details\n\nRule 0 says that travel") for c in chunks)


def _table_chunk(chunks: list[Chunk]) -> Chunk:
    return next(c for c in chunks if "| Person 0 |" in c.text)


@pytest.mark.parametrize("side", ["above", "below"])
def test_a_caption_stays_with_its_table(tokenizer, side: str) -> None:
    """Prose fills most of a chunk; the table fits the next one. Its caption, above or
    below it, goes with it rather than stay with the prose or start the chunk after."""
    caption = Element(kind="text", text="Table 2: Leave days taken per employee in 2023.", heading_path=("Leave",))
    table = table_element(6)
    around = [caption, table] if side == "above" else [table, caption]
    elements = [Element(kind="text", text=sentences(3), heading_path=("Leave",)), *around,
                Element(kind="text", text=sentences(3, "travel"), heading_path=("Leave",))]
    plain = Element(kind="text", text="Leave days taken per employee in 2023.", heading_path=("Leave",))
    uncaptioned = [elements[0], *(plain if e is caption else e for e in around), elements[-1]]
    for max_tokens in (100, 120, 140):
        chunks = chunk_document(elements, document_id="d", content_hash="h",
                                tokenizer=tokenizer, max_tokens=max_tokens, overlap_tokens=0)
        assert all(real_count(tokenizer, c.text) <= max_tokens for c in chunks)
        assert "Table 2: Leave days" in _table_chunk(chunks).text, (max_tokens, [c.text for c in chunks])
    # the same text that is no caption is packed as running text: it is left where it falls
    chunks = chunk_document(uncaptioned, document_id="d", content_hash="h",
                            tokenizer=tokenizer, max_tokens=120, overlap_tokens=0)
    assert "Leave days taken" not in _table_chunk(chunks).text, [c.text for c in chunks]


def test_a_caption_between_two_tables_takes_the_side_the_documents_captions_take() -> None:
    from ingot.ingest.captions import table_captions

    def caption(n: int) -> Element:
        return Element(kind="text", text=f"Table {n}. Results", heading_path=("R",))

    above = [caption(1), table_element(2), caption(2), table_element(2), Element(kind="text", text="Table 3 shows")]
    assert table_captions(above) == {0: "above", 2: "above"}
    below = [table_element(2), caption(1), table_element(2), caption(2)]
    assert table_captions(below) == {1: "below", 3: "below"}
    assert table_captions([Element(kind="text", text="Table 1: alone")]) == {}


def test_ids_are_stable_and_depend_on_content_hash(tokenizer) -> None:
    elements = [Element(kind="text", text=sentences(40), page=1), table_element(30)]
    run1 = chunk_document(elements, document_id="doc-1", content_hash="abc", tokenizer=tokenizer, max_tokens=128)
    run2 = chunk_document(elements, document_id="doc-1", content_hash="abc", tokenizer=tokenizer, max_tokens=128)
    changed = chunk_document(elements, document_id="doc-1", content_hash="abd", tokenizer=tokenizer, max_tokens=128)
    assert [c.to_dict() for c in run1] == [c.to_dict() for c in run2]
    assert all(re.fullmatch(r"[0-9a-f]{32}", c.id) for c in run1)
    assert len({c.id for c in run1}) == len(run1)
    assert not {c.id for c in run1} & {c.id for c in changed}
    assert run1[0].id == chunk_id("doc-1", "abc", 0)
    assert isinstance(run1[0], Chunk) and run1[0].document_id == "doc-1"


def test_overlap_carries_tail_sentences_between_text_chunks(tokenizer) -> None:
    elements = [Element(kind="text", text=sentences(50), page=1)]
    chunks = chunk_document(elements, document_id="d", content_hash="h",
                            tokenizer=tokenizer, max_tokens=128, overlap_tokens=40)
    assert len(chunks) > 2
    sentence = re.compile(r"Rule \d+ says.*?team lead\.")
    for previous, current in zip(chunks, chunks[1:]):
        before, after = sentence.findall(previous.text), sentence.findall(current.text)
        carried = [s for s in after if s in before]
        assert carried, "consecutive text chunks share no sentence"
        assert after[: len(carried)] == carried and before[-len(carried) :] == carried  # old tail, new head
        assert real_count(tokenizer, " ".join(carried)) - 2 <= 40
        assert real_count(tokenizer, current.text) <= 128
    no_overlap = chunk_document(elements, document_id="d", content_hash="h",
                                tokenizer=tokenizer, max_tokens=128, overlap_tokens=0)
    joined = " ".join(c.text for c in no_overlap)
    assert joined == sentences(50)  # without overlap, nothing is repeated


def test_overlap_of_a_very_long_sentence_carries_its_last_words(tokenizer) -> None:
    words = " ".join(f"token{i}" for i in range(400))
    elements = [Element(kind="text", text=words)]
    chunks = chunk_document(elements, document_id="d", content_hash="h",
                            tokenizer=tokenizer, max_tokens=64, overlap_tokens=16)
    assert len(chunks) > 2
    for previous, current in zip(chunks, chunks[1:]):
        assert previous.text.split()[-1] in current.text.split()[:16]
        assert real_count(tokenizer, current.text) <= 64


def test_other_tokenizers_are_accepted() -> None:
    def words(text: str) -> int:
        return len(text.split())

    elements = [Element(kind="text", text=sentences(30))]
    chunks = chunk_document(elements, document_id="d", content_hash="h", max_tokens=40, overlap_tokens=0, tokenizer=words)
    assert len(chunks) > 1 and all(words(c.text) <= 40 for c in chunks)
    with pytest.raises(ValueError):
        chunk_document(elements, document_id="d", content_hash="h", max_tokens=4, tokenizer=words)


def test_without_a_tokenizer_the_estimate_keeps_chunks_within_a_real_model(tokenizer) -> None:
    """The chunker knows no model: callers without an embedder get an estimate that
    overcounts ordinary text, so its chunks still fit the real tokenizer's budget."""
    from ingot.ingest.extract import html

    path = DOCS / "unstructured" / "example-docs" / "example-10k.html"
    if not path.exists():
        pytest.skip(f"test document not available: {path}")
    elements = html.extract(path.read_bytes(), ExtractOptions(filename=path.name)).elements
    chunks = chunk_document(elements, document_id="10k", content_hash="h", max_tokens=256, overlap_tokens=32)
    assert len(chunks) > 100 and max(real_count(tokenizer, c.text) for c in chunks) <= 256
