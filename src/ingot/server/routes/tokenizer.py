"""vLLM-compatible tokenizer endpoints at the server root (lm-evaluation-harness's remote
tokenizer probes ``/tokenizer_info``, ``/tokenize`` and ``/detokenize``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ingot.errors import InvalidRequestError
from ingot.generation.protocol import DetokenizeRequest, TokenizeRequest
from ingot.generation.service import GenerationService
from ingot.server.state import get_generation

router = APIRouter(tags=["tokenizer"])


@router.post("/tokenize")
async def tokenize(body: TokenizeRequest, service: GenerationService = Depends(get_generation)) -> dict:
    service.check_model(body.model)
    engine = service.engine
    if body.messages is not None:
        tokens = service.chat_prompt_ids(body.messages, body.add_generation_prompt)
    else:
        tokens = engine.tokenize(body.prompt or "", add_special=body.add_special_tokens)
    result: dict = {"count": len(tokens), "max_model_len": engine.info.context_length, "tokens": tokens}
    if body.return_token_strs:
        result["token_strs"] = [engine.token_text(t) for t in tokens]
    return result


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
