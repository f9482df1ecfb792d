"""Passages -> a chat prompt that fits the model's context, with numbered sources.

Why numbered sources: the answer cites ``[n]`` and the response's ``citations[n-1]`` says
which file and page that is, so a reader can check every claim. Why drop from the
bottom: passages arrive best first, so when the context is short the least relevant
ones go first, never the question or the conversation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ingot.rag.tables import tables_as_records
from ingot.retrieval.service import Passage

# Kept as measured (benchmarks/RESULTS.md, "RAG answers (golden set)", cited answers): a
# stricter wording ("reply only: The documents do not say", no "Cite sources like [1]")
# made the 1.5B refuse 4 of 12 answerable questions (11/12 -> 7/12 answer+citation), while
# the unanswerable ones are refused by withholding unsupported answers (rag/citing.py).
# The model's own [n] markers are replaced by attribution (rag/attribution.py).
SYSTEM_PROMPT = (
    "Answer the question in one sentence using only the sources. Cite sources like [1]. "
    "If the sources do not contain the answer, say that the documents do not say."
)
MARGIN_TOKENS = 16  # chat-template tokens around each message


def page_label(passage: Passage) -> str:
    r = passage.record
    if r.page_start is None:
        return r.location or ""
    if r.page_end in (None, r.page_start):
        return f"page {r.page_start}"
    return f"pages {r.page_start}-{r.page_end}"


def format_source(number: int, passage: Passage, *, table_records: bool = False) -> str:
    """``[n] page p`` then the text, its tables as row records when ``table_records``
    (rag/tables.py). The file name is left to the citation: with it in the prompt the
    bundled 135M model answered fewer of our fact questions (2-3/8 vs 3-5/8)."""
    where = page_label(passage)
    text = passage.record.text.strip()
    if table_records:
        text = tables_as_records(text)
    return f"[{number}]{' ' + where if where else ''}\n{text}"


@dataclass
class Prompt:
    messages: list[dict[str, str]]
    passages: list[Passage]  # the ones that fit, in citation order ([1] first)
    dropped: int


def build_prompt(
    question: str,
    history: list[dict[str, str]],
    passages: list[Passage],
    *,
    count_tokens: Callable[[str], int],
    context_tokens: int,
    answer_tokens: int,
    table_records: bool = False,
) -> Prompt:
    """Messages = system (instructions + sources) + history + question, within
    ``context_tokens - answer_tokens``; passages that do not fit are dropped, worst first."""
    fixed = count_tokens(SYSTEM_PROMPT) + count_tokens(question) + sum(count_tokens(m["content"]) for m in history)
    fixed += MARGIN_TOKENS * (len(history) + 3)
    room = context_tokens - answer_tokens - fixed
    if room < 0:
        from ingot.errors import ContextLengthError

        raise ContextLengthError(
            f"the conversation needs {fixed} tokens and the answer {answer_tokens}, more than the model's "
            f"context of {context_tokens}; shorten the history or lower max_tokens", "messages",
        )
    kept: list[Passage] = []
    blocks: list[str] = []
    for passage in passages:
        block = format_source(len(kept) + 1, passage, table_records=table_records)
        cost = count_tokens(block) + 2
        if cost > room:
            continue  # a shorter, lower-ranked passage may still fit
        room -= cost
        kept.append(passage)
        blocks.append(block)
    # Sources go in the last user turn, right before the question: measured with SmolLM2-135M,
    # sources in the system message made it ignore them (it invented a patent holder), in the
    # user turn it answered from them.
    user = "Sources:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}"
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, *history, {"role": "user", "content": user}]
    return Prompt(messages, kept, len(passages) - len(kept))
