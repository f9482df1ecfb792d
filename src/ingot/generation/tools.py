"""Tool calling: the request's function tools -> the prompt, a grammar when a call is
forced, and the model's output -> tool calls.

One call format for every model: Qwen2.5's (the Hermes format), ``<tool_call>`` +
``{"name": ..., "arguments": {...}}`` + ``</tool_call>``. A chat template that knows tools
(it mentions ``tools``, as Qwen2.5's does) renders them itself; for one that does not
(SmolLM2's plain ChatML) ingot writes the same instructions into the system message and
the history's calls and results as the same tags, so the model sees one convention.

``tool_choice`` required / a named function: a GBNF grammar built from the functions'
JSON schemas forces the output to be one (or, with ``parallel_tool_calls``, several) valid
call(s): they always parse and match the schema; a named function is called once.
``auto``: the model may answer or call; once it writes ``<tool_call>`` the same call
grammar holds until ``</tool_call>`` (a lazy grammar), so a call it starts is valid. The
parser stays lenient where small models drift (a fenced or bare JSON object with ``name``
and ``arguments`` instead of the tags).

Streaming: ``ToolCallStream`` turns a choice's text deltas into text and calls. A call in
the tags' canonical shape (``{"name": ..., "arguments": {...}}``, which the grammar writes)
opens as soon as its name is read (id and name, no arguments yet) and then streams the
arguments object's raw text as it arrives, whatever the number of characters per delta,
until the object closes: the fragments concatenate to exactly the call's arguments. Any
other shape is sent whole when it is complete.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from llama_cpp.llama_grammar import json_schema_to_gbnf

from ingot.engines.protocol import LazyGrammar
from ingot.errors import InvalidRequestError

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)
# A call's opening in the canonical shape, up to its arguments object's first brace.
_HEADER = re.compile(r'^\s*\{\s*"name"\s*:\s*"([A-Za-z0-9_.\-]{1,64})"\s*,\s*"arguments"\s*:\s*(?=\{)')


@dataclass(frozen=True)
class FunctionTool:
    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool = False

    def openai(self) -> dict[str, Any]:
        """The tool as chat templates receive it (the OpenAI / Hugging Face shape)."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}


@dataclass(frozen=True)
class ToolPlan:
    """What a request allows: which tools, whether a call is forced, and how many."""

    tools: tuple[FunctionTool, ...]
    choice: Literal["auto", "required"] | str  # or the name of the one function to call
    parallel: bool = True

    @property
    def forced(self) -> bool:
        return self.choice != "auto"

    @property
    def many(self) -> bool:
        """Whether the grammar admits several calls: ``required`` with parallel calls allowed.
        A named function means one call of it (as OpenAI and vLLM answer it); without this a
        small model repeats the same call until ``max_tokens`` cuts the copy."""
        return self.parallel and self.choice == "required"

    def names(self) -> set[str]:
        return {t.name for t in self.tools}

    def grammar(self) -> str:
        """GBNF that admits only valid calls, from the first token (a forced call)."""
        repeat = ' ("\\n" tool-call)*' if self.many else ""
        return (f"root ::= tool-call{repeat}\n"
                f'tool-call ::= "{OPEN}\\n" tool-call-json "\\n{CLOSE}"\n' + self._call_json())

    def lazy_grammar(self) -> LazyGrammar:
        """Auto mode: free text until the model writes ``<tool_call>``, then only a valid call
        to one of the tools through ``</tool_call>``, then free again (another call, or text).
        The engine starts it on a token boundary (engines/llamacpp/trigger.py): llama.cpp's
        own lazy grammar aborted the process when the trigger ended mid-token."""
        grammar = f'root ::= "\\n"? tool-call-json "\\n"? "{CLOSE}"\n' + self._call_json()
        return LazyGrammar(trigger=OPEN, grammar=grammar, end=CLOSE)

    def _call_json(self) -> str:
        """GBNF rules for one call's JSON, ``tool-call-json``: a tool's name and arguments
        that match its schema (the chosen tool's, or any tool's)."""
        tools = [t for t in self.tools if self.choice in ("auto", "required") or t.name == self.choice]
        alternatives = [{
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": t.parameters or {"type": "object"}},
            "required": ["name", "arguments"],
        } for t in tools]
        schema = alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}
        try:
            body = json_schema_to_gbnf(json.dumps(schema))
        except Exception as exc:  # the converter raises bare Exceptions on schemas it cannot handle
            raise InvalidRequestError(f"a tool's parameters schema cannot be enforced: {exc}", "tools") from exc
        return re.sub(r"^root ::=", "tool-call-json ::=", body, flags=re.M)


