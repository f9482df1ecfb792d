"""Chat tool calling against the real server: forced-call validity, auto-mode call/no-call
accuracy, and what the call grammar costs in decode speed.

Prompts: ``benchmarks/tool_prompts.json`` (a function catalog and 50 prompts, each offering
one or more of the functions: 10 with one function, 17 choosing among 3-6, 8 expecting two
calls in parallel, 15 that the tools do not help with). Per catalog model, one server
(``ingot serve``, 1 llama.cpp thread, 1 sequence), requests one at a time, temperature 0:

- forced: every should-call prompt with ``tool_choice: "required"`` and with the expected
  function named (the first expected call's). Each response must hold >= 1 call whose
  arguments parse as JSON and validate against the function's schema (``jsonschema``),
  names among those allowed, no leftover text, ``finish_reason: tool_calls``: the grammar
  guarantees this, so anything below 100% is a bug (listed under the table). Also: with
  several functions offered, did "required" pick the expected one(s); loose argument
  accuracy (the expected values found: strings by case-insensitive containment, numbers
  and booleans exactly, arrays/objects element by element);
- auto (``tool_choice`` omitted): call / no-call precision, recall and accuracy over all
  prompts, and the validity of the calls made (the lazy grammar: a started call completes);
- overhead: for ``--overhead-prompts`` should-call prompts, a streamed forced call
  ("required") vs a streamed plain-text reply to the same prompt text (the tools written
  into the system message the way ingot writes them, no grammar) with ``ignore_eos`` and
  ``max_tokens`` = the forced call's token count, so both decode the same number of
  tokens; ``logprobs`` on for both, so each token is its own SSE chunk even while the
  call is held back. Decode tok/s = (tokens - 1) / (last chunk - first chunk); the two
  kinds alternate prompt by prompt.

Prints a Markdown table; writes nothing (paste it into RESULTS.md).

Run: ``.venv/bin/python benchmarks/tools.py [--models a,b] [--limit N]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema

import common

PROMPTS = Path(__file__).resolve().parent / "tool_prompts.json"
DEFAULT_MODELS = "smollm2-135m-instruct,qwen2.5-coder-0.5b-instruct"


# ---- the prompt set ---------------------------------------------------------------------

def load(limit: int | None) -> tuple[dict[str, dict], list[dict]]:
    data = json.loads(PROMPTS.read_text())
    prompts = data["prompts"]
    if limit:  # a trial: keep the mix (calls, parallel calls and no-calls) in proportion
        step = max(1, len(prompts) // limit)
        prompts = prompts[::step][:limit]
    return data["tools"], prompts


def tools_of(catalog: dict[str, dict], prompt: dict) -> list[dict]:
    return [{"type": "function", "function": catalog[name]} for name in prompt["tools"]]


def messages_of(prompt: dict) -> list[dict]:
    return [{"role": "user", "content": prompt["user"]}]


# ---- checks -----------------------------------------------------------------------------

def loose_equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool):
        return actual is expected
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and not isinstance(actual, bool) and abs(actual - expected) < 1e-6
    if isinstance(expected, str):
        if not isinstance(actual, str):
            return False
        e, a = expected.strip().lower(), actual.strip().lower()
        return bool(a) and (e in a or (len(a) >= 3 and a in e))
    if isinstance(expected, list):
        return isinstance(actual, list) and all(any(loose_equal(e, a) for a in actual) for e in expected)
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(loose_equal(v, actual.get(k)) for k, v in expected.items())
    return expected == actual


def argument_score(expected: dict, calls: list[tuple[str, Any]]) -> tuple[int, int]:
    """(expected argument values matched, expected argument values) for one expected call,
    against the best of the response's calls to that function."""
    wanted = expected["arguments"]
    best = 0
    for name, args in calls:
        if name == expected["name"] and isinstance(args, dict):
            best = max(best, sum(loose_equal(v, args.get(k)) for k, v in wanted.items()))
    return best, len(wanted)


@dataclass
class Checked:
    ok: bool  # every call parses and validates, names allowed, nothing else in the reply
    calls: list[tuple[str, Any]]  # (name, parsed arguments or None)
    problem: str | None
    raw: dict


