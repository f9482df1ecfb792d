"""Anthropic Messages wire models (https://docs.anthropic.com/en/api/messages) and their
conversion to the internal chat request, once, so the generation service knows one protocol.

Conversion:

- ``system`` (a string or text blocks) -> a leading system message;
- an assistant turn's ``tool_use`` blocks -> that message's OpenAI ``tool_calls`` (input
  serialized as the JSON ``arguments``); a user turn's ``tool_result`` blocks -> ``tool``
  messages with ``tool_call_id``, in block order with the turn's text around them;
- ``tools`` -> OpenAI function tools; ``tool_choice`` auto/any/tool/none -> auto/required/
  the named function/none, ``disable_parallel_tool_use`` -> ``parallel_tool_calls: false``;
- ``stop_sequences`` -> ``stop``; ``max_tokens`` (required, as in Anthropic's API) stays;
- ``output_config.format`` (structured outputs, a JSON schema) -> ``response_format`` json_schema.

``temperature``/``top_p``/``top_k`` are honoured when sent (recent SDKs pass them only in
``extra_body``); unset, sampling is the chat default (temperature 1, like Anthropic's).

Unknown fields (``metadata``, ``thinking``, ``service_tier``, ``cache_control`` on blocks...)
are ignored like everywhere on the wire; content this text-only server cannot read (image,
document) is a 400 that says so.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union

from pydantic import Field, ValidationError, field_validator

from ingot.errors import InvalidRequestError
from ingot.generation.protocol import MAX_STOP, ChatCompletionRequest
from ingot.wire import WireModel

UNSUPPORTED_BLOCKS = ("image", "document", "search_result", "container_upload")


class TextBlock(WireModel):
    type: Literal["text"]
    text: str


class ToolUseBlock(WireModel):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)


class ToolResultBlock(WireModel):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[TextBlock] | None = None
    is_error: bool = False

    def text(self) -> str:
        if self.content is None:
            text = ""
        elif isinstance(self.content, str):
            text = self.content
        else:
            text = "".join(block.text for block in self.content)
        return f"Error: {text}" if self.is_error else text


ContentBlock = Annotated[Union[TextBlock, ToolUseBlock, ToolResultBlock], Field(discriminator="type")]


def _check_blocks(blocks: Any, where: str) -> Any:
    """Say plainly what this server cannot read, before pydantic's union errors would."""
    if not isinstance(blocks, list):
        return blocks
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind in UNSUPPORTED_BLOCKS:
            raise ValueError(f"{kind} content blocks are not supported by this server (text only)")
        if isinstance(block, dict) and kind == "tool_result":
            _check_blocks(block.get("content"), where)
        elif isinstance(block, dict) and kind not in ("text", "tool_use", "tool_result"):
            raise ValueError(f"content block type {kind!r} is not supported in {where} "
                             "(text, tool_use and tool_result are)")
    return blocks


class Message(WireModel):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]

    @field_validator("content", mode="before")
    @classmethod
    def _supported(cls, v: Any) -> Any:
        return _check_blocks(v, "messages")


class Tool(WireModel):
    name: str = Field(..., min_length=1, max_length=128)
    description: str | None = None
    input_schema: dict[str, Any]
    type: Literal["custom"] | None = None  # server tools (web search, bash...) are Anthropic's own

    def openai(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "description": self.description or "",
                                                 "parameters": self.input_schema}}


class ToolChoice(WireModel):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool = False

    def openai(self) -> str | dict[str, Any]:
        if self.type == "tool":
            if not self.name:
                raise InvalidRequestError("tool_choice.name is required when tool_choice.type is 'tool'",
                                          "tool_choice.name")
            return {"type": "function", "function": {"name": self.name}}
        return {"any": "required", "none": "none", "auto": "auto"}[self.type]


class OutputFormat(WireModel):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(..., alias="schema")


class OutputConfig(WireModel):
    """Structured outputs: ``format`` -> ``response_format: json_schema`` (grammar-constrained);
    ``effort`` is ignored."""

    format: OutputFormat | None = None


