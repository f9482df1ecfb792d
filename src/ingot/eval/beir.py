"""Load a BEIR-format dataset folder: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

Format (https://github.com/beir-cellar/beir): ``corpus.jsonl`` has one JSON object per line
with ``_id``, ``title`` and ``text``; ``queries.jsonl`` has ``_id`` and ``text``;
``qrels/<split>.tsv`` is tab-separated with a header line (``query-id corpus-id score``)
and integer graded relevance. Only queries that have qrels in the split are kept, as
BEIR's ``GenericDataLoader`` does, so metrics average over judged queries only.

Errors are :class:`BeirError` with a message that names the missing file or split (and
the splits that do exist), because the CLI shows it to the user as is.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from ingot.checksums import sha256_of

Qrels = dict[str, dict[str, int]]  # query id -> document id -> graded relevance


class BeirError(ValueError):
    """The folder is not a usable BEIR dataset (missing file or split, malformed line)."""


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str

    @property
    def full_text(self) -> str:
        """Title and body as one passage (BEIR's dense models see ``title + " " + text``)."""
        return f"{self.title}. {self.text}" if self.title else self.text


@dataclass(frozen=True)
class BeirDataset:
    root: Path
    split: str
    corpus: dict[str, Document]  # in file order
    queries: dict[str, str]  # only queries with qrels in ``split``, in file order
    qrels: Qrels
    corpus_sha256: str  # of corpus.jsonl's bytes: the key for caching an ingested corpus


def splits(root: str | Path) -> list[str]:
    """The qrels splits present in ``root`` (``qrels/*.tsv`` stems), sorted."""
    folder = Path(root) / "qrels"
    return sorted(p.stem for p in folder.glob("*.tsv")) if folder.is_dir() else []


def corpus_hash(path: str | Path) -> str:
    """sha256 of a corpus file (the key of an ingested corpus's cache)."""
    return sha256_of(Path(path))


def _jsonl(path: Path, required: tuple[str, ...]):
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise BeirError(f"{path}:{lineno}: not JSON ({e.msg})") from e
            missing = [k for k in required if k not in obj]
            if not isinstance(obj, dict) or missing:
                raise BeirError(f"{path}:{lineno}: missing field(s) {', '.join(missing) or 'all'}")
            yield obj


def load_qrels(path: str | Path) -> Qrels:
    """``query-id corpus-id score`` rows (header required) -> {query: {doc: score}}."""
    path = Path(path)
    qrels: Qrels = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["query-id", "corpus-id", "score"]:
            raise BeirError(f"{path}: the first line must be the header 'query-id<TAB>corpus-id<TAB>score'")
        for lineno, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 3:
                raise BeirError(f"{path}:{lineno}: expected 3 tab-separated columns")
            try:
                score = int(row[2])
            except ValueError as e:
                raise BeirError(f"{path}:{lineno}: score {row[2]!r} is not an integer") from e
            qrels.setdefault(row[0], {})[row[1]] = score
    return qrels


def load(root: str | Path, split: str = "test") -> BeirDataset:
    """Load ``root`` for ``split``. Raises :class:`BeirError` naming what is missing."""
    root = Path(root)
    if not root.is_dir():
        raise BeirError(f"{root}: not a directory")
    corpus_path, queries_path, qrels_path = root / "corpus.jsonl", root / "queries.jsonl", root / "qrels" / f"{split}.tsv"
    for path in (corpus_path, queries_path):
        if not path.is_file():
            raise BeirError(f"{root}: missing {path.name} (a BEIR folder has corpus.jsonl, queries.jsonl, qrels/)")
    if not qrels_path.is_file():
        have = splits(root)
        raise BeirError(f"{root}: no split {split!r} (qrels/{split}.tsv); available: {', '.join(have) or 'none'}")
    qrels = load_qrels(qrels_path)
    corpus = {
        str(o["_id"]): Document(str(o["_id"]), str(o.get("title") or ""), str(o["text"]))
        for o in _jsonl(corpus_path, ("_id", "text"))
    }
    queries = {str(o["_id"]): str(o["text"]) for o in _jsonl(queries_path, ("_id", "text")) if str(o["_id"]) in qrels}
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise BeirError(f"{qrels_path}: {len(missing)} query id(s) not in queries.jsonl, e.g. {missing[0]!r}")
    return BeirDataset(root, split, corpus, queries, qrels, corpus_hash(corpus_path))
