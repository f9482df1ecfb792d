"""``ingot chat``: a terminal chat that streams replies, against a server or in-process.

Both paths send the same OpenAI chat request; in-process it goes straight to the
generation service (no HTTP), so the terminal works on a machine with no server running.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import AsyncIterator, Callable

from ingot.config import Settings


def _read_line(prompt: str) -> str | None:
    if sys.stdin.isatty():
        try:
            return input(prompt)
        except EOFError:
            return None
    line = sys.stdin.readline()
    return None if line == "" else line.rstrip("\n")


async def _remote_stream(url: str, model: str | None) -> Callable[[list[dict], dict], AsyncIterator[str]]:
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="ingot", max_retries=0)
    try:
        listed = await client.models.list()
    except openai.APIConnectionError as exc:
        raise ConnectionError(f"cannot reach an ingot server at {url}: {exc}") from exc
    model_id = model or listed.data[0].id

    async def stream(messages: list[dict], options: dict) -> AsyncIterator[str]:
        response = await client.chat.completions.create(model=model_id, messages=messages, stream=True, **options)
        async for chunk in response:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    return stream


async def _local_stream(settings: Settings):  # noqa: ANN202
    from ingot.engines.factory import create_engine
    from ingot.generation.protocol import ChatCompletionRequest
    from ingot.generation.service import GenerationService
    from ingot.metrics import GenerationMetrics
    from ingot.models.registry import find_model
    from prometheus_client import CollectorRegistry

    spec = find_model(settings.model)
    engine = await asyncio.to_thread(create_engine, spec, settings)
    service = GenerationService(engine, spec.names(), GenerationMetrics(CollectorRegistry()))

    async def stream(messages: list[dict], options: dict) -> AsyncIterator[str]:
        request = ChatCompletionRequest(messages=messages, stream=True, **options)
        events = await service.chat(request)
        async for event in events:  # type: ignore[union-attr]
            if not event.startswith("data: {"):
                continue
            payload = json.loads(event[6:])
            if "error" in payload:
                raise RuntimeError(payload["error"]["message"])
            for choice in payload.get("choices", []):
                text = choice.get("delta", {}).get("content")
                if text:
                    yield text

    return stream, engine


async def _repl(settings: Settings, url: str | None, model: str | None, system: str | None, options: dict) -> None:
    engine = None
    if url:
        stream = await _remote_stream(url, model)
    else:
        stream, engine = await _local_stream(settings)
    history: list[dict] = [{"role": "system", "content": system}] if system else []
    try:
        while True:
            line = await asyncio.to_thread(_read_line, "you> ")
            if line is None or not line.strip():
                break
            history.append({"role": "user", "content": line})
            sys.stdout.write("assistant> ")
            reply = []
            async for piece in stream(history, options):
                reply.append(piece)
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
            history.append({"role": "assistant", "content": "".join(reply)})
    finally:
        if engine is not None:
            await engine.shutdown()


def run_chat(
    settings: Settings, *, url: str | None, model: str | None, system: str | None, max_tokens: int, temperature: float
) -> None:
    options = {"max_tokens": max_tokens, "temperature": temperature}
    asyncio.run(_repl(settings, url, model, system, options))
