"""One typed settings object for the whole process.

Precedence, highest first: CLI flags (passed as ``overrides``), environment variables
``INGOT_*``, an optional YAML file (``--config`` or ``INGOT_CONFIG``), then defaults.
Everything that persists lives under ``data_dir`` so one volume holds all state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


def _cores() -> int:
    return os.cpu_count() or 1


def _default_busy_threads() -> int:
    """One core left to the encoder or extraction that is computing beside generation:
    on 2 cores, 2 llama.cpp threads beside a busy embedder decode 2.5x slower than 1
    (benchmarks/RESULTS.md, "llama.cpp threads under load")."""
    return max(1, _cores() - 1)


class Settings(BaseSettings):
    """Process-wide configuration. Construct with :func:`load_settings`."""

    model_config = SettingsConfigDict(env_prefix="INGOT_", extra="forbid")

    data_dir: Path = Field(
        default_factory=lambda: Path(os.path.expanduser("~/.local/share/ingot")),
        description="Root for all state: model cache, databases, logs.",
    )
    models_cache_dir: Path | None = Field(
        None,
        description="Model cache (pulled weights, re-quantized GGUFs, ONNX exports); default data_dir/models. "
        "Instances may share one: files are written under a per-process name and renamed into place.",
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)

    model: str = Field(
        "auto", description="Chat model id, alias or .gguf path; 'auto': the best catalog model installed here "
        "(Qwen2.5-Coder-1.5B, then 0.5B, then SmolLM2-135M, by golden-set accuracy); 'none' to serve no chat model.",
    )
    sampling_defaults: Literal["model", "openai"] = Field(
        "model", description="Sampling for fields a request omits: 'model' (the catalog model's recommended "
        "temperature/top_p/top_k/repetition_penalty, as vLLM and Ollama do) or 'openai' (temperature 1, top_p 1).",
    )
    embedding_model: str = Field("all-minilm-l6-v2", description="Embedding model id, alias or folder; 'none' to disable.")
    ranking_model: str = Field(
        "embedding",
        description="Ranker behind /v1/ranking and /v1/rerank: 'embedding' (cosine over the embedding model; "
        "beat the chat model as a yes/no judge on SciFact, see benchmarks/RESULTS.md), a cross-encoder folder "
        "path, or 'none'.",
    )
    embed_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, description="Torch threads for encoders.")
    embed_truncate: Literal["END", "START", "NONE"] = Field(
        "END", description="/v1/embeddings inputs over the model's limit when a request omits 'truncate': cut at "
        "the END (default, as TEI's --auto-truncate), the START, or NONE (400, as NIM).",
    )
    embed_max_batch: int = Field(64, ge=1, le=1024, description="Inputs per encoder forward pass.")
    embed_runtime: Literal["auto", "onnx", "torch"] = Field(
        "auto", description="Embedding runtime: 'auto' (ONNX Runtime when installed, measured fastest), 'onnx', 'torch'."
    )
    model_precision: str = Field(
        "auto",
        description="Weights format for the CPU engine: 'auto' (the model's preferred CPU "
        "profile), 'source' (the file as shipped) or a llama.cpp type such as 'q8_0'.",
    )
    model_profile: str = Field(
        "auto",
        description="How to run the chat model (see `ingot profiles`): 'auto' (best compatible profile, "
        "throughput first), 'latency', 'throughput', or a profile id, which must be compatible here.",
    )
    threads: int = Field(default_factory=_cores, ge=1,
                         description="llama.cpp compute threads while nothing else in the process computes.")
    threads_when_busy: int = Field(
        default_factory=_default_busy_threads, ge=1,
        description="llama.cpp threads while an encoder batch or an extraction runs in this process (at most "
                    "`threads`); chosen again before every decode step.")
    parallel: int = Field(8, ge=1, le=256, description="Sequences decoded together (continuous batching slots).")
    max_queue: int = Field(64, ge=0, description="Requests allowed to wait for a slot before 429.")
    context_length: int = Field(4096, ge=64, description="Tokens of context per sequence (capped by the model).")
    batch_tokens: int = Field(512, ge=16, description="Max tokens per llama_decode call (prefill chunk size).")
    speculative_draft_tokens: int = Field(
        8, ge=0, le=64,
        description="Prompt-lookup speculative decoding (llama.cpp engine): the most draft tokens per sequence and "
        "step, copied from where the sequence's last tokens occurred before; the length used is chosen each step "
        "from measured acceptance and step cost. Output is identical to decoding without drafts. 0: off.",
    )
    share_prefixes: bool = Field(
        True,
        description="llama.cpp engine: a request whose prompt starts like one another slot holds (or is "
        "prefilling) copies those KV cells instead of prefilling them; reported as cached tokens.",
    )
    max_tokens_default: int | None = Field(
        None, ge=1, description="Chat completion budget when a request sets none (None: the rest of the context, "
        "as OpenAI and vLLM do); an operator's cap on open-ended requests."
    )

    vector_store: Literal["lancedb", "milvus"] = Field("lancedb", description="Vector store backend.")
    milvus_uri: str | None = Field(
        None, description="Milvus Lite file path (*.db) or cluster URI; default data_dir/milvus/ingot.db."
    )
    milvus_token: str | None = Field(None, description="Milvus cluster token (user:password or API key).")
    lancedb_uri: Path | None = Field(
        None, description="LanceDB directory; default data_dir/lancedb. Replicas on one machine (or a shared "
        "filesystem) point at the same directory: LanceDB lets several processes write to it.",
    )
    lancedb_consistency_s: float | None = Field(
        1.0, ge=0,
        description="Seconds a LanceDB read may lag writes made by *another* process (e.g. `ingot ingest` next to "
        "a server); this process's own writes are seen at once. 0 checks on every read, which cost ~7 ms per "
        "search at 100k chunks (benchmarks/RESULTS.md); null never checks.",
    )

    # Shared state (docs/operations.md "From one node to a cluster").
    database_url: str | None = Field(
        None, description="PostgreSQL URL (postgresql://user:pass@host/db) for the catalog, jobs, keys, usage and "
        "stored responses, shared by every replica and worker; unset: SQLite files under data_dir (one node).",
    )
    redis_url: str | None = Field(
        None, description="Redis URL (redis://host:6379/0) for per-key quotas shared by every replica; unset: "
        "each process keeps its own buckets (a key then gets its quota once per replica).",
    )
    spool_dir: Path | None = Field(
        None, description="Where uploaded bytes wait for ingestion; every replica and worker must mount the same "
        "path when they share a database. Default data_dir/spool.",
    )

    # Knowledge base: ingestion and retrieval.
    ingest_workers: int = Field(
        2, ge=0, le=64, description="Documents ingested at the same time by this process; 0: none (an API-only "
        "replica, with `ingot worker` processes doing the ingestion).",
    )
    ingest_lease_s: float = Field(
        30.0, ge=1, description="Seconds a worker holds an item without renewing it; a worker that dies frees its "
        "items after this (another worker then redoes them).",
    )
    ingest_timeout_s: float = Field(
        120.0, gt=0, description="Seconds one file's extraction, and again its chunking, may take before it is stopped."
    )
    ingest_min_free_bytes: int = Field(
        100 << 20, ge=0,
        description="Free bytes the data volume keeps: below it uploads get 507 and ingestion waits for space.",
    )
    chunk_max_tokens: int = Field(
        256, ge=32, le=8192, description="Tokens per chunk (the embedder's own limit, so nothing is truncated)."
    )
    chunk_overlap_tokens: int = Field(32, ge=0, description="Sentences carried into the next chunk of running text.")
    search_rerank: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Rerank fused candidates by default: 'auto' = only when a cross-encoder is configured "
        "(embedding-similarity reranking lowered nDCG@10 on SciFact, see benchmarks/RESULTS.md).",
    )
    search_candidates: int = Field(50, ge=1, le=1000, description="Candidates each search mode returns for fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant k: score = sum(w / (k + rank)).")
    rrf_dense_weight: float = Field(1.0, ge=0, description="RRF weight of the dense (vector) ranking.")
    rrf_bm25_weight: float = Field(1.0, ge=0, description="RRF weight of the BM25 (full-text) ranking.")
    rag_min_score: float = Field(
        0.4, ge=-1, le=1,
        description="RAG answers only when the best passage's cosine similarity reaches this; below it, "
        "'the documents do not say' without calling the model (calibration: benchmarks/RESULTS.md).",
    )
    rag_require_names: bool = Field(
        True,
        description="RAG refuses, naming them, when the question names something (FinTabNet, Widget E, "
        "MS MARCO) that none of the retrieved passages mentions (rag/subject.py; measured in benchmarks/RESULTS.md).",
    )
    rag_table_records: bool = Field(
        True,
        description="RAG shows the model each Markdown table row as 'row n: column: value; ...' instead of the grid "
        "(rag/tables.py; measured in benchmarks/RESULTS.md, 'table rows as records').",
    )
    rag_follow_table_references: bool = Field(
        True,
        description="RAG follows a retrieved passage's 'Table N' to that table's chunk in the same document when no "
        "retrieved passage is that table, in place of the weakest other passage (rag/references.py; "
        "benchmarks/RESULTS.md).",
    )
    rag_top_k: int = Field(
        3, ge=1, le=50, description="Passages given to the model per RAG answer when the request sets no top_k "
        "(3: the bundled 135M model loses the thread with more; raise it for bigger models).",
    )
    rag_answer_tokens: int = Field(512, ge=1, description="RAG answer budget when the request sets no max_tokens.")

    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # Tenants and operations: API keys, logs, input limits (docs/api.md "Authentication").
    require_auth: bool = Field(
        False, description="Demand a Bearer key on /v1/* even before any key exists (keys also switch it on)."
    )
    public_metrics: bool = Field(
        True, description="Serve /v1/metrics and /metrics without a key, as NIM does, for Prometheus scrapers."
    )
    log_format: Literal["text", "json"] = Field("text", description="'json': one JSON object per log line.")
    max_body_bytes: int = Field(32 << 20, ge=1024, description="Largest JSON request body; beyond it, 413.")
    max_upload_bytes: int = Field(
        100 << 20, ge=1024, description="Largest multipart upload request (and file); beyond it, 413."
    )
    upload_extensions: Annotated[tuple[str, ...], NoDecode] = Field(
        ("pdf", "docx", "pptx", "xlsx", "xlsm", "csv", "tsv", "html", "htm", "xhtml", "md", "markdown", "txt", "text",
         "rst", "log", "json", "png", "jpg", "jpeg", "tif", "tiff", "gif", "bmp", "webp"),
        description="File extensions accepted for upload (comma-separated in INGOT_UPLOAD_EXTENSIONS); others, 415.",
    )
    otel_exporter: Literal["none", "console", "otlp"] = Field(
        "none", description="OpenTelemetry spans per request: 'otlp' (OTEL_EXPORTER_OTLP_* env) or 'console'; "
        "needs the 'otel' extra."
    )

    config_file: Path | None = Field(None, description="YAML file the settings were read from.")

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return Path(os.path.expanduser(str(v))).absolute()

    @field_validator("spool_dir", "lancedb_uri", mode="after")
    @classmethod
    def _expand_spool(cls, v: Path | None) -> Path | None:
        return None if v is None else Path(os.path.expanduser(str(v))).absolute()

    @field_validator("database_url", "redis_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    def spool_path(self) -> Path:
        return self.spool_dir or self.data_dir / "spool"

    @field_validator("upload_extensions", mode="before")
    @classmethod
    def _extensions(cls, v: Any) -> Any:
        items = v.split(",") if isinstance(v, str) else v
        return tuple(str(x).strip().lower().lstrip(".") for x in items if str(x).strip())

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.batch_tokens < self.parallel:
            raise ValueError("batch_tokens must be >= parallel so every running sequence fits in one step")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        yaml_path = _yaml_path_from(init_settings)
        if yaml_path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path))
        return tuple(sources)

    def models_dir(self) -> Path:
        return self.models_cache_dir or self.data_dir / "models"


def _yaml_path_from(init_settings: PydanticBaseSettingsSource) -> Path | None:
    explicit = init_settings().get("config_file") if callable(init_settings) else None
    path = explicit or os.environ.get("INGOT_CONFIG_FILE") or os.environ.get("INGOT_CONFIG")
    return Path(path) if path else None


DISABLED = ("", "none", "off")


def is_disabled(model_name: str) -> bool:
    """A model setting of '', 'none' or 'off' switches that model (and its routes) off."""
    return model_name.strip().lower() in DISABLED


class SettingsError(ValueError):
    """Settings could not be loaded; the message names the bad field."""


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build settings from flags (``overrides``, ``None`` values ignored), env and YAML."""
    init = {k: v for k, v in overrides.items() if v is not None}
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise SettingsError(f"config file not found: {path}")
        init["config_file"] = path
    try:
        return Settings(**init)
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise SettingsError(str(exc)) from exc
