"""``ingot chat``: a terminal chat that streams replies, against a server or in-process.

Both paths send the same OpenAI chat request; in-process it goes straight to the
generation service (no HTTP), so the terminal works on a machine with no server running.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import AsyncIterator, Callable, Optional

import typer

from ingot.cli.common import ConfigOpt, fail, run_or_exit, settings_or_exit
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


@contextlib.asynccontextmanager
async def _local_stream(settings: Settings) -> AsyncIterator[Callable[[list[dict], dict], AsyncIterator[str]]]:
    """The chat model in this process: the generation service's text events, no HTTP."""
    from ingot.bootstrap import running
    from ingot.generation.events import TextDelta
    from ingot.generation.protocol import ChatCompletionRequest

    async with running(settings, embeddings=False) as services:
        generation = services.generation
        assert generation is not None

        async def stream(messages: list[dict], options: dict) -> AsyncIterator[str]:
            events = await generation.chat(ChatCompletionRequest(messages=messages, stream=True, **options))
            try:
                async for event in events:
                    if isinstance(event, TextDelta) and event.text:
                        yield event.text
            finally:
                await events.aclose()  # type: ignore[attr-defined]

        yield stream


async def _repl(settings: Settings, url: str | None, model: str | None, system: str | None, options: dict) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if url:
            stream = await _remote_stream(url, model)
        else:
            stream = await stack.enter_async_context(_local_stream(settings))
        await _converse(stream, system, options)


async def _converse(stream: Callable[[list[dict], dict], AsyncIterator[str]], system: str | None, options: dict) -> None:
    history: list[dict] = [{"role": "system", "content": system}] if system else []
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


def run_chat(
    settings: Settings, *, url: str | None, model: str | None, system: str | None, max_tokens: int, temperature: float
) -> None:
    options = {"max_tokens": max_tokens, "temperature": temperature}
    run_or_exit(_repl(settings, url, model, system, options))


def chat(
    url: Optional[str] = typer.Option(None, help="Base URL of a running server, e.g. http://127.0.0.1:8000/v1. "
                                                   "Without it the model runs in this process."),
    model: Optional[str] = typer.Option(None, help="Model id (default: the server's / settings' model)."),
    system: Optional[str] = typer.Option(None, help="System prompt."),
    max_tokens: int = typer.Option(512, help="Reply length limit."),
    temperature: float = typer.Option(0.7),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Chat in the terminal, streaming replies. Empty line or Ctrl-D quits."""
    settings = settings_or_exit(config, model=model)
    try:
        run_chat(settings, url=url, model=model, system=system, max_tokens=max_tokens, temperature=temperature)
    except ConnectionError as exc:
        fail(str(exc))
