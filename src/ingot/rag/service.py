"""RAG chat: rewrite a follow-up into a standalone query -> retrieve (hybrid, ACL-filtered)
-> refuse when nothing relevant was found -> build a prompt that fits -> generate ->
the OpenAI chat completion plus ``citations`` (and, streamed, citations in the first event).

The refusal never calls the model: a small model given irrelevant passages invents an
answer, so "not in the documents" is decided by the retrieval score, with a threshold
calibrated on data (``INGOT_RAG_MIN_SCORE``; benchmarks/RESULTS.md "RAG relevance threshold").
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ingot.engines.protocol import InvalidRequestError
from ingot.generation import responses as fmt
from ingot.generation.protocol import ChatCompletionRequest
from ingot.generation.service import GenerationService
from ingot.rag.prompt import Prompt, build_prompt
from ingot.rag.rewrite import standalone_query
from ingot.retrieval.service import Passage, SearchResult

NOT_FOUND_ANSWER = (
    "The documents do not say. I found no passage about this in the documents I can search, "
    "so I cannot answer it from them."
)
SNIPPET_CHARS = 500


@dataclass(frozen=True)
class RagSettings:
    min_score: float  # cosine similarity the best passage must reach to count as evidence
    answer_tokens: int  # answer budget when the request sets none


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
    def __init__(self, generation: GenerationService, settings: RagSettings) -> None:
        self.generation = generation
        self.settings = settings

    async def _generate_text(self, messages: list[dict[str, str]], max_tokens: int) -> str:
        req = ChatCompletionRequest(messages=messages, max_tokens=max_tokens, temperature=0)  # type: ignore[arg-type]
        result = await self.generation.chat(req)
        assert isinstance(result, dict)
        return result["choices"][0]["message"]["content"] or ""

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

    async def answer(
        self, req: ChatCompletionRequest, result: SearchResult, query: str, how: str
    ) -> dict[str, Any] | AsyncIterator[str]:
        """Generate from the retrieved passages (or refuse) and attach citations."""
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
        generation_request = ChatCompletionRequest.model_validate({
            **req.model_dump(exclude={"messages"}), "messages": prompt.messages, "max_tokens": budget,
            "max_completion_tokens": None,
        })
        out = await self.generation.chat(generation_request)
        if isinstance(out, dict):
            return {**out, "citations": citations, "retrieval": info}
        return _cite_first_event(out, citations, info)

    def _not_found(self, req: ChatCompletionRequest, info: dict[str, Any]) -> dict[str, Any] | AsyncIterator[str]:
        head = fmt.Head(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), req.model or self.generation.model_id,
                        self.generation.fingerprint)
        if not req.stream:
            choice = {"index": 0, "message": {"role": "assistant", "content": NOT_FOUND_ANSWER, "refusal": None},
                      "logprobs": None, "finish_reason": "stop"}
            return fmt.envelope(head, "chat.completion", [choice], usage=fmt.usage(0, 0), citations=[],
                                retrieval=info)
        usage_field = bool(req.stream_options and req.stream_options.include_usage)

        async def events() -> AsyncIterator[str]:
            first = fmt.chat_chunk(head, 0, {"role": "assistant", "content": ""}, None, None, usage_field)
            yield fmt.sse({**first, "citations": [], "retrieval": info})
            yield fmt.sse(fmt.chat_chunk(head, 0, {"content": NOT_FOUND_ANSWER}, None, None, usage_field))
            yield fmt.sse(fmt.chat_chunk(head, 0, {}, None, "stop", usage_field))
            if usage_field:
                yield fmt.sse(fmt.usage_chunk(head, "chat.completion.chunk", 0, 0, 0))
            yield fmt.SSE_DONE

        return events()


async def _cite_first_event(
    stream: AsyncIterator[str], citations: list[dict[str, Any]], info: dict[str, Any]
) -> AsyncIterator[str]:
    """Put ``citations`` into the stream's first chunk (the role chunk), so clients have the
    sources before the text, and pass everything else through unchanged."""
    first = True
    try:
        async for event in stream:
            if first and event.startswith("data: {"):
                first = False
                payload = json.loads(event[len("data: "):])
                yield fmt.sse({**payload, "citations": citations, "retrieval": info})
                continue
            yield event
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
