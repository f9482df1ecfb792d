"""vLLM-compatible tokenizer endpoints at the server root (lm-evaluation-harness's remote
tokenizer probes ``/tokenizer_info``, ``/tokenize`` and ``/detokenize``)."""

from __future__ import annotations

import json
from typing import Callable

from fastapi import APIRouter, Depends, Response

from ingot.engines.protocol import Engine
from ingot.errors import InvalidRequestError
from ingot.generation.protocol import DetokenizeRequest, TokenizeRequest
from ingot.generation.service import GenerationService
from ingot.offload import REQUEST_POOL
from ingot.server.middleware import OffloadedJSONRoute
from ingot.server.state import get_generation

router = APIRouter(tags=["tokenizer"], route_class=OffloadedJSONRoute)


@router.post("/tokenize")
async def tokenize(body: TokenizeRequest, service: GenerationService = Depends(get_generation)) -> Response:
    """Any length is counted (lm-evaluation-harness measures documents longer than the
    context); the tokenizing and the JSON of a big answer run in the request pool."""
    service.check_model(body.model)
    if body.messages is not None:
        tokens = await service.chat_prompt_ids(body.messages, body.add_generation_prompt, bounded=False)
    else:
        tokens = await service.tokenize(body.prompt or "", body.add_special_tokens, bounded=False)
    content = await REQUEST_POOL.run(_tokenize_answer, service.engine, tokens, body.return_token_strs,
                                     size=len(tokens) * 8)
    return Response(content, media_type="application/json")


def _tokenize_answer(engine: Engine, tokens: list[int], with_strs: bool) -> bytes:
    """The JSON answer, written in slices: ``json.dumps`` of 5 million ids holds the GIL for
    a second in one C call, which would stall the event loop as surely as running on it."""
    head = {"count": len(tokens), "max_model_len": engine.info.context_length}
    out = [json.dumps(head)[:-1], ', "tokens": [']
    out.append(_joined(tokens, lambda part: ",".join(map(str, part))))
    out.append("]")
    if with_strs:
        out.append(', "token_strs": [')
        out.append(_joined(tokens, lambda part: ",".join(json.dumps(engine.token_text(t), ensure_ascii=False)
                                                         for t in part)))
        out.append("]")
    out.append("}")
    return "".join(out).encode()


def _joined(tokens: list[int], render: Callable[[list[int]], str], step: int = 1 << 16) -> str:
    """``render`` over slices of ``tokens``, comma-separated: each slice is a short GIL hold
    (joining the finished slices is one copy)."""
    return ",".join(render(tokens[i : i + step]) for i in range(0, len(tokens), step))


@router.post("/detokenize")
async def detokenize(body: DetokenizeRequest, service: GenerationService = Depends(get_generation)) -> dict:
    service.check_model(body.model)
    vocab = service.engine.info.vocab_size
    bad = [t for t in body.tokens if not 0 <= t < vocab]
    if bad:
        raise InvalidRequestError(f"token id {bad[0]} is outside the vocabulary (size {vocab})", "tokens")
    return {"prompt": service.engine.detokenize(body.tokens)}


@router.get("/tokenizer_info")
async def tokenizer_info(service: GenerationService = Depends(get_generation)) -> dict:
    info = service.engine.info
    return {
        "tokenizer_class": "GGUFTokenizer",
        "eos_token": info.eos_token,
        "bos_token": info.bos_token,
        "pad_token": info.eos_token,
        "chat_template": info.chat_template,
        "model_max_length": info.context_length,
        "vocab_size": info.vocab_size,
    }
