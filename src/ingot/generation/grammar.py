"""Constraints -> a GBNF grammar that llama.cpp enforces token by token: ``response_format``
(the output always parses as JSON, or matches the schema) and guided decoding as vLLM and
NIM accept it (``structured_outputs`` / ``guided_*`` / ``nvext``): a JSON schema, a regular
expression, one of a list of choices, or a GBNF grammar given as is."""

from __future__ import annotations

import json
from typing import Any

from llama_cpp.llama_grammar import JSON_GBNF, SchemaConverter, json_schema_to_gbnf

from ingot.errors import InvalidRequestError


class SchemaError(InvalidRequestError, ValueError):
    """The JSON schema cannot be turned into a grammar."""

    param = "response_format"


def grammar_for_json_object() -> str:
    return JSON_GBNF


def grammar_for_json_schema(schema: dict[str, Any], param: str = "response_format") -> str:
    try:
        return json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # the converter raises bare Exceptions / KeyErrors on bad schemas
        raise SchemaError(f"unsupported JSON schema: {exc}", param) from exc


def _literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a GBNF string literal has JSON's escapes


def grammar_for_choice(choices: list[str], param: str = "structured_outputs.choice") -> str:
    """Exactly one of ``choices``, nothing before or after."""
    if not choices or not all(isinstance(c, str) and c for c in choices):
        raise InvalidRequestError("choice needs a non-empty list of non-empty strings", param)
    return "root ::= " + " | ".join(_literal(c) for c in dict.fromkeys(choices))


def grammar_for_regex(pattern: str, param: str = "structured_outputs.regex") -> str:
    """The whole output matches ``pattern`` (anchored at both ends; lookarounds and lazy
    quantifiers are not supported). Uses llama.cpp's own regex -> GBNF translation, the one
    its JSON-schema ``pattern`` support is built on."""
    anchored = ("" if pattern.startswith("^") else "^") + pattern + ("" if pattern.endswith("$") else "$")
    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=True)
    try:
        converter._visit_pattern(anchored, "root")  # noqa: SLF001 - the converter's regex entry point
    except Exception as exc:  # noqa: BLE001 - it raises bare Exceptions / AssertionErrors
        raise InvalidRequestError(f"unsupported regular expression: {exc}", param) from exc
    return converter.format_grammar()


def grammar_for_guided(param: str, kind: str, value: Any) -> str:
    """One guided-decoding constraint (``SamplingFields.guided()``) -> its grammar."""
    if kind == "json":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise InvalidRequestError(f"{param} is not valid JSON: {exc}", param) from exc
        return grammar_for_json_schema(value, param)
    if kind == "regex":
        return grammar_for_regex(value, param)
    if kind == "choice":
        return grammar_for_choice(value, param)
    if not isinstance(value, str) or "root" not in value:
        raise InvalidRequestError("a GBNF grammar needs a 'root' rule", param)
    return value  # compiled by the engine, which answers 400 if it does not parse
