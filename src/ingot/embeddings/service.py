"""/v1/embeddings: OpenAI's request shape plus NeMo Retriever's ``input_type`` and
``truncate``. Tokenizes once, enforces limits with errors that name the input, batches
across requests, and returns float lists or base64 (the openai SDK's default)."""

from __future__ import annotations

import base64
import time
from typing import Any, Literal

import numpy as np

from ingot.batching import DynamicBatcher
from ingot.embeddings.protocol import Encoder
from ingot.errors import InvalidRequestError
from ingot.wire import WireModel
from ingot.metrics import EncoderMetrics
from ingot.models.registry import ServedNames
from ingot.offload import REQUEST_POOL
from ingot.security import usage

MAX_INPUTS = 2048  # OpenAI's per-request limit
MAX_TOTAL_TOKENS = 300_000  # OpenAI's per-request limit
BUCKET_TOKENS = 8192  # padded tokens per forward pass (length bucketing)


class EmbeddingRequest(WireModel):
    input: str | list[str] | list[int] | list[list[int]]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None
    input_type: Literal["query", "passage"] | None = None  # NIM
    truncate: Literal["NONE", "START", "END"] | None = None  # NIM; omitted: INGOT_EMBED_TRUNCATE


def encode_bucketed(encoder: Encoder, batch: list[list[int]]) -> np.ndarray:
    """Encode a mixed-length batch in length-sorted slices so short inputs are not padded
    to the longest one (the work is proportional to padded tokens)."""
    order = sorted(range(len(batch)), key=lambda i: len(batch[i]))
    out = np.empty((len(batch), encoder.info.dimensions), dtype=np.float32)
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and (end - start + 1) * len(batch[order[end]]) <= BUCKET_TOKENS:
            end += 1
        idx = order[start:end]
        out[idx] = encoder.encode([batch[i] for i in idx])
        start = end
    return out