def plan_tools(tools: list[dict[str, Any]] | None, tool_choice: str | dict[str, Any] | None,
               parallel_tool_calls: bool | None) -> ToolPlan | None:
    """Validate the request's tools; None when no call is possible (no tools, or ``none``)."""
    if tool_choice is not None and not tools and tool_choice not in ("none", "auto"):
        raise InvalidRequestError("tool_choice needs tools", "tool_choice")
    if not tools:
        return None
    parsed = tuple(_function_tool(i, t) for i, t in enumerate(tools))
    names = [t.name for t in parsed]
    if len(set(names)) != len(names):
        raise InvalidRequestError("tool names must be unique", "tools")
    choice = _choice(tool_choice, set(names))
    if choice == "none":
        return None
    return ToolPlan(parsed, choice, parallel=parallel_tool_calls is not False)


def _function_tool(index: int, tool: dict[str, Any]) -> FunctionTool:
    if tool.get("type", "function") != "function" or not isinstance(tool.get("function"), dict):
        raise InvalidRequestError(f"tools[{index}]: only function tools are supported "
                                  "({'type': 'function', 'function': {...}})", "tools")
    fn = tool["function"]
    name = fn.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidRequestError(f"tools[{index}].function.name must be 1-64 letters, digits, _ . or -", "tools")
    parameters = fn.get("parameters") or {"type": "object", "properties": {}}
    if not isinstance(parameters, dict):
        raise InvalidRequestError(f"tools[{index}].function.parameters must be a JSON schema object", "tools")
    return FunctionTool(name, str(fn.get("description") or ""), parameters, bool(fn.get("strict")))


def _choice(tool_choice: str | dict[str, Any] | None, names: set[str]) -> str:
    if tool_choice is None:
        return "auto"
    if isinstance(tool_choice, str):
        if tool_choice not in ("none", "auto", "required"):
            raise InvalidRequestError("tool_choice must be none, auto, required or a function", "tool_choice")
        return tool_choice
    name = (tool_choice.get("function") or {}).get("name") if tool_choice.get("type") == "function" else None
    if not name:
        raise InvalidRequestError("tool_choice must be {'type': 'function', 'function': {'name': ...}}", "tool_choice")
    if name not in names:
        raise InvalidRequestError(f"tool_choice names {name!r}, which is not among the tools", "tool_choice")
    return name


# ---- the prompt -------------------------------------------------------------------------

def template_knows_tools(template: str | None) -> bool:
    return bool(template) and "tools" in template  # type: ignore[operator]


def tools_system_text(tools: tuple[FunctionTool, ...]) -> str:
    """Qwen2.5's own tool instructions, for templates that have none."""
    listed = "\n".join(json.dumps(t.openai(), ensure_ascii=False) for t in tools)
    return ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
            f"{listed}\n</tools>\n\nFor each function call, return a json object with function name and "
            f"arguments within {OPEN}{CLOSE} XML tags:\n{OPEN}\n"
            '{"name": <function-name>, "arguments": <args-json-object>}\n' + CLOSE)


