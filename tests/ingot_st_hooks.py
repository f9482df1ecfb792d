"""schemathesis hooks (loaded by `st` through ``SCHEMATHESIS_HOOKS=ingot_st_hooks`` with
tests/ on PYTHONPATH; see ``st_env``): cap what generated requests make the model do.

A generated token budget (max_tokens, max_completion_tokens, max_output_tokens) is capped
at 8 and ``n`` at 2, and the open-ended generation routes get a budget of 8 when the case
sets none: otherwise schemathesis has the model write up to the whole context on every
case (POST /v1/completions alone took a minute; createResponse timed out at 9 minutes on
a loaded machine). Invalid values (zero, negative, not an integer) and overflow probes
(2**31 and up) are sent as generated.
"""

import os
from pathlib import Path

import schemathesis

BUDGETS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
# Routes where a request without a budget generates up to the end of the context.
# Paths without the /v1 prefix: ingot's own schema has it, OpenAI's spec (served under a
# base URL ending in /v1) does not.
OPEN_ENDED = {"/completions": "max_tokens", "/chat/completions": "max_tokens",
              "/rag/chat/completions": "max_tokens", "/responses": "max_output_tokens"}
CAP_TOKENS, CAP_CHOICES = 8, 2
OVERFLOW = 2**31  # budgets from here up are overflow probes: sent as generated


@schemathesis.hook
def before_call(ctx, case, kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    for field in BUDGETS:
        value = body.get(field)
        if type(value) is int and CAP_TOKENS < value < OVERFLOW:  # zero, negative, non-int values stay
            body[field] = CAP_TOKENS
    field = OPEN_ENDED.get(case.operation.path.removeprefix("/v1"))
    if field and all(body.get(f) is None for f in BUDGETS):
        body[field] = CAP_TOKENS
    if type(body.get("n")) is int and CAP_CHOICES < body["n"] <= 16:
        body["n"] = CAP_CHOICES


def st_env() -> dict[str, str]:
    """The environment that makes `st` load these hooks."""
    here = str(Path(__file__).resolve().parent)
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "SCHEMATHESIS_HOOKS": "ingot_st_hooks", "PYTHONPATH": path}