def check(response: dict, catalog: dict[str, dict], allowed: set[str], forced: bool) -> Checked:
    choice = response["choices"][0]
    message = choice["message"]
    calls, problems = [], []
    for call in message.get("tool_calls") or []:
        name, raw_args = call["function"]["name"], call["function"]["arguments"]
        try:
            args = json.loads(raw_args)
        except ValueError as exc:
            calls.append((name, None))
            problems.append(f"{name}: arguments do not parse ({exc}): {raw_args!r}")
            continue
        calls.append((name, args))
        if name not in allowed:
            problems.append(f"{name}: not an allowed function ({sorted(allowed)})")
            continue
        try:
            jsonschema.validate(args, catalog[name]["parameters"])
        except jsonschema.ValidationError as exc:
            problems.append(f"{name}: schema: {exc.message} at {list(exc.absolute_path)}: {raw_args}")
    if forced:
        if not calls:
            problems.append("no tool call")
        if message.get("content"):
            problems.append(f"leftover content {message['content']!r}")
        if choice["finish_reason"] != "tool_calls":
            problems.append(f"finish_reason {choice['finish_reason']}")
    return Checked(not problems, calls, "; ".join(problems) or None, response)


# ---- requests ---------------------------------------------------------------------------

def chat(http: httpx.Client, base: str, body: dict) -> dict:
    r = http.post(f"{base}/chat/completions", json=body)
    r.raise_for_status()
    return r.json()


