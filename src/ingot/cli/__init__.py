"""The ``ingot`` command line, one module per command group, registered here and only here.

Errors a user can cause (bad flag, unknown model, unreachable server) end with a one-line
message and exit code 2, never a traceback. Heavy imports stay inside the commands, so
``ingot --help`` and ``ingot version`` start in a fraction of a second.
"""

from __future__ import annotations

import typer

from ingot.cli import chat, evaluate, extract, kb, keys, models, serve, worker

app = typer.Typer(help="ingot: OpenAI-compatible model serving and RAG, offline-first.", no_args_is_help=True)

app.command()(serve.version)
app.command()(serve.serve)
app.command()(worker.worker)
app.command()(chat.chat)
app.command()(extract.extract)
app.command("ingest")(kb.ingest)
app.command("search")(kb.search)
app.command("ask")(kb.ask)
app.command("profiles")(models.profiles)

models.models_app.command("list")(models.models_list)
models.models_app.command("pull")(models.models_pull)
models.models_app.command("verify")(models.models_verify)
app.add_typer(models.models_app, name="models")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(evaluate.eval_app, name="eval")

__all__ = ["app"]
