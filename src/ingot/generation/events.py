"""Typed events: what the generation and RAG services stream, independent of any wire format.

A service call returns an async iterator of these, already admitted by the engine (a full
queue or an over-long prompt raised before the first event). The order is:

    [Citations]  Started  (PromptEcho | TextDelta | ToolCallDelta | [Citations] Finish)*  Usage

``Started`` names the response; per choice ``index`` there may be one ``PromptEcho``
(completions with ``echo``), any number of ``TextDelta`` and ``ToolCallDelta`` and exactly
one ``Finish`` (reason ``tool_calls`` when the choice ended in calls); RAG answers send a
second ``Citations`` right before their ``Finish``: the passages the text cites (rag/citing.py);
``Usage`` closes the stream. An error after ``Started`` is raised from the iterator, and
each wire adapter (``server/openai/*``) decides how its protocol reports it. ``collect``
folds a stream into a ``Result`` for callers that want the whole answer (non-streamed
responses, the RAG query rewrite, the CLI).

Usage::

    events = await generation.chat(request)
    async for event in events:
        if isinstance(event, TextDelta):
            print(event.text, end="")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Union

from ingot.engines.protocol import TokenLogprob


@dataclass(frozen=True, slots=True)
class Started:
    """The response's identity, repeated by every chunk of the wire formats."""

    id: str
    created: int
    model: str
    fingerprint: str  # identifies the backend config (model file + precision), as OpenAI's does
    choices: int


@dataclass(frozen=True, slots=True)
class PromptToken:
    """One echoed prompt token: its text and, when asked for, its log-probability (the first
    prompt token has none: nothing precedes it)."""

    token: str
    logprob: float | None
    top: dict[str, float] | None


@dataclass(frozen=True, slots=True)
class PromptEcho:
    """Completions with ``echo``: the prompt's text before choice ``index``'s first delta."""

    index: int
    text: str
    tokens: list[PromptToken] | None  # with prompt log-probabilities only


@dataclass(frozen=True, slots=True)
class TextDelta:
    """New text of choice ``index`` (may be empty when it only carries log-probabilities)."""

    index: int
    text: str
    logprobs: list[TokenLogprob] | None = None


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of choice ``index``'s ``call``-th tool call (0-based). A call's first
    fragment carries its ``id`` and ``name``; its ``arguments`` fragments, concatenated,
    are exactly the call's JSON arguments (never re-serialized between fragments)."""

    index: int
    call: int
    arguments: str
    id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    index: int
    reason: str  # stop | length | tool_calls | abort
    stop_sequence: str | None = None  # the stop string that ended it, when one did


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Citations:
    """RAG: the passages the answer may cite (``[n]`` -> ``citations[n-1]``) and how they
    were retrieved; comes before ``Started`` so clients have the sources before the text."""

    citations: list[dict[str, Any]]
    retrieval: dict[str, Any]


Event = Union[Started, PromptEcho, TextDelta, ToolCallDelta, Finish, Usage, Citations]
EventStream = AsyncIterator[Event]


class AdmittedStream:
    """An event stream whose engine requests are already running: ``aclose()`` releases
    them even when the stream was never iterated (the client left before the first byte),
    which a bare async generator's ``finally`` would not."""

    def __init__(self, events: AsyncIterator[Event], release: Callable[[], Awaitable[None]]) -> None:
        self._events = events
        self._release = release

    def __aiter__(self) -> "AdmittedStream":
        return self

    async def __anext__(self) -> Event:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        try:
            await self._events.aclose()  # type: ignore[attr-defined]
        finally:
            await self._release()


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass
class ChoiceResult:
    text: str = ""
    logprobs: list[TokenLogprob] | None = None
    finish_reason: str | None = None
    stop_sequence: str | None = None
    echo: PromptEcho | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)


@dataclass
class Result:
    """A whole response, folded from its events."""

    started: Started
    choices: list[ChoiceResult]
    usage: Usage
    citations: Citations | None = None

    @property
    def text(self) -> str:
        return self.choices[0].text


@dataclass
class _Fold:
    started: Started | None = None
    citations: Citations | None = None
    usage: Usage | None = None
    texts: dict[int, list[str]] = field(default_factory=dict)
    choices: dict[int, ChoiceResult] = field(default_factory=dict)


async def collect(events: EventStream) -> Result:
    """Consume a stream into a ``Result`` (closing the stream even if it raises)."""
    fold = _Fold()
    try:
        async for event in events:
            _fold(fold, event)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    if fold.started is None or fold.usage is None:
        raise RuntimeError("the event stream ended before it started or without usage")
    choices = []
    for index in range(fold.started.choices):
        choice = fold.choices.get(index, ChoiceResult())
        choice.text = "".join(fold.texts.get(index, []))
        choices.append(choice)
    return Result(fold.started, choices, fold.usage, fold.citations)


def _fold(fold: _Fold, event: Event) -> None:
    if isinstance(event, TextDelta):
        fold.texts.setdefault(event.index, []).append(event.text)
        if event.logprobs is not None:
            choice = fold.choices.setdefault(event.index, ChoiceResult())
            choice.logprobs = (choice.logprobs or []) + event.logprobs
    elif isinstance(event, ToolCallDelta):
        calls = fold.choices.setdefault(event.index, ChoiceResult()).tool_calls
        if event.call == len(calls):
            calls.append(ToolCall(event.id or "", event.name or "", ""))
        calls[event.call].arguments += event.arguments
    elif isinstance(event, Finish):
        choice = fold.choices.setdefault(event.index, ChoiceResult())
        choice.finish_reason, choice.stop_sequence = event.reason, event.stop_sequence
    elif isinstance(event, PromptEcho):
        fold.choices.setdefault(event.index, ChoiceResult()).echo = event
    elif isinstance(event, Started):
        fold.started = event
    elif isinstance(event, Usage):
        fold.usage = event
    elif isinstance(event, Citations):
        fold.citations = event
