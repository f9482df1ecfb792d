"""Follow-up question -> standalone search query, using the conversation.

"Who patented it?" finds nothing on its own; retrieval needs "Who patented the
typewriter?". A follow-up that refers back (it, they, this, ... or too short to stand alone)
is rewritten by the chat model (greedy, short). Small models sometimes answer instead of
rewriting, or drop the topic, so the rewrite is kept only when it keeps the question's
words and carries the conversation's topic; otherwise the previous user question is
prepended to the follow-up, which hybrid search handles well (its BM25 half matches the
earlier topic words). A follow-up that already stands alone ("And when was Google Docs
introduced?") is searched as asked: prepending the old topic would pull its passages
back in, and the model call would only add latency.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

REWRITE_INSTRUCTIONS = (
    "Rewrite the follow-up question as one standalone question that can be understood without the "
    "conversation. Replace pronouns like it, they, he, she, this with what they refer to. "
    "Reply with the question only."
)
MAX_REWRITE_CHARS = 400
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]+")
STOP_WORDS = frozenset(
    "a an and are as at be by did do does for from had has have he her his how in is it its of on or she so "
    "that the their them they this to was were what when where which who whom why will with you your".split()
)

REFERRING_WORDS = frozenset(
    "it its it's they them their theirs this that these those he him his she her hers there one ones "
    "former latter same such".split()
)
MIN_STANDALONE_WORDS = 2  # content words a question needs to be searched on its own

Generate = Callable[[list[dict[str, str]], int], Awaitable[str]]


def refers_back(question: str) -> bool:
    """Does the question lean on the conversation (a referring word, or too few words)?"""
    words = [w.lower() for w in WORD.findall(question)]
    return any(w in REFERRING_WORDS for w in words) or len(content_words(question)) < MIN_STANDALONE_WORDS


def content_words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text) if w.lower() not in STOP_WORDS}


def conversation_text(history: list[dict[str, str]], limit: int = 6) -> str:
    lines = []
    for message in history[-limit:]:
        who = "User" if message["role"] == "user" else "Assistant"
        content = message["content"].strip().replace("\n", " ")
        lines.append(f"{who}: {content[:600]}")
    return "\n".join(lines)


async def standalone_query(history: list[dict[str, str]], question: str, generate: Generate) -> tuple[str, str]:
    """(query, how): how is "as-is" (no history, or a question that stands alone),
    "rewritten" or "combined" (fallback)."""
    previous = [m["content"] for m in history if m["role"] == "user" and m["content"].strip()]
    if not previous or not refers_back(question):
        return question, "as-is"
    prompt = [
        {"role": "system", "content": REWRITE_INSTRUCTIONS},
        {"role": "user", "content": f"Conversation:\n{conversation_text(history)}\n\nFollow-up question: {question}\n\n"
                                    "Standalone question:"},
    ]
    rewritten = (await generate(prompt, 64)).strip().strip('"').splitlines()[0:1]
    candidate = rewritten[0].strip() if rewritten else ""
    context = content_words(" ".join(previous[-2:]))
    asked = content_words(question)
    words = content_words(candidate)
    looks_right = (
        0 < len(candidate) <= MAX_REWRITE_CHARS
        and bool(words & context)  # carries the conversation's topic
        and (not asked or bool(words & asked))  # and still asks what was asked
    )
    if looks_right:
        return candidate, "rewritten"
    return f"{previous[-1]} {question}", "combined"
