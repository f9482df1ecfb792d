"""Post-hoc attribution: which retrieved passage supports each sentence of an answer.

Why after generation: small models (SmolLM2-135M, Qwen2.5-Coder-1.5B) rarely write ``[n]``
markers, and when they do the number is often wrong, so the markers are placed here from
the text itself. Why lexical, not embedding similarity: measured on the golden set
(benchmarks/RESULTS.md, "RAG answers (golden set)", 2026-12-02 post-hoc attribution), an
answer sentence that restates the question is about as similar to every retrieved passage,
while the fact it adds (a number, a name) is what tells the passages apart; the embedder
does not see that "5.39" and "5.93" differ. So a sentence is scored on the words it adds to
the question, and every number in it must occur in the passage: "80 saltwater ducks in
2018" is not supported by a table whose 80 is in the 2019 row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from ingot.rag.subject import folded_haystack, mentions, named_phrases

_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
MARKER = re.compile(r"\s?\[(\d{1,2})\]")
_LEAD_IN = re.compile(r"^(\s*)(?:according to|as stated in|as per|from)\s+(?:source\s+)?\[\d{1,2}\](?:\s*(?:and|,)\s*\[\d{1,2}\])*\s*,?\s*",
                      re.IGNORECASE)

STOP_WORDS = frozenset(
    "a an and are as at be been being but by can could did do does done for from had has have he her his how "
    "i if in into is it its it's may might more most much no nor not of on or our out over she should so such "
    "than that the their them then there these they this those to too under up us was we were what when where "
    "which while who whom whose why will with would you your also about above after again all any because "
    "before below between both each few further here just only other own same some very according answer "
    "answers source sources document documents passage passages text context based said says say mentioned "
    "given provided shown following question".split()
)

MIN_SUPPORT = 0.6  # share of the sentence's new words a passage must hold to be cited
MIN_WORDS = 2  # a fragment with fewer content words ("e.g.", "Yes.") is not a claim


def stem(word: str) -> str:
    """Crude, symmetric suffix stripping so "layers"/"layer", "trained"/"train" meet; it only
    has to make the same word in the answer and the passage agree."""
    w = word.lower()
    for suffix in ("ing", "ed", "es", "s"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix) and not w.endswith("ss"):
            return w[: -len(suffix)]
    return w


def numbers(text: str) -> set[str]:
    """Numbers as written, thousands separators dropped ("21,015,324" == "21015324"); the
    model's own ``[n]`` markers are not numbers of the claim."""
    return {_THOUSANDS.sub("", n) for n in _NUMBER.findall(MARKER.sub("", text))}


def words(text: str) -> set[str]:
    """Content words, stemmed (stop words and 1-letter words dropped)."""
    return {stem(w) for w in _WORD.findall(text) if len(w) > 1 and w.lower() not in STOP_WORDS}


def names(text: str) -> set[str]:
    """Words that name something (HTML, ResNet, Ferelden): a capital after the first letter,
    or a capitalised word that does not start the sentence. The ones the sentence shares
    with the question are its subject (see ``support``). A name the question did not bring
    is not required: SmolLM2 adds "the American inventor" to a right answer."""
    found = set()
    tokens = _WORD.findall(MARKER.sub("", text))
    for position, w in enumerate(tokens):
        inner_capital = any(c.isupper() for c in w[1:])
        if (inner_capital or (position > 0 and w[0].isupper())) and w.lower() not in STOP_WORDS and len(w) > 1:
            found.add(stem(w))
    return found


@dataclass(frozen=True)
class PassageTerms:
    """A passage's words and numbers, computed once per answer and reused for every sentence."""

    words: frozenset[str]
    numbers: frozenset[str]
    text: str  # lowercased, for numbers that the tokenizer split differently ("10-5")
    haystack: str = ""  # text, heading, file and location folded (subject.folded_haystack): what it names

    @classmethod
    def of(cls, text: str, heading: str = "", where: str = "") -> "PassageTerms":
        """``heading``: the chunk's heading path, which names what the text is about;
        ``where``: its file and location (a sheet's name), which name it too."""
        return cls(frozenset(words(text) | words(heading)), frozenset(numbers(text)), _THOUSANDS.sub("", text.lower()),
                   folded_haystack([text, heading, where]))

    def has_number(self, number: str) -> bool:
        return number in self.numbers or re.search(rf"(?<![\d.,]){re.escape(number)}(?![\d]|[.,]\d)", self.text) is not None


def support(sentence: str, question: str, passage: PassageTerms) -> float:
    """How well ``passage`` supports ``sentence``, 0..1: the share of the sentence's terms the
    passage holds, where the terms are the content words the sentence adds to the question,
    its numbers (double weight) and the names it shares with the question (the subject: a
    batch size of DPR does not answer for TableFormer). 0 when a number is missing from the
    passage: numbers must be copied exactly."""
    asked = words(question)
    nums = numbers(sentence)
    named = names(sentence)
    if any(not passage.has_number(n) for n in nums):
        return 0.0
    if not about_subject(sentence, question, passage):
        return 0.0
    # A one-digit number ("The answer is 2.") is in nearly every passage: it must be there,
    # but it is no evidence, so only longer numbers weigh.
    telling = [n for n in nums if sum(c.isdigit() for c in n) >= 2]
    new = words(sentence) - asked
    if not new and not telling:  # the sentence only restates the question: judge it on all its words
        new = words(sentence)
    subject = named & asked
    if len(subject) >= 2 and not subject & passage.words:
        # The question names its subject twice over (OTSL, TableFormer) and the passage
        # names neither: it is about something else (DPR's batch size of 128). With one
        # name the chunk may just say "our model", so then it only weighs.
        return 0.0
    total = len(new) + 2 * len(telling) + len(subject)
    if total == 0:
        return 0.0
    held = len(new & passage.words) + 2 * len(telling) + len(subject & passage.words)
    return held / total


