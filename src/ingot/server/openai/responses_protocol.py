"""OpenAI Responses API wire models (``POST /v1/responses``) and their conversion to the
internal chat request (``to_chat_request``), so the generation service and its typed events
serve this API unchanged.

Input items are Responses-shaped dicts (messages, ``function_call``, ``function_call_output``)
and are stored as such (``response_store.py``) for ``previous_response_id``; converting them
to chat messages happens here, once:

    message {role, content: str | [input_text | output_text parts]}  ->  {role, content}
    function_call {call_id, name, arguments}    ->  assistant {tool_calls: [{id: call_id, ...}]}
    function_call_output {call_id, output}       ->  tool {tool_call_id: call_id, content}

Anything this server cannot do (images, files, built-in tools, background mode) is a 400
naming the parameter, never silently dropped.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field, ValidationError

from ingot.errors import InvalidRequestError
from ingot.generation.protocol import ChatCompletionRequest
from ingot.wire import WireModel

TEXT_PARTS = ("input_text", "output_text", "text")
ROLES = ("user", "system", "developer", "assistant")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class TextFormat(WireModel):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None

    def wire(self) -> dict[str, Any]:
        """As echoed in the response object."""
        if self.type != "json_schema":
            return {"type": self.type}
        return {"type": "json_schema", "name": self.name or "response", "schema": self.schema_ or {},
                "description": self.description, "strict": self.strict}


class TextParam(WireModel):
    format: TextFormat | None = None
    verbosity: str | None = None


class CreateResponseRequest(WireModel):
    model: str | None = None
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextParam | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    stream: bool | None = False
    store: bool | None = True
    background: bool | None = False
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    seed: int | None = None  # not in OpenAI's spec; vLLM and llama.cpp users send it

    def check_supported(self) -> None:
        """What this server cannot do, as a 400 before any work."""
        if self.background:
            raise InvalidRequestError("background mode is not supported by this server; "
                                      "send the request without 'background' (or stream it)", "background")
        if self.conversation is not None:
            raise InvalidRequestError("conversations are not supported by this server; "
                                      "use previous_response_id to continue a response", "conversation")

    def echo_tools(self) -> list[dict[str, Any]]:
        """The request's tools as the response object echoes them (function tools only)."""
        return [{"type": "function", "name": t.get("name"), "description": t.get("description"),
                 "parameters": t.get("parameters"), "strict": t.get("strict")} for t in self.tools or []]

    def echo_text(self) -> dict[str, Any]:
        fmt = self.text.format if self.text is not None and self.text.format is not None else TextFormat()
        return {"format": fmt.wire()}


# ---- input items -> chat messages ----------------------------------------------------------

def input_items(req: CreateResponseRequest) -> list[dict[str, Any]]:
    """The request's input as a list of items with ids (a string input is one user message)."""
    raw: list[Any]
    if req.input is None:
        raw = []
    elif isinstance(req.input, str):
        raw = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": req.input}]}]
    else:
        raw = list(req.input)
    return [_normalized(i, item) for i, item in enumerate(raw)]


def _normalized(index: int, item: Any) -> dict[str, Any]:
    """An input item with its type and an id, content parts as a list (how input_items lists it)."""
    where = f"input[{index}]"
    if not isinstance(item, dict):
        raise InvalidRequestError(f"{where} must be an object", "input")
    kind = item.get("type") or ("message" if "role" in item else None)
    if kind == "message":
        role = item.get("role")
        if role not in ROLES:
            raise InvalidRequestError(f"{where}.role must be one of {', '.join(ROLES)}", "input")
        content = item.get("content")
        if isinstance(content, str):
            parts = [{"type": "output_text" if role == "assistant" else "input_text", "text": content}]
        elif isinstance(content, list):
            parts = [_text_part(f"{where}.content[{j}]", p) for j, p in enumerate(content)]
        else:
            raise InvalidRequestError(f"{where}.content must be a string or a list of content parts", "input")
        out = {"type": "message", "id": item.get("id") or new_id("msg"), "role": role, "content": parts}
        if role == "assistant":
            out["status"] = item.get("status") or "completed"
        return out
    if kind == "function_call":
        for name in ("call_id", "name", "arguments"):
            if not isinstance(item.get(name), str):
                raise InvalidRequestError(f"{where}.{name} must be a string (function_call item)", "input")
        return {"type": "function_call", "id": item.get("id") or new_id("fc"), "call_id": item["call_id"],
                "name": item["name"], "arguments": item["arguments"], "status": item.get("status") or "completed"}
    if kind == "function_call_output":
        if not isinstance(item.get("call_id"), str):
            raise InvalidRequestError(f"{where}.call_id must be a string (function_call_output item)", "input")
        output = item.get("output")
        if isinstance(output, list):
            output = "".join(_text_part(f"{where}.output[{j}]", p)["text"] for j, p in enumerate(output))
        elif not isinstance(output, str):
            raise InvalidRequestError(f"{where}.output must be a string", "input")
        return {"type": "function_call_output", "id": item.get("id") or new_id("fco"), "call_id": item["call_id"],
                "output": output, "status": item.get("status") or "completed"}
    if kind == "reasoning":
        return {"type": "reasoning", "id": item.get("id") or new_id("rs"), "summary": item.get("summary") or []}
    raise InvalidRequestError(f"{where}: input items of type {kind!r} are not supported by this server "
                              "(message, function_call, function_call_output)", "input")


