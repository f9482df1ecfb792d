"""The ``ingot eval rag --html`` report: one self-contained page (no scripts, no external
assets) with the summary, the per-kind table and every question with its verdicts, for
sharing a run with people who will not read JSON.

Why Jinja2 with autoescape on: answers and citations are model output and document text,
untrusted, and the report is opened in a browser. The input is the ``--json`` report
(:func:`ingot.eval.rag.report`), so an old JSON report can be rendered again.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, select_autoescape

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>RAG eval: {{ r.model }} on {{ r.golden }}</title>
<style>
 body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1b1b1b; }
 table { border-collapse: collapse; margin: .5rem 0 1.5rem; }
 th, td { border: 1px solid #d0d0d0; padding: .25rem .5rem; text-align: left; vertical-align: top; }
 th { background: #f3f3f3; }
 td.num { text-align: right; font-variant-numeric: tabular-nums; }
 .ok { color: #116b2b; } .bad { color: #a4161a; font-weight: 600; } .na { color: #777; }
 tr.wrong { background: #fff4f4; }
 .answer { white-space: pre-wrap; max-width: 36rem; }
 .meta { color: #555; }
</style>
</head>
<body>
<h1>RAG answers: {{ r.summary.correct_answerable }}/{{ r.summary.answerable }} answered and cited,
 {{ r.summary.refused_unanswerable }}/{{ r.summary.unanswerable }} unanswerable refused</h1>
<p class="meta">Model <b>{{ r.model }}</b> · golden set {{ r.golden }} · collections {{ r.collections | join(", ") }}
 · {{ r.url or "in process" }} · top_k {{ r.top_k or "default" }} · max_tokens {{ r.max_tokens }}
 {%- if r.sample %} · sample {{ r.sample }}{% endif %}{% if r.limit %} · limit {{ r.limit }}{% endif %}</p>

<h2>By kind</h2>
<table>
<tr><th>kind</th><th>n</th><th>answer</th><th>citation</th><th>answer+citation</th><th>refusal</th>
 <th>p50 s</th><th>p95 s</th></tr>
{% for kind, s in rows %}
<tr{% if kind == "all" %} style="font-weight:600"{% endif %}><td>{{ kind }}</td><td class="num">{{ s.questions }}</td>
 <td class="num">{{ rate(s.answer_hits, s.answerable) }}</td>
 <td class="num">{{ rate(s.citation_hits, s.answerable) }}</td>
 <td class="num">{{ rate(s.correct_answerable, s.answerable) }}</td>
 <td class="num">{{ rate(s.refusal_hits, s.questions) }}</td>
 <td class="num">{{ secs(s.latency_p50_s) }}</td><td class="num">{{ secs(s.latency_p95_s) }}</td></tr>
{% endfor %}
</table>
<p class="meta">Answers cut by max_tokens: {{ r.summary.length_finishes }} · answers repeating a sentence:
 {{ r.summary.repeating_answers }} · citation precision (right / cited, answerable):
 {{ rate(r.summary.cited_passages_right, r.summary.cited_passages_answerable) }} · errors: {{ r.summary.errors }}</p>

<h2>Every question</h2>
<table>
<tr><th>line</th><th>kind</th><th>question</th><th>expected</th><th>answer</th><th>cited</th><th>verdict</th>
 <th>s</th></tr>
{% for q in r.records %}
<tr{% if not q.correct %} class="wrong"{% endif %}>
 <td class="num">{{ q.line }}</td><td>{{ q.kind }}</td><td>{{ q.question }}</td>
 <td>{% if q.doc is none %}<span class="na">(unanswerable)</span>{% else %}{{ q.answer_any | join(" | ") }}<br>
  <span class="meta">{{ q.doc }}{% if q.pages %}, p. {{ q.pages | join(", ") }}{% endif %}</span>{% endif %}</td>
 <td class="answer">{% if q.error %}<span class="bad">error: {{ q.error }}</span>{% else %}{{ q.answer }}{% endif %}</td>
 <td>{% for c in q.citations %}[{{ c.index }}] {{ c.source }}{% if c.page_start is not none %}, p. {{ c.page_start }}
  {%- if c.page_end is not none and c.page_end != c.page_start %}-{{ c.page_end }}{% endif %}{% endif %}<br>{% endfor %}</td>
 <td>{{ verdict(q) | safe }}</td><td class="num">{{ secs(q.seconds) }}</td></tr>
{% endfor %}
</table>
</body>
</html>
"""

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def _rate(hits: int, total: int) -> str:
    return f"{hits}/{total} ({hits / total:.0%})" if total else "-"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _mark(ok: bool | None, label: str) -> str:
    if ok is None:
        return ""
    return f'<span class="{"ok" if ok else "bad"}">{label} {"✓" if ok else "✗"}</span> '


def _verdict(record: dict[str, Any]) -> str:
    """The per-question marks; fixed labels only, so the ``safe`` filter cannot let text in."""
    if record["doc"] is None:
        return _mark(record["refusal_ok"], "refused")
    marks = _mark(record["answer_ok"], "fact") + _mark(record["citation_ok"], "cited")
    if record["refused"]:
        marks += '<span class="bad">refused</span>'
    return marks


def render_html(report: dict[str, Any]) -> str:
    """The HTML page for a ``--json`` report."""
    rows = [*report["by_kind"].items(), ("all", report["summary"])]
    return _env.from_string(_TEMPLATE).render(r=report, rows=rows, rate=_rate, secs=_secs, verdict=_verdict)
