"""The base of every request model on the wire: unknown fields are ignored (clients send
extras), validation and cross-field checks live on the models themselves.

Two checks hold for every field of every request, so no route has to remember them:

- text must be valid Unicode. JSON's ``"\\ud800"`` escape decodes to a lone UTF-16
  surrogate, which Python keeps in a ``str`` but no tokenizer, store or UTF-8 encoder
  accepts (it was a 500 from deep inside a tokenizer binding); here it is a 400 that names
  the field.
- numbers must be finite. Python's JSON decoder accepts ``NaN``, ``Infinity`` and ``1e999``
  (standard JSON has none of them); a non-finite temperature or filter bound is a 400,
  in typed float fields (``allow_inf_nan=False``) and inside free-form ones (tools, schemas).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

SURROGATE_MESSAGE = "contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not valid Unicode"
NON_FINITE_MESSAGE = "must be a finite number (NaN and Infinity are not JSON)"


def invalid_value(value: Any) -> str | None:
    """Why ``value`` (a decoded JSON value, possibly nested) cannot be served, or None.

    Iterative, so a deeply nested body cannot overflow the stack; models nested inside are
    skipped, since their own fields are checked by their own validator."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _has_surrogate(item):  # isascii is O(1): most text stops here
                return SURROGATE_MESSAGE
        elif isinstance(item, float):
            if not math.isfinite(item):
                return NON_FINITE_MESSAGE
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return None


def _has_surrogate(text: str) -> bool:
    """UTF-8 encoding fails exactly on surrogates; C speed (~2 ns a character), unlike a regex."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _valid_unicode_and_finite(cls, value: Any) -> Any:
        """Every field, after its own validation (see the module doc); the error's location
        is the field, so the 400 names it (``messages.0.content``)."""
        if value is None or isinstance(value, (bool, int, BaseModel)):
            return value
        problem = invalid_value(value)
        if problem is not None:
            raise ValueError(problem)
        return value
