"""RAG chat: rewrite a follow-up into a standalone query -> retrieve (hybrid, ACL-filtered)
-> refuse when nothing relevant was found -> build a prompt that fits -> generate ->
the OpenAI chat completion plus ``citations`` (and, streamed, citations in the first event).

The refusal never calls the model: a small model given irrelevant passages invents an
answer, so "not in the documents" is decided by the retrieval score, with a threshold
calibrated on data (``INGOT_RAG_MIN_SCORE``; benchmarks/RESULTS.md "RAG relevance threshold").
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ingot.errors import InvalidRequestError
from ingot.generation.events import (
    AdmittedStream,
    Citations,
    Event,
    EventStream,
    Finish,
    Started,
    TextDelta,
    Usage,
    collect,
)
from ingot.generation.protocol import ChatCompletionRequest
from ingot.generation.service import GenerationService
from ingot.rag.attribution import PassageTerms, words
from ingot.rag.citing import CitedAnswer, cited_events
from ingot.rag.prompt import Prompt, build_prompt
from ingot.rag.protocol import RagChatRequest
from ingot.rag.references import TableReference, is_caption_of, unresolved_references
from ingot.rag.rewrite import standalone_query
from ingot.rag.subject import missing_names, named_phrases
from ingot.retrieval.options import search_with
from ingot.retrieval.service import Passage, RetrievalService, SearchResult
from ingot.store.protocol import Filter

NOT_FOUND_ANSWER = (
    "The documents do not say. I found no passage about this in the documents I can search, "
    "so I cannot answer it from them."
)
SNIPPET_CHARS = 500


def not_mentioned_answer(names: list[str]) -> str:
    """The refusal when the question is about something no passage names."""
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return (f"The documents do not say. None of the passages I found mentions {listed}, "
            "so I cannot answer it from them.")


TABLE_CANDIDATES = 10  # a document's table chunks searched for the one a passage names
NAMED_POOL = 4  # candidates searched per passage kept, when the top ones lack a name


def with_named(top: list[Passage], pool: list[Passage], question: str, keep: int, floor: float) -> list[Passage]:
    """``top`` with its lowest-ranked passages replaced by passages from ``pool`` that
    mention a name ``top`` lacks and are similar enough (cosine >= ``floor``, so a stray
    "Europe" in a passage about something else does not open the gate). The best passage
    always stays; at most ``keep - 1`` are swapped in, best-ranked first."""
    missing = set(missing_names(question, [passage_haystack(p) for p in top]))
    kept_ids = {p.record.id for p in top}
    promoted: list[Passage] = []
    for candidate in pool:
        if len(promoted) >= keep - 1 or not missing:
            break
        if candidate.record.id in kept_ids or (candidate.dense_score or 0.0) < floor:
            continue
        named_here = missing - set(missing_names(question, [passage_haystack(candidate)]))
        if named_here:
            promoted.append(candidate)
            missing -= named_here
    if not promoted:
        return top
    return top[:keep - len(promoted)] + promoted


def passage_haystack(passage: Passage) -> str:
    """What a passage names: its text, heading path, file and location (a sheet's name)."""
    r = passage.record
    return " ".join([r.text, *r.heading_path, r.source or "", r.location or ""])


@dataclass(frozen=True)
class RagSettings:
    min_score: float  # cosine similarity the best passage must reach to count as evidence
    answer_tokens: int  # answer budget when the request sets none
    top_k: int = 3  # passages per answer when the request sets none
    # repetition_penalty for answers whose request and model set none. 1.0: on the 18
    # golden questions where SmolLM2-135M looped, 1.15 left as many answers cut by
    # max_tokens (2/18) as the repeat stop alone (citing.py), answered none more and refused
    # 2 more (benchmarks/RESULTS.md, "RAG answers (golden set)"). Kept as a knob.
    repetition_penalty: float = 1.0
    # temperature for answers whose request sets none: greedy, the setting the golden set
    # is measured at (benchmarks/RESULTS.md), so the web page, `ingot ask` and `ingot eval
    # rag` answer alike whatever the model's chat defaults are (Qwen's are 0.7).
    temperature: float = 0.0
    withhold_unsupported: bool = True  # refuse when no answer sentence is supported (citing.py)
    require_names: bool = True  # refuse when no passage names what the question names (subject.py)
    table_records: bool = True  # tables reach the model as one record per row (tables.py)
    # Below min_score, from this cosine up, a passage holding lexical_coverage of the
    # question's content words is evidence too (has_evidence). None: dense only.
    # golden set: opens FinTabNet (0.39, 2 of 3 words) and Ponemon (0.38, all); of 50
    # off-topic questions it opens 1 that the name rule does not close (RESULTS.md).
    lexical_min_score: float | None = 0.3
    lexical_coverage: float = 0.6
    # A passage that names "Table N" of its document brings that table's chunk in, in
    # place of the weakest other passage (references.py; measured in RESULTS.md).
    follow_table_references: bool = True


def passage_terms(passage: Passage) -> PassageTerms:
    """The passage's terms for attribution: its words, numbers and what it names (its
    text, heading path, file and location, as ``passage_haystack``)."""
    r = passage.record
    return PassageTerms.of(r.text, " ".join(r.heading_path), f"{r.source or ''} {r.location or ''}")


def citation_dict(number: int, passage: Passage) -> dict[str, Any]:
    r = passage.record
    text = r.text.strip()
    return {
        "index": number, "document_id": r.document_id, "chunk_id": r.id, "collection": passage.collection,
        "source": r.source,
        "page_start": r.page_start, "page_end": r.page_end, "location": r.location,
        "heading_path": list(r.heading_path),
        "snippet": text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " ...",
        "score": passage.score, "dense_score": passage.dense_score,
    }


def has_evidence(passages: list[Passage], min_score: float, mode: str, question: str = "",
                 lexical_min_score: float | None = None, lexical_coverage: float = 1.0) -> bool:
    """Evidence = the best dense similarity reaches ``min_score`` (BM25-only search: any
    hit); or, from ``lexical_min_score`` up, one passage holds ``lexical_coverage`` of the
    question's content words. Why the second rule: short questions about a named thing
    ("How many samples does FinTabNet have?") embed far from the table row that answers
    them (cosine 0.39), while off-topic questions in that band rarely find their words in
    one passage (benchmarks/RESULTS.md, "RAG evidence gate")."""
    if mode == "bm25":
        return bool(passages)
    best = max((p.dense_score for p in passages if p.dense_score is not None), default=None)
    if best is None:
        return False
    if best >= min_score:
        return True
    if lexical_min_score is None or best < lexical_min_score:
        return False
    asked = words(question)
    if not asked:
        return False
    return any(len(asked & passage_terms(p).words)
               >= lexical_coverage * len(asked) for p in passages)


class RagService:
    """One RAG answer = ``ask``: the route and ``ingot ask`` both call it."""

    def __init__(self, generation: GenerationService, retrieval: RetrievalService, settings: RagSettings) -> None:
        self.generation = generation
        self.retrieval = retrieval
        self.settings = settings

    async def ask(self, req: RagChatRequest, groups: tuple[str, ...] | None) -> EventStream:
        """Rewrite the question if it is a follow-up, search as the caller (``groups``: its
        ACL groups, None = unrestricted), then answer or refuse."""
        result, query, how = await self.retrieve(req, groups)
        return await self.answer(req, result, query, how)

    async def retrieve(self, req: RagChatRequest, groups: tuple[str, ...] | None) -> tuple[SearchResult, str, str]:
        """The passages an answer would be built on: (search result, query, how the query
        was made). ``ingot eval rag --retrieval-only`` scores exactly this."""
        top_k = req.top_k if req.top_k is not None else self.settings.top_k
        query, how = await self.query_for(req)
        named = self.settings.require_names and bool(named_phrases(query))
        # A question that names things searches deeper once (fusion ranks the same, so the
        # first top_k are what a top_k search returns): if the top passages lack a name,
        # deeper ones that mention it are swapped in (a sheet row "Nespresso | 777" ranks
        # below Nestle's other rows by fusion).
        depth = min(NAMED_POOL * top_k, 100) if named else top_k
        wide = await search_with(self.retrieval, req.model_copy(update={"top_k": depth}), query, groups)
        top = wide.passages[:top_k]
        if named:
            top = with_named(top, wide.passages[top_k:], query, top_k,
                             self.settings.lexical_min_score or self.settings.min_score)
        if self.settings.follow_table_references:
            top = await self.with_referenced_table(top, req, query, groups)
        return dataclasses.replace(wide, passages=top), query, how

    async def with_referenced_table(self, top: list[Passage], options: RagChatRequest, query: str,
                                    groups: tuple[str, ...] | None) -> list[Passage]:
        """``top`` with the first table a passage names but none holds (references.py) put
        right after the passage that names it, in place of the lowest-ranked passage. Only
        when that one ranks below the naming passage: the table is worth what the passage
        pointing at it is worth, more than the passages below it, not more than those
        above (a stray "Table 3-1" in an off-topic third passage must not push out the
        right second one). One table at most: each costs a passage."""
        references = unresolved_references(
            (p.record.document_id, p.record.text, p.record.heading_path) for p in top)
        for index, reference in references:
            if index == len(top) - 1:  # nothing ranks below the passage naming it
                continue
            table = await self._find_table(reference, top[index].collection, options, query, groups)
            if table is None or any(p.record.id == table.record.id for p in top):
                continue
            kept = top[:-1]
            return kept[:index + 1] + [table] + kept[index + 1:]
        return top

    async def _find_table(self, reference: TableReference, collection: str, options: RagChatRequest, query: str,
                          groups: tuple[str, ...] | None) -> Passage | None:
        """The chunk captioned ``reference`` in its document, searched as the caller (same
        ACL, same filter narrowed to the document's tables); None when there is none."""
        base = options.filter.to_filter() if options.filter else Filter()
        if base.kinds and "table" not in base.kinds:
            return None
        flt = dataclasses.replace(base, document_ids=(reference.document_id,), kinds=("table",))
        found = await self.retrieval.search([collection], f"{reference.query_text} {query}", top_k=TABLE_CANDIDATES,
                                            mode=options.mode, rerank=False, flt=flt, groups=groups)
        return next((p for p in found.passages
                     if is_caption_of(reference.label, p.record.text, p.record.heading_path)), None)

    def gate_open(self, result: SearchResult, question: str) -> bool:
        """Whether the retrieved passages count as evidence for ``question`` (else the
        answer is a refusal): similar enough, and mentioning every name it asks about."""
        return self._similar_enough(result, question) and not self.unmentioned(result, question)

    def _similar_enough(self, result: SearchResult, question: str) -> bool:
        return has_evidence(result.passages, self.settings.min_score, result.mode, question,
                            self.settings.lexical_min_score, self.settings.lexical_coverage)

    def unmentioned(self, result: SearchResult, question: str) -> list[str]:
        """The names in ``question`` that no retrieved passage mentions (rag/subject.py)."""
        if not self.settings.require_names:
            return []
        return missing_names(question, [passage_haystack(p) for p in result.passages])

    async def _generate_text(self, messages: list[dict[str, str]], max_tokens: int) -> str:
        req = ChatCompletionRequest(messages=messages, max_tokens=max_tokens, temperature=0)  # type: ignore[arg-type]
        return (await collect(await self.generation.chat(req))).text

    @staticmethod
    def split_messages(req: ChatCompletionRequest) -> tuple[str, list[dict[str, str]], str]:
        """(client system text, user/assistant history, the question = last user message)."""
        try:
            messages = [{"role": m.role, "content": m.text()} for m in req.messages]
        except ValueError as exc:  # content parts other than text
            raise InvalidRequestError(str(exc), "messages") from exc
        if messages[-1]["role"] != "user" or not messages[-1]["content"].strip():
            raise InvalidRequestError("the last message must be the user's question", "messages")
        system = "\n".join(m["content"] for m in messages[:-1] if m["role"] in ("system", "developer"))
        history = [m for m in messages[:-1] if m["role"] in ("user", "assistant") and m["content"].strip()]
        return system, history, messages[-1]["content"]

    async def query_for(self, req: ChatCompletionRequest) -> tuple[str, str]:
        _, history, question = self.split_messages(req)
        return await standalone_query(history, question, self._generate_text)

    async def answer(self, req: ChatCompletionRequest, result: SearchResult, query: str, how: str) -> EventStream:
        """Generate from the retrieved passages (or refuse), citations first."""
        self.generation.check_model(req.model)
        system, history, question = self.split_messages(req)
        info: dict[str, Any] = {
            "query": query, "query_source": how, "mode": result.mode, "reranked": result.reranked,
            "passages_found": len(result.passages),
            "top_dense_score": max((p.dense_score for p in result.passages if p.dense_score is not None),
                                   default=None),
            "min_score": self.settings.min_score,
        }
        if not self._similar_enough(result, query):
            info["passages_used"] = 0
            return self._not_found(req, info, NOT_FOUND_ANSWER)
        missing = self.unmentioned(result, query)
        if missing:
            info["passages_used"] = 0
            info["missing_names"] = missing
            return self._not_found(req, info, not_mentioned_answer(missing))
        engine = self.generation.engine
        budget = req.completion_budget() or self.settings.answer_tokens
        prompt: Prompt = build_prompt(
            question, history, result.passages, count_tokens=lambda text: len(engine.tokenize(text, add_special=False)),
            context_tokens=engine.info.context_length, answer_tokens=budget,
            table_records=self.settings.table_records,
        )
        if system:
            prompt.messages[0]["content"] = system + "\n\n" + prompt.messages[0]["content"]
        info["passages_used"] = len(prompt.passages)
        citations = [citation_dict(i, p) for i, p in enumerate(prompt.passages, start=1)]
        sampling: dict[str, Any] = {}
        if req.temperature is None:
            sampling["temperature"] = self.settings.temperature
        if (req.repetition_penalty is None and self.settings.repetition_penalty != 1.0
                and "repetition_penalty" not in self.generation.sampling_defaults):
            sampling["repetition_penalty"] = self.settings.repetition_penalty
        generation_request = ChatCompletionRequest.model_validate({
            **req.model_dump(exclude={"messages"}), "messages": prompt.messages, "max_tokens": budget,
            "max_completion_tokens": None, **sampling,
        })
        events = await self.generation.chat(generation_request)
        answer = CitedAnswer(question, [passage_terms(p) for p in prompt.passages],
                             withhold_unsupported=self.settings.withhold_unsupported)

        async def count_prompt() -> int:  # only when the repeat stop ends the answer early
            return len(await self.generation.chat_prompt_ids(generation_request.messages))

        cited = cited_events(events, answer, citations, info,
                             count_tokens=lambda text: len(engine.tokenize(text, add_special=False)),
                             count_prompt=count_prompt)
        return AdmittedStream(_cited(Citations(citations, info), cited), events.aclose)  # type: ignore[attr-defined]

    def _not_found(self, req: ChatCompletionRequest, info: dict[str, Any], text: str) -> EventStream:
        started = Started(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), req.model or self.generation.model_id,
                          self.generation.fingerprint, 1)
        return _events(Citations([], info), started, TextDelta(0, text), Finish(0, "stop"), Usage(0, 0))


async def _events(*events: Event) -> AsyncIterator[Event]:
    for event in events:
        yield event


async def _cited(citations: Citations, events: EventStream) -> AsyncIterator[Event]:
    yield citations
    async for event in events:
        yield event