def _arguments_object(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


def _checked_calls(calls: list[Any]) -> list[dict[str, Any]]:
    """The history's assistant ``tool_calls``, each ``{"function": {"name", "arguments"}}``;
    anything else is the client's error (400), not ours."""
    for i, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise InvalidRequestError(f"tool_calls[{i}] needs function.name (and function.arguments)", "messages")
    return calls


def template_messages(messages: list[dict[str, Any]], plan: ToolPlan | None, knows_tools: bool) -> list[dict[str, Any]]:
    """Messages as the chat template renders them. ``messages``: dicts with role, content
    (text), optional name, tool_calls (OpenAI shape) and tool_call_id. A template that knows
    tools gets Hugging Face's shape (arguments as objects); else calls and results are
    written as tagged text and the tool instructions join the system message."""
    if knows_tools:
        out = []
        for m in messages:
            m = dict(m)
            if m.get("tool_calls"):
                m["tool_calls"] = [{"type": "function", "id": c.get("id"), "function": {
                    "name": c["function"]["name"], "arguments": _arguments_object(c["function"].get("arguments"))}}
                    for c in _checked_calls(m["tool_calls"])]
            out.append(m)
        return out
    out = []
    for m in messages:
        role, content = m["role"], m.get("content") or ""
        if m.get("tool_calls"):
            calls = "\n".join(OPEN + "\n" + json.dumps({"name": c["function"]["name"], "arguments": _arguments_object(
                c["function"].get("arguments"))}, ensure_ascii=False) + "\n" + CLOSE for c in _checked_calls(m["tool_calls"]))
            out.append({"role": "assistant", "content": (content + "\n" if content else "") + calls})
        elif role == "tool":
            out.append({"role": "user", "content": f"<tool_response>\n{content}\n</tool_response>"})
        else:
            out.append({k: v for k, v in m.items() if k in ("role", "content", "name")})
    if plan is not None:
        text = tools_system_text(plan.tools)
        if out and out[0]["role"] in ("system", "developer"):
            out[0] = {**out[0], "content": out[0]["content"] + "\n\n" + text}
        else:
            out.insert(0, {"role": "system", "content": text})
    return out


# ---- the output -------------------------------------------------------------------------

@dataclass(frozen=True)
class ParsedCall:
    id: str
    name: str
    arguments: str


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _as_calls(value: Any, names: set[str]) -> list[ParsedCall] | None:
    """``{"name", "arguments"}`` (or a list of them) naming known tools -> calls; else None."""
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict) or item.get("name") not in names:
            return None
        arguments = item.get("arguments", item.get("parameters", {}))
        if isinstance(arguments, str):
            try:
                json.loads(arguments)
            except ValueError:
                arguments = json.dumps(arguments)
        else:
            arguments = json.dumps(arguments, ensure_ascii=False)
        calls.append(ParsedCall(new_call_id(), item["name"], arguments))
    return calls or None


def parse_call(raw: str, names: set[str]) -> list[ParsedCall] | None:
    """The JSON between the tags, or a fenced / bare JSON answer (lenient, for models that
    drift from the tags); None when it is not a call to a known tool."""
    text = raw.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        return _as_calls(json.loads(text), names)
    except ValueError:
        return None


@dataclass
class JsonValueEnd:
    """Finds where one JSON object ends in text that arrives in pieces: brace depth, outside
    strings (with their escapes). ``feed`` returns how many characters of the piece belong
    to the object, or None if all of them do and it is still open."""

    depth: int = 0
    in_string: bool = False
    escaped: bool = False

    def feed(self, text: str) -> int | None:
        for i, ch in enumerate(text):
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif ch == "\\":
                    self.escaped = True
                elif ch == '"':
                    self.in_string = False
            elif ch == '"':
                self.in_string = True
            elif ch in "{[":
                self.depth += 1
            elif ch in "}]":
                self.depth -= 1
                if self.depth == 0:
                    return i + 1
        return None