class MessagesInput(WireModel):
    """What both ``/v1/messages`` and ``/v1/messages/count_tokens`` take."""

    model: str
    messages: list[Message] = Field(..., min_length=1)
    system: str | list[TextBlock] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None

    @field_validator("system", mode="before")
    @classmethod
    def _system_text_only(cls, v: Any) -> Any:
        return _check_blocks(v, "system")

    def system_text(self) -> str | None:
        if self.system is None or isinstance(self.system, str):
            return self.system or None
        return "\n\n".join(block.text for block in self.system) or None

    def chat_messages(self) -> list[dict[str, Any]]:
        """The conversation as OpenAI chat messages (plain dicts, validated by the caller)."""
        out: list[dict[str, Any]] = []
        system = self.system_text()
        if system is not None:
            out.append({"role": "system", "content": system})
        for message in self.messages:
            if isinstance(message.content, str):
                out.append({"role": message.role, "content": message.content})
            elif message.role == "assistant":
                out.append(_assistant(message.content))
            else:
                out.extend(_user(message.content))
        return out

    def chat_fields(self) -> dict[str, Any]:
        """The chat request's fields (subclasses add sampling)."""
        return {"model": self.model, "messages": self.chat_messages(), **self.chat_tools()}

    def to_chat_request(self) -> ChatCompletionRequest:
        """The same request in the generation service's (OpenAI) terms."""
        try:
            return ChatCompletionRequest.model_validate(self.chat_fields())
        except ValidationError as exc:  # a bug in the mapping, or a limit the chat request adds
            first = exc.errors()[0]
            raise InvalidRequestError(f"invalid request: {first.get('msg', 'invalid value')}") from exc

    def chat_tools(self) -> dict[str, Any]:
        """``tools``/``tool_choice``/``parallel_tool_calls`` for the chat request (empty without tools)."""
        fields: dict[str, Any] = {}
        if self.tools:
            fields["tools"] = [tool.openai() for tool in self.tools]
        if self.tool_choice is not None:
            if self.tools or self.tool_choice.type == "none":
                fields["tool_choice"] = self.tool_choice.openai()
            if self.tool_choice.disable_parallel_tool_use:
                fields["parallel_tool_calls"] = False
        return fields


def _assistant(blocks: list[Any]) -> dict[str, Any]:
    text = "".join(b.text for b in blocks if isinstance(b, TextBlock))
    calls = [
        {"id": b.id, "type": "function",
         "function": {"name": b.name, "arguments": json.dumps(b.input, ensure_ascii=False)}}
        for b in blocks if isinstance(b, ToolUseBlock)
    ]
    if any(isinstance(b, ToolResultBlock) for b in blocks):
        raise InvalidRequestError("tool_result blocks belong in a user message", "messages")
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _user(blocks: list[Any]) -> list[dict[str, Any]]:
    """A user turn: each tool_result becomes a ``tool`` message, text between them user messages."""
    out: list[dict[str, Any]] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            out.append({"role": "user", "content": "".join(pending)})
            pending.clear()

    for block in blocks:
        if isinstance(block, TextBlock):
            pending.append(block.text)
        elif isinstance(block, ToolResultBlock):
            flush()
            out.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": block.text()})
        else:
            raise InvalidRequestError("tool_use blocks belong in an assistant message", "messages")
    flush()
    if not out:
        out.append({"role": "user", "content": ""})
    return out


class MessagesRequest(MessagesInput):
    max_tokens: int = Field(..., ge=1)
    stop_sequences: list[str] | None = Field(None, max_length=MAX_STOP)
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=1.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0)
    metadata: dict[str, Any] | None = None
    output_config: OutputConfig | None = None

    def chat_fields(self) -> dict[str, Any]:
        user = (self.metadata or {}).get("user_id")
        output = self.output_config.format if self.output_config is not None else None
        return {
            **super().chat_fields(),
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "stop": list(self.stop_sequences) if self.stop_sequences else None,
            "stream": self.stream,
            **({"user": str(user)} if user is not None else {}),
            **({"response_format": {"type": "json_schema", "json_schema": {"name": "output", "schema": output.schema_}}}
               if output is not None else {}),
        }


class CountTokensRequest(MessagesInput):
    """``/v1/messages/count_tokens``: the prompt part of a messages request."""