def about_subject(sentence: str, question: str, passage: PassageTerms) -> bool:
    """Whether the sentence, with this passage as its evidence, is about what the question
    names: when the question names things (subject.named_phrases: Europe, Galaxy Gaming),
    the sentence or the passage must mention one of them. Why: asked how many duck eggs
    are hatched in Europe, the 1.5B answered "3 billion ducks are slaughtered each year
    for meat worldwide", every word of it in a passage that never says Europe (the gate
    had opened on a bibliography entry naming "Agriculture in Europe"); a sentence that
    names none of the question's subjects, backed by a passage that names none either,
    answers some other question. One name is enough: a passage may say "DPR" where the
    question says "DPR" and "English Wikipedia" (benchmarks/RESULTS.md, 2026-12-04)."""
    asked = named_phrases(question)
    if not asked:
        return True
    said = folded_haystack([MARKER.sub("", sentence)])
    return any(mentions(passage.haystack, n) or mentions(said, n) for n in asked)


_NOT_SAID = re.compile(
    r"\b(?:do|does|did)\s*(?:not|n't)\s+(?:say|mention|contain|provide|specify|include|state|know)\b"
    r"|\bno (?:information|mention|details?)\b|\bcannot (?:answer|find)\b|\bunable to (?:answer|find)\b"
    r"|\bnot (?:mentioned|specified|stated|provided)\b",
    re.IGNORECASE,
)


def is_claim(sentence: str) -> bool:
    """Worth a citation: enough content words or a number (not "Yes." or a heading), and
    not a statement that the sources lack the answer (a refusal cites nothing)."""
    if _NOT_SAID.search(sentence):
        return False
    return bool(numbers(sentence)) or len(words(sentence)) >= MIN_WORDS


def attribute(sentence: str, question: str, passages: Sequence[PassageTerms]) -> list[int]:
    """0-based indices of the passages that support ``sentence``: the best one when it
    reaches MIN_SUPPORT (passages that tie with it too: the same fact on two pages), nothing
    when none does. Not every passage above the bar: citation precision is what a reader
    checks."""
    if not is_claim(sentence):
        return []
    scores = [support(sentence, question, p) for p in passages]
    if not scores:
        return []
    best = max(scores)
    if best < MIN_SUPPORT:
        return []
    return [i for i, s in enumerate(scores) if s == best]


def place_markers(sentence: str, numbers_: Sequence[int]) -> str:
    """The sentence with the model's own ``[n]`` markers removed and ``numbers_`` (1-based)
    placed before its closing punctuation: "is 5.39 [2]." Trailing whitespace is kept."""
    lead = _LEAD_IN.match(sentence)
    if lead:  # "According to [2], Zone NA ..." -> "Zone NA ... [2]."
        rest = sentence[lead.end():]
        sentence = lead.group(1) + rest[:1].upper() + rest[1:]
    body = MARKER.sub("", sentence)
    stripped = body.rstrip()
    tail = body[len(stripped):]
    if not numbers_:
        return stripped + tail
    marks = " " + "".join(f"[{n}]" for n in numbers_)
    end = _ending_start(stripped)
    if end == 0:
        return stripped + marks + tail
    return stripped[:end] + marks + stripped[end:] + tail


def _ending_start(sentence: str) -> int:
    """Where the sentence's closing punctuation starts, the marker's place. A quote or
    bracket belongs to the ending only after a full stop inside it ('He said "yes."');
    otherwise it closes a value: "VARCHAR(30)." must keep its ")" (the golden set's
    answer lost it to the marker once: "VARCHAR(30 [1]).")."""
    end = len(sentence)
    closers = end
    while closers > 0 and sentence[closers - 1] in "\"')”’":
        closers -= 1
    if closers < end and closers > 0 and sentence[closers - 1] in ".!?":
        end = closers
    while end > 0 and sentence[end - 1] in ".!?:;":
        end -= 1
    return end


_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*(?=\s)|\n")


def split_complete(text: str) -> tuple[list[str], str]:
    """(complete sentences, the unfinished rest). A sentence ends at . ! ? followed by
    whitespace (so "5.39" does not end one) or at a line break; the whitespace after it
    starts the next piece, so joining the pieces gives ``text`` back."""
    pieces: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        if end <= start:
            continue
        pieces.append(text[start:end])
        start = end
    return pieces, text[start:]


def split_sentences(text: str) -> list[str]:
    """Every sentence of a finished answer (the last one may lack its full stop)."""
    pieces, rest = split_complete(text)
    return pieces + ([rest] if rest else [])