@dataclass
class ToolCallStream:
    """One choice's output -> ``("text", str)``, ``("call", ParsedCall)`` and ``("arguments",
    str)`` pieces, as the deltas arrive. A ``call`` piece opens a call (a streamed one with
    empty arguments, followed by its ``arguments`` fragments; a whole one complete). Text
    that may be the start of a call (a partial ``<tool_call>``, or an answer that opens with
    ``{`` or a code fence) is held back until it is decided."""

    names: set[str]
    calls: int = 0
    _buffer: str = ""
    _in_call: bool = False
    _arguments: JsonValueEnd | None = None  # the streamed call's arguments, while open
    _streamed: bool = False  # the current call went out as a streamed call
    _bare: bool | None = None  # None: undecided whether the answer is a bare JSON call
    _spaces: str = ""  # whitespace held between calls (dropped if only calls follow)
    _out: list[tuple[str, Any]] = field(default_factory=list)

    def feed(self, text: str) -> list[tuple[str, Any]]:
        self._buffer += text
        self._drain(final=False)
        return self._take()

    def finish(self) -> list[tuple[str, Any]]:
        self._drain(final=True)
        if self._bare:
            calls = parse_call(self._buffer, self.names)
            self._emit_calls(calls) if calls else self._text(self._buffer)
        elif self._in_call and self._streamed:  # EOS after (or inside) a streamed call's arguments
            if self._arguments is not None and self._buffer:
                self._out.append(("arguments", self._buffer))
        elif self._in_call:  # ended without the closing tag (EOS right after the JSON)
            calls = parse_call(self._buffer, self.names)
            self._emit_calls(calls) if calls else self._text(OPEN + self._buffer)
        else:
            self._text(self._buffer)
        self._buffer = ""
        if not self.calls:
            self._text_now(self._spaces)
        return self._take()

    def _drain(self, final: bool) -> None:
        while True:
            if self._bare is None:
                head = self._buffer.lstrip()
                if not head:
                    return
                maybe_json = head.startswith("{") or head.startswith("```") or "```".startswith(head)
                if maybe_json and not head.startswith(OPEN[: len(head)]):
                    self._bare = True
                    return  # decided at finish
                self._bare = False
            if self._bare:
                return
            if self._in_call:
                if not self._stream_arguments():
                    return
                end = self._buffer.find(CLOSE)
                if end < 0:
                    return
                raw, self._buffer = self._buffer[:end], self._buffer[end + len(CLOSE):]
                self._in_call = False
                if self._streamed:  # its arguments went out; what is left is the closing brace
                    self._streamed = False
                    continue
                calls = parse_call(raw, self.names)
                self._emit_calls(calls) if calls else self._text(OPEN + raw + CLOSE)
                continue
            start = self._buffer.find(OPEN)
            if start >= 0:
                self._text(self._buffer[:start])
                self._buffer = self._buffer[start + len(OPEN):]
                self._in_call = True
                continue
            keep = 0 if final else _partial_suffix(self._buffer, OPEN)
            self._text(self._buffer[: len(self._buffer) - keep])
            self._buffer = self._buffer[len(self._buffer) - keep:]
            return

    def _stream_arguments(self) -> bool:
        """Inside a call: open it once its canonical header is read, then pass its arguments
        object through as it arrives. True when the rest of the call (up to the closing tag)
        can be handled whole: the arguments object closed, or the call is not canonical."""
        if not self._streamed:
            header = _HEADER.match(self._buffer)
            if header is None or header.group(1) not in self.names:
                return True  # not (yet) canonical: decided whole at the closing tag
            self._buffer = self._buffer[header.end():]
            self._spaces = ""
            self._out.append(("call", ParsedCall(new_call_id(), header.group(1), "")))
            self.calls += 1
            self._streamed, self._arguments = True, JsonValueEnd()
        if self._arguments is None:
            return True
        end = self._arguments.feed(self._buffer)
        piece = self._buffer if end is None else self._buffer[:end]
        if piece:
            self._out.append(("arguments", piece))
        self._buffer = "" if end is None else self._buffer[end:]
        if end is None:
            return False
        self._arguments = None
        return True

    def _text(self, text: str) -> None:
        """Send text, holding trailing whitespace back: it is dropped if a call follows."""
        body = text.rstrip()
        if body:
            self._text_now(self._spaces + body)
            self._spaces = ""
        self._spaces += text[len(body):]

    def _text_now(self, text: str) -> None:
        if text:
            self._out.append(("text", text))

    def _emit_calls(self, calls: list[ParsedCall]) -> None:
        self._spaces = ""
        for call in calls:
            self._out.append(("call", call))
            self.calls += 1

    def _take(self) -> list[tuple[str, Any]]:
        out, self._out = self._out, []
        return out


def _partial_suffix(text: str, marker: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``marker``."""
    for size in range(min(len(text), len(marker) - 1), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0