def _text_part(where: str, part: Any) -> dict[str, Any]:
    if not isinstance(part, dict) or part.get("type") not in (*TEXT_PARTS, "refusal"):
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        raise InvalidRequestError(f"{where}: content of type {kind!r} is not supported by this model (text only)",
                                  "input")
    if part["type"] == "refusal":
        return {"type": "refusal", "refusal": str(part.get("refusal", ""))}
    text = part.get("text")
    if not isinstance(text, str):
        raise InvalidRequestError(f"{where}.text must be a string", "input")
    out: dict[str, Any] = {"type": "input_text" if part["type"] == "text" else part["type"], "text": text}
    if out["type"] == "output_text":
        out["annotations"] = part.get("annotations") or []
    return out


def _part_text(part: dict[str, Any]) -> str:
    return part.get("text", "") if part.get("type") != "refusal" else part.get("refusal", "")


def chat_messages(instructions: str | None, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Normalized items -> chat messages; consecutive calls join the assistant message before them."""
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    for item in items:
        kind = item["type"]
        if kind == "message":
            messages.append({"role": item["role"], "content": "".join(_part_text(p) for p in item["content"])})
        elif kind == "function_call":
            call = {"id": item["call_id"], "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]})
        # reasoning items carry nothing this model reads
    return messages


# ---- tools, tool_choice, text.format ---------------------------------------------------------

def chat_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if not tools:
        return None
    out = []
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            raise InvalidRequestError(f"tools[{i}]: tools of type {kind!r} are not supported by this server; "
                                      "only function tools ({'type': 'function', 'name': ...})", "tools")
        if not isinstance(tool.get("name"), str):
            raise InvalidRequestError(f"tools[{i}].name is required (a string)", "tools")
        function = {"name": tool["name"], "description": tool.get("description") or "",
                    "parameters": tool.get("parameters") or {"type": "object", "properties": {}}}
        if tool.get("strict") is not None:
            function["strict"] = tool["strict"]
        out.append({"type": "function", "function": function})
    return out


def chat_tool_choice(choice: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    if choice is None or isinstance(choice, str):
        if choice not in (None, "none", "auto", "required"):
            raise InvalidRequestError("tool_choice must be none, auto, required or {'type': 'function', 'name': ...}",
                                      "tool_choice")
        return choice
    if choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise InvalidRequestError(f"tool_choice of type {choice.get('type')!r} is not supported by this server; "
                              "use none, auto, required or {'type': 'function', 'name': ...}", "tool_choice")


def echo_tool_choice(choice: str | dict[str, Any] | None) -> str | dict[str, Any]:
    if choice is None:
        return "auto"
    if isinstance(choice, dict):
        return {"type": "function", "name": choice.get("name")}
    return choice


def chat_response_format(text: TextParam | None) -> dict[str, Any] | None:
    fmt = text.format if text is not None else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    if fmt.schema_ is None:
        raise InvalidRequestError("text.format.schema is required when type is 'json_schema'", "text.format.schema")
    return {"type": "json_schema", "json_schema": {"name": fmt.name or "response", "description": fmt.description,
                                                   "schema": fmt.schema_, "strict": fmt.strict}}


def to_chat_request(req: CreateResponseRequest, items: list[dict[str, Any]]) -> ChatCompletionRequest:
    """The chat request for ``items`` (the stored conversation, if any, then this input),
    with this request's instructions first."""
    messages = chat_messages(req.instructions, items)
    if not messages:
        raise InvalidRequestError("input is required (a string or a non-empty list of items)", "input")
    try:
        return ChatCompletionRequest.model_validate(_chat_fields(req, messages))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidRequestError(f"invalid input ({where}): {first.get('msg')}", "input") from exc


def _chat_fields(req: CreateResponseRequest, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": req.model,
        "messages": messages,
        "max_completion_tokens": req.max_output_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "seed": req.seed,
        "user": req.user,
        "tools": chat_tools(req.tools),
        "tool_choice": chat_tool_choice(req.tool_choice),
        "parallel_tool_calls": req.parallel_tool_calls,
        "response_format": chat_response_format(req.text),
    }
