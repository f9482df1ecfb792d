"""Markdown links in extracted text: written once by the extractors that know them (HTML),
read back as plain text wherever a model should see words, not addresses.

Extracted text keeps a link's target (``[annual report](https://example.org/ar.pdf)``):
a copilot asked "where do I file the form?" needs the address, and it is what docling and
markitdown keep too. An embedding model gains nothing from URLs, and on a page dense with
links they would crowd the words out of a chunk's token budget, so the embedder (and its
token counter) sees :func:`link_text` of a chunk instead.
"""

from __future__ import annotations

import re

# [text](target): text without brackets or line breaks (escaped \] allowed); target either
# <...> or a run without spaces whose parentheses nest one level (/wiki/Family_(biology)).
_LINK = re.compile(r"(?<!!)\[((?:\\.|[^\\\]\n])*)\]\((?:<[^>\n]*>|(?:[^()\s]|\([^()\s]*\))*)\)")
_ESCAPED = re.compile(r"\\([\[\]\\])")


def markdown_link(text: str, target: str) -> str:
    """``[text](target)``, with brackets in the text escaped and a target holding spaces or
    unbalanced parentheses wrapped in ``<>`` (CommonMark), so :func:`link_text` and any
    Markdown reader parse it back."""
    label = text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    if re.search(r"\s", target) or target.count("(") != target.count(")") or "((" in target:
        target = "<" + target.replace(">", "%3E") + ">"
    return f"[{label}]({target})"


def link_text(text: str) -> str:
    """The text with every Markdown link replaced by its label (images are left alone)."""
    if "](" not in text:
        return text
    return _LINK.sub(lambda m: _ESCAPED.sub(r"\1", m.group(1)), text)
