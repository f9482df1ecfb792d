"""RAG chat: rewrite a follow-up into a standalone query -> retrieve (hybrid, ACL-filtered)
-> refuse when nothing relevant was found -> build a prompt that fits -> generate ->
the OpenAI chat completion plus ``citations`` (and, streamed, citations in the first event).

The refusal never calls the model: a small model given irrelevant passages invents an
answer, so "not in the documents" is decided by the retrieval score, with a threshold
calibrated on data (``INGOT_RAG_MIN_SCORE``; benchmarks/RESULTS.md "RAG relevance threshold").
"""

from __future__ import annotations

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
from ingot.rag.attribution import PassageTerms
from ingot.rag.citing import CitedAnswer, cited_events
from ingot.rag.prompt import Prompt, build_prompt
from ingot.rag.protocol import RagChatRequest
from ingot.rag.rewrite import standalone_query
from ingot.retrieval.options import search_with
from ingot.retrieval.service import Passage, RetrievalService, SearchResult

NOT_FOUND_ANSWER = (
    "The documents do not say. I found no passage about this in the documents I can search, "
    "so I cannot answer it from them."
)
SNIPPET_CHARS = 500


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


def has_evidence(passages: list[Passage], min_score: float, mode: str) -> bool:
    """Evidence = the best dense similarity reaches the threshold (BM25-only search: any hit)."""
    if mode == "bm25":
        return bool(passages)
    best = max((p.dense_score for p in passages if p.dense_score is not None), default=None)
    return best is not None and best >= min_score


class RagService:
    """One RAG answer = ``ask``: the route and ``ingot ask`` both call it."""

    def __init__(self, generation: GenerationService, retrieval: RetrievalService, settings: RagSettings) -> None:
        self.generation = generation
        self.retrieval = retrieval
        self.settings = settings

    async def ask(self, req: RagChatRequest, groups: tuple[str, ...] | None) -> EventStream:
        """Rewrite the question if it is a follow-up, search as the caller (``groups``: its
        ACL groups, None = unrestricted), then answer or refuse."""
        options = req if req.top_k is not None else req.model_copy(update={"top_k": self.settings.top_k})
        query, how = await self.query_for(req)
        result = await search_with(self.retrieval, options, query, groups)
        return await self.answer(req, result, query, how)

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
        if not has_evidence(result.passages, self.settings.min_score, result.mode):
            info["passages_used"] = 0
            return self._not_found(req, info)
        engine = self.generation.engine
        budget = req.completion_budget() or self.settings.answer_tokens
        prompt: Prompt = build_prompt(
            question, history, result.passages, count_tokens=lambda text: len(engine.tokenize(text, add_special=False)),
            context_tokens=engine.info.context_length, answer_tokens=budget,
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
        answer = CitedAnswer(question, [PassageTerms.of(p.record.text, " ".join(p.record.heading_path))
                                        for p in prompt.passages],
                             withhold_unsupported=self.settings.withhold_unsupported)

        async def count_prompt() -> int:  # only when the repeat stop ends the answer early
            return len(await self.generation.chat_prompt_ids(generation_request.messages))

        cited = cited_events(events, answer, citations, info,
                             count_tokens=lambda text: len(engine.tokenize(text, add_special=False)),
                             count_prompt=count_prompt)
        return AdmittedStream(_cited(Citations(citations, info), cited), events.aclose)  # type: ignore[attr-defined]

    def _not_found(self, req: ChatCompletionRequest, info: dict[str, Any]) -> EventStream:
        started = Started(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), req.model or self.generation.model_id,
                          self.generation.fingerprint, 1)
        return _events(Citations([], info), started, TextDelta(0, NOT_FOUND_ANSWER), Finish(0, "stop"), Usage(0, 0))


async def _events(*events: Event) -> AsyncIterator[Event]:
    for event in events:
        yield event


async def _cited(citations: Citations, events: EventStream) -> AsyncIterator[Event]:
    yield citations
    async for event in events:
        yield event
