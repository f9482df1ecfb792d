"""The answer stream, sentence by sentence: ``[n]`` markers placed by attribution, a stop
on a repeated sentence, and the answer withheld when no sentence is supported.

How the stream and the final result stay consistent (docs/api.md, RAG): a sentence is sent
only once it is complete (a marker can only be placed then), already carrying its markers,
so the streamed text and the non-streamed ``content`` are the same string. The stream opens
with a ``Citations`` event listing every passage the model was given (the sources, before
the text, as before) and closes, right before ``Finish``, with a second ``Citations``
event listing only the passages the text cites; ``collect`` keeps the last one, so a
non-streamed response's ``citations`` are exactly the cited passages, and a streamed one's
final chunk carries the same list. ``[n]`` is the citation whose ``index`` is n (the
passage's number in the prompt), in both.

Why a repeated sentence ends the answer: at temperature 0 a small model that repeats a
sentence repeats it until ``max_tokens`` ("The answer is 2." x 40), so the second copy is
dropped and generation stops (finish_reason ``stop``), which also frees the engine.

Why an answer with no supported sentence is withheld: a model that was given near-miss
passages (the 2019 row for a question about 2018) writes a fluent, wrong answer; if no
sentence of it is supported by any passage (attribution.py: every number and new name
must be in the passage), the reply is the refusal instead. Unsupported sentences are held
back until a supported one follows, so nothing is streamed that may be withdrawn.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ingot.engines.protocol import TokenLogprob
from ingot.generation.events import Citations, Event, EventStream, Finish, TextDelta, Usage
from ingot.rag.attribution import PassageTerms, attribute, is_claim, place_markers, split_complete

UNSUPPORTED_ANSWER = (
    "The documents do not say. The passages I found do not support an answer to this, "
    "so I cannot answer it from them."
)
_SPACE = re.compile(r"\W+")


def sentence_key(sentence: str) -> str:
    """What makes two sentences "the same" for the repeat stop: words only, casefolded."""
    return _SPACE.sub(" ", sentence.casefold()).strip()


@dataclass
class CitedAnswer:
    """The state of one answer as its sentences complete (pure: no I/O, testable alone)."""

    question: str
    passages: Sequence[PassageTerms]
    withhold_unsupported: bool = True
    used: set[int] = field(default_factory=set)  # 1-based passage numbers cited so far
    seen: set[str] = field(default_factory=set)
    held: list[str] = field(default_factory=list)  # sentences waiting for a supported one
    supported: bool = False  # some sentence has been attributed
    claims: int = 0
    repeated: bool = False

    def add(self, sentence: str) -> str | None:
        """Text to send for a completed ``sentence`` ("" to hold it back), or None when it
        repeats an earlier sentence and the answer must stop."""
        key = sentence_key(sentence)
        if len(key) >= 8 and key in self.seen:
            self.repeated = True
            return None
        self.seen.add(key)
        numbers = [i + 1 for i in attribute(sentence, self.question, self.passages)]
        self.used.update(numbers)
        self.claims += is_claim(sentence)
        text = place_markers(sentence, numbers)
        if numbers:
            self.supported = True
        if self.supported or not self.withhold_unsupported:
            out = "".join(self.held) + text
            self.held.clear()
            return out
        self.held.append(text)
        return ""

    def finish(self) -> tuple[str, bool]:
        """(text still to send, withheld): the held sentences, or the refusal when the
        answer made claims and none was supported."""
        if self.held and not self.supported and self.claims:
            self.held.clear()
            return UNSUPPORTED_ANSWER, True
        out = "".join(self.held)
        self.held.clear()
        return out, False


async def cited_events(
    events: EventStream,
    answer: CitedAnswer,
    all_citations: Sequence[dict[str, Any]],
    retrieval: dict[str, Any],
    *,
    count_tokens: Callable[[str], int],
    count_prompt: Callable[[], Awaitable[int]],
) -> AsyncIterator[Event]:
    """``events`` (one choice) with text re-cut at sentence ends and markers placed; a
    final ``Citations`` (only the cited passages) just before ``Finish``."""
    pending = ""
    generated: list[str] = []
    logprobs: list[TokenLogprob] | None = None

    def closing(withheld: bool) -> Citations:
        cited = [] if withheld else [c for c in all_citations if c["index"] in answer.used]
        info = {**retrieval, "passages_cited": len(cited), "answer_withheld": withheld,
                "stopped_on_repeat": answer.repeated}
        return Citations(cited, info)

    def take_logprobs() -> list[TokenLogprob] | None:
        nonlocal logprobs
        out, logprobs = logprobs, None if logprobs is None else []
        return out

    async for event in events:
        if isinstance(event, TextDelta):
            generated.append(event.text)
            if event.logprobs is not None:
                logprobs = (logprobs or []) + event.logprobs
            pending += event.text
            sentences, pending = split_complete(pending)
            for sentence in sentences:
                text = answer.add(sentence)
                if text is None:
                    break
                if text:
                    yield TextDelta(event.index, text, take_logprobs())
            if answer.repeated:
                await events.aclose()  # type: ignore[attr-defined]
                rest, withheld = answer.finish()
                if rest:
                    yield TextDelta(event.index, rest, take_logprobs())
                yield closing(withheld)
                yield Finish(event.index, "stop")
                yield Usage(await count_prompt(), count_tokens("".join(generated)))
                return
        elif isinstance(event, Finish):
            if pending:
                text = answer.add(pending)
                pending = ""
                if text:
                    yield TextDelta(event.index, text, take_logprobs())
            rest, withheld = answer.finish()
            if rest:
                yield TextDelta(event.index, rest, take_logprobs())
            yield closing(withheld)
            yield event
        else:
            yield event
