"""``response_format`` -> a GBNF grammar that llama.cpp enforces token by token, so the
output always parses (JSON mode) and matches the schema (structured outputs)."""

from __future__ import annotations

import json
from typing import Any

from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

from ingot.errors import InvalidRequestError


class SchemaError(InvalidRequestError, ValueError):
    """The JSON schema cannot be turned into a grammar."""

    param = "response_format"


def grammar_for_json_object() -> str:
    return JSON_GBNF


def grammar_for_json_schema(schema: dict[str, Any]) -> str:
    try:
        return json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # the converter raises bare Exceptions / KeyErrors on bad schemas
        raise SchemaError(f"unsupported JSON schema: {exc}") from exc
