"""The names a question is about, and whether the retrieved passages mention them.

Why: the evidence gate's cosine cannot tell "What revenue did Widget E make?" from the
Widget A-D rows that are there (0.56), nor "DPR on MS MARCO" from DPR's own results (0.71):
plausible questions about something the documents never name embed close to the passages
about its neighbours, and a chat model given those passages answers with the neighbour's
number. A name the question brings (an inner capital: FinTabNet, DPR; a capitalised word
after the first: Nespresso, Macau; a letter that completes one: Widget E) that no
retrieved passage contains is a thing the documents do not mention, so the answer is a
refusal that says so, without a model call. Measured on the golden set with
``ingot eval rag --retrieval-only`` (benchmarks/RESULTS.md, "RAG evidence gate").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_TOKEN = re.compile(r"[^\W_](?:[\w'’\-.&/]*[^\W_])?")
_NON_ALNUM = re.compile(r"[\W_]+")
_POSSESSIVE = re.compile(r"['’]s$")
# Capitalised words that start a clause rather than name something.
_CLAUSE_WORDS = frozenset(
    "a an and as at by did do does for from how i if in into is it of on or the to was were what when where "
    "which who whom whose why with according".split()
)


def fold(text: str) -> str:
    """Lowercase, accents and punctuation dropped, whitespace collapsed: "Nestlé's
    January–June" -> "nestle s january june", so dashes, quotes and line breaks never
    decide a match."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NON_ALNUM.sub(" ", plain.lower()).split())


def _is_name(word: str, first: bool, after_name: bool) -> bool:
    if sum(c.isupper() for c in word) >= 2:  # DPR, FinTabNet, SalesData, GPT-4
        return True
    if any(c.isdigit() for c in word):  # Top-20, v1: a number with a label, not a name
        return False
    if after_name and len(word) == 1 and word.isupper():  # the E of "Widget E"
        return True
    return not first and word[0].isupper() and word.lower() not in _CLAUSE_WORDS


def named_phrases(question: str) -> list[str]:
    """Runs of name words in ``question``, as written (a run ends at punctuation)."""
    phrases: list[str] = []
    current: list[str] = []
    previous_end = 0
    ends_run = False  # after a possessive: "Galaxy Gaming's Las Vegas" names two things
    for index, match in enumerate(_TOKEN.finditer(question)):
        word = _POSSESSIVE.sub("", match.group())
        gap = question[previous_end:match.start()]
        previous_end = match.end()
        if (gap.strip() or ends_run) and current:  # punctuation between words ends a run
            phrases.append(" ".join(current))
            current = []
        ends_run = word != match.group()
        if _is_name(word, first=index == 0, after_name=bool(current)):
            current.append(word)
        elif current:
            phrases.append(" ".join(current))
            current = []
    if current:
        phrases.append(" ".join(current))
    return phrases


def folded_haystack(texts: Iterable[str]) -> str:
    """``texts`` folded and joined, padded with spaces, for ``mentions``."""
    return " " + " ".join(fold(t) for t in texts) + " "


def mentions(haystack: str, phrase: str) -> bool:
    """Whether ``haystack`` (from ``folded_haystack``) names ``phrase`` as whole words. A
    footnote number glued to the name by extraction ("the Ponemon Institute2 revealed")
    still matches."""
    return re.search(r" " + re.escape(fold(phrase)) + r"\d{0,2} ", haystack) is not None


def missing_names(question: str, texts: Iterable[str]) -> list[str]:
    """The question's named phrases that occur in none of ``texts`` (passages with their
    heading paths and sources), in the question's order."""
    haystack = folded_haystack(texts)
    return [p for p in named_phrases(question) if not mentions(haystack, p)]