def stream_decode(http: httpx.Client, base: str, body: dict) -> tuple[float, int]:
    """(decode tok/s after the first token, completion tokens) of one streamed request."""
    body = {**body, "stream": True, "logprobs": True, "stream_options": {"include_usage": True}}
    first = last = None
    tokens = 0
    with http.stream("POST", f"{base}/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            payload = json.loads(line[6:])
            if payload.get("usage"):
                tokens = payload["usage"]["completion_tokens"]
            for choice in payload.get("choices") or []:
                if choice.get("logprobs") and choice["logprobs"].get("content"):
                    last = time.perf_counter()
                    first = first or last
    assert first is not None and last is not None and tokens > 1, "no tokens streamed"
    return (tokens - 1) / (last - first), tokens


# ---- one model --------------------------------------------------------------------------

@dataclass
class Report:
    model: str
    forced: dict[str, list[bool]] = field(default_factory=lambda: {"required": [], "named": []})
    complete: dict[str, list[bool]] = field(default_factory=lambda: {"required": [], "named": []})  # not cut
    truncated: dict[str, int] = field(default_factory=lambda: {"required": 0, "named": 0})
    picked: list[bool] = field(default_factory=list)  # required, several functions offered
    args: dict[str, list[int]] = field(default_factory=lambda: {"required": [0, 0], "named": [0, 0]})
    parallel_two: list[bool] = field(default_factory=list)
    auto: list[tuple[bool, bool]] = field(default_factory=list)  # (expected call, called)
    auto_valid: list[bool] = field(default_factory=list)
    auto_named_right: list[bool] = field(default_factory=list)
    auto_tag_left: int = 0
    auto_crashed: int = 0  # auto requests on which the server process died
    crashes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    overhead: dict[str, list[float]] = field(default_factory=lambda: {"forced": [], "plain": []})
    overhead_tokens: list[int] = field(default_factory=list)
    seconds: float = 0.0


class Server:
    """``ingot serve`` for one model; restarted (and the crash recorded) if it dies mid-request."""

    def __init__(self, model: str, threads: int, data_dir: Path, log: Path) -> None:
        self.model, self.threads, self.data_dir, self.log = model, threads, data_dir, log
        self.crashes: list[str] = []
        self._start()

    def _start(self) -> None:
        self.log_from = self.log.stat().st_size if self.log.exists() else 0
        self.proc, self.base = common.start_ingot(
            self.data_dir, "--model", self.model, "--threads", str(self.threads), "--parallel", "1",
            "--embedding-model", "none", log=self.log)

    def call(self, what: str, fn, *args):  # noqa: ANN001, ANN201
        """``fn(base, *args)``; None when the server died on it (then it is restarted)."""
        try:
            return fn(self.base, *args)
        except httpx.TransportError:
            time.sleep(1)
            if self.proc.poll() is None:
                raise
            with self.log.open("rb") as fh:
                fh.seek(self.log_from)
                tail = [line for line in fh.read().decode(errors="replace").splitlines() if line.strip()]
            why = next((line.strip() for line in reversed(tail) if "what()" in line), tail[-1] if tail else "?")
            self.crashes.append(f"{what}: server process died (exit {self.proc.returncode}): {why}")
            self._start()
            return None

    def stop(self) -> None:
        common.stop(self.proc)


def run_model(model: str, catalog: dict[str, dict], prompts: list[dict], args: argparse.Namespace,
              data_dir: Path, log: Path) -> Report:
    from ingot.generation.tools import FunctionTool, tools_system_text

    report = Report(model)
    started = time.perf_counter()
    server = Server(model, args.threads, data_dir, log)
    try:
        with httpx.Client(timeout=600) as http:
            def post(base: str, body: dict) -> dict:
                return chat(http, base, body)

            def streamed(base: str, body: dict) -> tuple[float, int]:
                return stream_decode(http, base, body)

            common_body = {"model": model, "temperature": 0}
            for p in prompts if "accuracy" in args.parts else []:
                progress(f"{model}: {p['id']}")
                tools = tools_of(catalog, p)
                body = {**common_body, "messages": messages_of(p), "tools": tools}
                allowed = set(p["tools"])
                if p["expect"] == "call":
                    expected_names = {c["name"] for c in p["calls"]}
                    named = p["calls"][0]["name"]
                    for mode, choice, ok_names in (
                        ("required", "required", allowed),
                        ("named", {"type": "function", "function": {"name": named}}, {named}),
                    ):
                        request = {**body, "tool_choice": choice, "max_tokens": args.forced_max_tokens}
                        response = server.call(f"{mode} / {p['id']}", post, request)
                        if response is None:
                            report.forced[mode].append(False)
                            continue
                        checked = check(response, catalog, ok_names, forced=True)
                        report.forced[mode].append(checked.ok)
                        cut = response["choices"][0]["finish_reason"] == "length"
                        if cut:
                            report.truncated[mode] += 1
                        else:
                            report.complete[mode].append(checked.ok)
                        if not checked.ok:
                            report.failures.append(
                                f"{model} / {mode} / {p['id']}{' (cut at max_tokens)' if cut else ' (BUG: not cut)'}: "
                                f"{shorten(checked.problem)} | output: {shorten(json.dumps(response['choices'][0]['message']))}")
                        scored = [c for c in p["calls"] if mode == "required" or c["name"] == named]
                        for expected in scored:
                            hit, total = argument_score(expected, checked.calls)
                            report.args[mode][0] += hit
                            report.args[mode][1] += total
                        if mode == "required":
                            called = {name for name, _ in checked.calls}
                            if len(p["tools"]) > 1:
                                report.picked.append(bool(called) and called == expected_names)
                            if p["kind"] == "parallel":
                                report.parallel_two.append(len(checked.calls) >= 2)
                response = server.call(f"auto / {p['id']}", post, {**body, "max_tokens": args.auto_max_tokens})
                if response is None:
                    report.auto_crashed += 1
                    continue
                checked = check(response, catalog, allowed, forced=False)
                called = bool(checked.calls)
                report.auto.append((p["expect"] == "call", called))
                if called:
                    report.auto_valid.append(checked.ok)
                    if not checked.ok:
                        report.failures.append(f"{model} / auto / {p['id']}: {shorten(checked.problem)} | output: "
                                               f"{shorten(json.dumps(response['choices'][0]['message']))}")
                    if p["expect"] == "call":
                        report.auto_named_right.append({n for n, _ in checked.calls} == {c["name"] for c in p["calls"]})
                if "<tool_call>" in (response["choices"][0]["message"].get("content") or ""):
                    report.auto_tag_left += 1
                    report.failures.append(f"{model} / auto / {p['id']}: unparsed <tool_call> left in content: "
                                           f"{shorten(repr(response['choices'][0]['message']['content']))}")

            # grammar overhead: the same should-call prompts, forced call vs plain text of equal length
            calls = [p for p in prompts if p["expect"] == "call"][: args.overhead_prompts if "overhead" in args.parts else 0]
            for p in calls:
                progress(f"{model}: overhead {p['id']}")
                tools = tools_of(catalog, p)
                forced = {**common_body, "messages": messages_of(p), "tools": tools, "tool_choice": "required",
                          "max_tokens": args.forced_max_tokens}
                measured = server.call(f"overhead forced / {p['id']}", streamed, forced)
                if measured is None:
                    continue
                rate, tokens = measured
                system = tools_system_text(tuple(FunctionTool(t["function"]["name"], t["function"]["description"],
                                                              t["function"]["parameters"]) for t in tools))
                plain = {**common_body, "messages": [{"role": "system", "content": system}, *messages_of(p)],
                         "max_tokens": tokens, "ignore_eos": True}
                measured = server.call(f"overhead plain / {p['id']}", streamed, plain)
                if measured is None:
                    continue
                plain_rate, plain_tokens = measured
                assert plain_tokens == tokens, (plain_tokens, tokens)
                report.overhead["forced"].append(rate)
                report.overhead["plain"].append(plain_rate)
                report.overhead_tokens.append(tokens)
    finally:
        server.stop()
    report.crashes = [f"{model} / {c}" for c in server.crashes]
    report.seconds = time.perf_counter() - started
    return report


def shorten(text: str | None, size: int = 400) -> str:
    text = text or ""
    return text if len(text) <= size else text[:size] + f"... ({len(text)} chars)"


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ---- the table --------------------------------------------------------------------------

def share(values: list[bool]) -> str:
    if not values:
        return "-"
    return f"{sum(values)}/{len(values)} ({100 * sum(values) / len(values):.1f}%)"


def ratio(hit: int, total: int) -> str:
    return f"{hit}/{total} ({100 * hit / total:.1f}%)" if total else "-"


def table(reports: list[Report], prompts: list[dict], args: argparse.Namespace) -> str:
    n_call = sum(p["expect"] == "call" for p in prompts)
    n_par = sum(p["kind"] == "parallel" for p in prompts)
    n_multi = sum(p["expect"] == "call" and len(p["tools"]) > 1 for p in prompts)
    kinds = {k: sum(p["kind"] == k for p in prompts) for k in ("single", "choose", "parallel", "no_call")}
    head = (
        f"\n## {dt.date.today().isoformat()}: tool calling (`benchmarks/tools.py`)\n\n"
        f"Machine: {common.machine()}. {len(prompts)} prompts from `benchmarks/tool_prompts.json` "
        f"({kinds['single']} with one function, {kinds['choose']} choosing among 3-6, {kinds['parallel']} expecting "
        f"two parallel calls, {kinds['no_call']} the tools do not help with); temperature 0, one request at a time, "
        f"{args.threads} llama.cpp thread, max_tokens {args.forced_max_tokens} forced / {args.auto_max_tokens} auto. "
        f"Parts: {args.parts}. Overhead: {args.overhead_prompts} should-call prompts, streamed forced call vs plain "
        "text of the same token count (ignore_eos), decode tok/s median.\n\n"
        "| measurement | " + " | ".join(r.model for r in reports) + " |\n|---|" + "---|" * len(reports) + "\n"
    )
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, cell, part: str = "accuracy") -> None:  # noqa: ANN001
        if part == "all" or part in args.parts:
            rows.append((label, [cell(r) for r in reports]))

    row(f'forced "required": parse + schema-valid ({n_call} prompts)', lambda r: share(r.forced["required"]))
    row(f"forced named function: parse + schema-valid ({n_call} prompts)", lambda r: share(r.forced["named"]))
    row("forced: cut at max_tokens (required / named)", lambda r: f"{r.truncated['required']} / {r.truncated['named']}")
    row('forced "required", calls not cut: parse + schema-valid', lambda r: share(r.complete["required"]))
    row("forced named, calls not cut: parse + schema-valid", lambda r: share(r.complete["named"]))
    row(f'"required", several functions offered: expected function(s) picked ({n_multi})', lambda r: share(r.picked))
    row('"required": expected argument values, loose', lambda r: ratio(*r.args["required"]))
    row("named: expected argument values, loose", lambda r: ratio(*r.args["named"]))
    row(f'"required", parallel prompts: >= 2 calls ({n_par})', lambda r: share(r.parallel_two))

    def auto_stats(r: Report) -> tuple[int, int, int, int]:
        tp = sum(e and c for e, c in r.auto)
        fp = sum(not e and c for e, c in r.auto)
        fn = sum(e and not c for e, c in r.auto)
        tn = sum(not e and not c for e, c in r.auto)
        return tp, fp, fn, tn

    def pct(x: int, y: int) -> str:
        return f"{100 * x / y:.1f}% ({x}/{y})" if y else "- (0/0)"

    row("auto: precision (called when it should / all calls)", lambda r: pct(auto_stats(r)[0], auto_stats(r)[0] + auto_stats(r)[1]))
    row("auto: recall (called / should call)", lambda r: pct(auto_stats(r)[0], auto_stats(r)[0] + auto_stats(r)[2]))
    row(f"auto: call / no-call accuracy ({len(prompts)} prompts)", lambda r: pct(auto_stats(r)[0] + auto_stats(r)[3], len(r.auto)))
    row("auto: replies with calls, all parse + schema-valid", lambda r: share(r.auto_valid))
    row("auto: calls on should-call prompts naming the expected function(s)", lambda r: share(r.auto_named_right))
    row("auto: unparsed `<tool_call>` left in text", lambda r: str(r.auto_tag_left))
    row("auto: requests that killed the server (not counted above)", lambda r: str(r.auto_crashed))
    row("server crashes, all requests", lambda r: str(len(r.crashes)), part="all")

    def med(r: Report, kind: str) -> str:
        return f"{statistics.median(r.overhead[kind]):.1f}" if r.overhead[kind] else "-"

    def overhead(r: Report) -> str:
        if not r.overhead["forced"]:
            return "-"
        return f"{statistics.median(r.overhead['forced']) / statistics.median(r.overhead['plain']):.2f}x"

    row("decode tok/s, forced call (grammar)", lambda r: med(r, "forced"), part="overhead")
    row("decode tok/s, plain text, same length", lambda r: med(r, "plain"), part="overhead")
    row("grammar speed ratio forced / plain", overhead, part="overhead")
    row("tokens per forced call (median)", lambda r: f"{statistics.median(r.overhead_tokens):.0f}" if r.overhead_tokens else "-", part="overhead")
    row("run time (s)", lambda r: f"{r.seconds:.0f}", part="all")
    out = head + "\n".join(f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows) + "\n"
    failures = [f for r in reports for f in r.crashes + r.failures]
    if failures:
        out += "\nProblems:\n" + "\n".join(f"- {f}" for f in failures) + "\n"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=DEFAULT_MODELS, help="catalog model ids (comma list)")
    parser.add_argument("--limit", type=int, default=None, help="a trial on this many prompts")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--forced-max-tokens", type=int, default=160)
    parser.add_argument("--auto-max-tokens", type=int, default=160)
    parser.add_argument("--overhead-prompts", type=int, default=20)
    parser.add_argument("--parts", default="accuracy,overhead",
                        help="accuracy (forced + auto over the prompt set) and/or overhead (decode speed)")
    args = parser.parse_args()

    catalog, prompts = load(args.limit)
    data_dir = Path(tempfile.mkdtemp(prefix="ingot-bench-tools-"))
    log = data_dir / "server.log"
    reports = []
    started = time.perf_counter()
    try:
        for model in args.models.split(","):
            reports.append(run_model(model, catalog, prompts, args, data_dir, log))
    except Exception:
        if log.exists():
            print(log.read_text()[-4000:])
        raise
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(table(reports, prompts, args))
    print(f"total wall time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
