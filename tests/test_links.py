"""Markdown links written by extractors and read back as words for the embedding model."""

from __future__ import annotations

import pytest

from ingot.ingest.links import link_text, markdown_link


@pytest.mark.parametrize(
    ("text", "target", "written"),
    [
        ("annual report", "https://example.org/ar.pdf", "[annual report](https://example.org/ar.pdf)"),
        ("Family", "/wiki/Family_(biology)", "[Family](/wiki/Family_(biology))"),
        ("a [b] c", "x.html", r"[a \[b\] c](x.html)"),
        ("spaced", "my file.pdf", "[spaced](<my file.pdf>)"),
        ("open", "a(b.pdf", "[open](<a(b.pdf>)"),
    ],
)
def test_links_round_trip_to_their_label(text: str, target: str, written: str) -> None:
    assert markdown_link(text, target) == written
    assert link_text(f"see {written}, then stop") == f"see {text}, then stop"


def test_link_text_leaves_images_and_plain_brackets_alone() -> None:
    text = r"![logo](logo.png) [draft] (2024) and [x](y) [\[35\]](/cite)"
    assert link_text(text) == "![logo](logo.png) [draft] (2024) and x [35]"