class EmbeddingService:
    def __init__(
        self, encoder: Encoder, served_names: tuple[str, ...], metrics: EncoderMetrics, *, max_batch: int = 64,
        default_truncate: str = "END", answers_for: tuple[str, ...] = (),
    ) -> None:
        """``default_truncate``: for requests that omit ``truncate`` (END, as TEI's
        --auto-truncate: LlamaIndex's 1024-token chunks and Haystack's document embedder
        work out of the box; NONE answers 400 above the limit, as NIM does).
        ``answers_for``: names of the server's other models (the chat model) this service
        answers for, with its own model named in the response: NIM clients such as
        LangChain's NVIDIAEmbeddings without ``model=`` send the first /v1/models entry."""
        self.encoder = encoder
        self.model_id = encoder.info.id
        self.default_truncate = default_truncate
        self._answers_for = {n.lower() for n in answers_for}
        self._served = ServedNames(self.model_id, served_names, "embeddings")
        self._metrics = metrics
        self.batcher: DynamicBatcher[list[int], np.ndarray] = DynamicBatcher(
            lambda batch: list(encode_bucketed(encoder, batch)), name="embeddings", max_batch_items=max_batch,
            on_batch=metrics.batch_observer(self.model_id, "embeddings"),
        )

    def check_model(self, name: str | None) -> None:
        self._served.check(name)

    def answering_model(self, name: str | None) -> str:
        """The ``model`` the response names: the requested name (an alias echoes back), or
        this service's own id when the request named the server's chat model."""
        if name and name.lower() in self._answers_for:
            return self.model_id
        self.check_model(name)
        return name or self.model_id

    async def prepare(self, raw: Any, input_type: str | None, truncate: str) -> list[list[int]]:
        """``token_inputs`` in the request pool (ingot/offload.py): an 8 MB input took 11 s to
        tokenize, which on the event loop stalled every other request, health probes included."""
        return await REQUEST_POOL.run(self.token_inputs, raw, input_type, truncate, size=_text_size(raw))

    def token_inputs(self, raw: Any, input_type: str | None, truncate: str) -> list[list[int]]:
        """Validate and tokenize ``input`` into model token ids (special tokens included)."""
        info = self.encoder.info
        if isinstance(raw, str):
            raw = [raw]
        if not raw:
            raise InvalidRequestError("input must not be empty", "input")
        if len(raw) > MAX_INPUTS:
            raise InvalidRequestError(f"at most {MAX_INPUTS} inputs per request, got {len(raw)}", "input")
        if isinstance(raw[0], int):
            raw = [raw]
        if isinstance(raw[0], str):
            for i, text in enumerate(raw):
                if not text.strip():
                    raise InvalidRequestError(f"input[{i}] is an empty string", "input")
            prefix = {"query": info.query_prefix, "passage": info.passage_prefix}.get(input_type or "", "")
            ids = self.encoder.tokenize([prefix + t for t in raw])
        else:
            ids = []
            for i, seq in enumerate(raw):
                if not seq or any(not 0 <= t < info.vocab_size for t in seq):
                    raise InvalidRequestError(f"input[{i}] must be non-empty token ids below {info.vocab_size}", "input")
                ids.append(list(seq))
        total = sum(len(x) for x in ids)
        if total > MAX_TOTAL_TOKENS:
            raise InvalidRequestError(f"the inputs have {total} tokens; at most {MAX_TOTAL_TOKENS} per request", "input")
        out = []
        for i, seq in enumerate(ids):
            if len(seq) > info.max_tokens:
                if truncate == "NONE":
                    raise InvalidRequestError(
                        f"input[{i}] has {len(seq)} tokens, more than the model's limit of {info.max_tokens}; "
                        "shorten it or pass truncate=END or truncate=START", "input",
                    )
                seq = self.encoder.truncate(seq, truncate)
            out.append(seq)
        return out

    async def vectors(self, token_ids: list[list[int]]) -> np.ndarray:
        return np.stack(await self.batcher.run(token_ids))

    async def embed(self, req: EmbeddingRequest) -> dict[str, Any]:
        started = time.monotonic()
        model = self.answering_model(req.model)
        native = self.encoder.info.dimensions
        if req.dimensions is not None and not 1 <= req.dimensions <= native:
            raise InvalidRequestError(f"dimensions must be between 1 and {native} for this model", "dimensions")
        ids = await self.prepare(req.input, req.input_type, req.truncate or self.default_truncate)
        vectors = await self.vectors(ids)
        if req.dimensions is not None and req.dimensions < native:
            # Matryoshka-style: keep the leading dimensions and re-normalize.
            vectors = vectors[:, : req.dimensions]
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        tokens = sum(len(x) for x in ids)
        m = self._metrics
        m.requests.labels(self.model_id, "embeddings").inc()
        m.inputs.labels(self.model_id, "embeddings").inc(len(ids))
        m.tokens.labels(self.model_id).inc(tokens)
        usage.charge(embedding=tokens)
        m.latency.labels(self.model_id, "embeddings").observe(time.monotonic() - started)
        # 2,048 vectors as Python floats take ~0.1 s: in the pool too (one vector at a time).
        data = await REQUEST_POOL.run(_data, vectors, req.encoding_format, size=vectors.size)
        return {"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _text_size(raw: Any) -> int:
    """Characters to tokenize (token-id inputs count one per id): decides inline vs pool."""
    if isinstance(raw, str):
        return len(raw)
    if isinstance(raw, list):
        return sum(len(x) if isinstance(x, (str, list)) else 1 for x in raw)
    return 0


def _data(vectors: np.ndarray, fmt: str) -> list[dict[str, Any]]:
    return [{"object": "embedding", "index": i, "embedding": _encode_vector(v, fmt)} for i, v in enumerate(vectors)]


def _encode_vector(vector: np.ndarray, fmt: str) -> list[float] | str:
    if fmt == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.astype(np.float32).tolist()
