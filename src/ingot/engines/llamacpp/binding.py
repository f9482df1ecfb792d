"""Thin, typed wrappers over llama-cpp-python's low-level (ctypes) API.

We use the C API directly rather than ``llama_cpp.Llama`` because the high-level class
owns one sequence per context; continuous batching needs many sequences in one
``llama_decode`` call, each with its own sampler chain.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from pathlib import Path

import llama_cpp as L
import numpy as np

from ingot.engines.llamacpp.trigger import TriggerMasks, masks_for
from ingot.engines.protocol import SamplingParams
from ingot.errors import InvalidRequestError

log = logging.getLogger("ingot.llamacpp")

_backend_lock = threading.Lock()
_backend_ready = False


@L.llama_log_callback
def _route_llama_log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    # llama.cpp is chatty at load time; keep it at DEBUG unless it warns or fails.
    # ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 continuation.
    message = text.decode("utf-8", errors="replace").rstrip()
    if message:
        log.log({3: logging.WARNING, 4: logging.ERROR}.get(level, logging.DEBUG), message)


def init_backend() -> None:
    global _backend_ready
    with _backend_lock:
        if not _backend_ready:
            L.llama_log_set(_route_llama_log, ctypes.c_void_p(0))
            L.llama_backend_init()
            _backend_ready = True


# llama.cpp type names -> enum llama_ftype values for re-quantization.
FTYPES = {"f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q4_k_m": 15, "q5_k_m": 17, "q6_k": 18}


def quantize(source: Path, target: Path, precision: str, threads: int = 2) -> None:
    """Write ``source`` re-quantized to ``precision`` at ``target`` (llama_model_quantize)."""
    init_backend()
    if precision not in FTYPES:
        raise ValueError(f"unsupported precision {precision!r}; choose one of {', '.join(FTYPES)}")
    params = L.llama_model_quantize_default_params()
    params.ftype = FTYPES[precision]
    params.allow_requantize = True
    params.nthread = threads
    rc = L.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize failed ({rc}) for {source} -> {precision}")


class LlamaModel:
    """A loaded GGUF model plus its vocabulary helpers (thread-safe, read-only)."""

    def __init__(self, path: Path) -> None:
        init_backend()
        params = L.llama_model_default_params()
        self.model = L.llama_model_load_from_file(str(path).encode(), params)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab: int = L.llama_vocab_n_tokens(self.vocab)
        self.n_ctx_train: int = L.llama_model_n_ctx_train(self.model)
        self.bos_id: int = L.llama_vocab_bos(self.vocab)
        self.eos_id: int = L.llama_vocab_eos(self.vocab)
        self.add_bos: bool = bool(L.llama_vocab_get_add_bos(self.vocab))
        # Cache every token's bytes once: detokenizing in the decode loop must be cheap.
        self._pieces: list[bytes] = [self._piece(t, special=False) for t in range(self.n_vocab)]
        self._special_pieces: dict[int, bytes] = {}
        self.trigger_masks: dict[bytes, TriggerMasks] = {}  # lazy grammars' masks, built on first use

    def _piece(self, token: int, special: bool) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = L.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = L.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        return buf.raw[:n]

    def piece(self, token: int) -> bytes:
        return self._pieces[token] if 0 <= token < self.n_vocab else b""

    def pieces(self) -> list[bytes]:
        """Every token's bytes, by id."""
        return self._pieces

    def special_piece(self, token: int) -> bytes:
        """The token's text including control tokens (``<|im_end|>``), for logprob display."""
        if token not in self._special_pieces:
            self._special_pieces[token] = self._piece(token, special=True)
        return self._special_pieces[token]

    def token_text(self, token: int) -> str:
        return self.special_piece(token).decode("utf-8", errors="replace") if token >= 0 else ""

    def is_eog(self, token: int) -> bool:
        return bool(L.llama_vocab_is_eog(self.vocab, token))

    def tokenize(self, text: str, add_special: bool, parse_special: bool = True) -> list[int]:
        """Token ids of ``text``. The first buffer guesses 1 token per 2 bytes (BPE vocabularies
        average 3-4) instead of one per byte, and the ids leave through numpy: on a 30 MB
        prompt the old per-byte buffer and ``list(buf[:n])`` cost ~0.5 s of held GIL."""
        data = text.encode("utf-8")
        capacity = len(data) // 2 + 16
        buf = (L.llama_token * capacity)()
        n = L.llama_tokenize(self.vocab, data, len(data), buf, capacity, add_special, parse_special)
        if n < 0:  # more tokens than guessed: llama.cpp says how many
            capacity = -n
            buf = (L.llama_token * capacity)()
            n = L.llama_tokenize(self.vocab, data, len(data), buf, capacity, add_special, parse_special)
        return np.ctypeslib.as_array(buf)[:n].tolist()

    def detokenize(self, tokens: list[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def meta(self, key: str) -> str | None:
        size = 1 << 16
        buf = ctypes.create_string_buffer(size)
        n = L.llama_model_meta_val_str(self.model, key.encode(), buf, size)
        if n < 0:
            return None
        if n >= size:
            buf = ctypes.create_string_buffer(n + 1)
            L.llama_model_meta_val_str(self.model, key.encode(), buf, n + 1)
        return buf.value.decode("utf-8", errors="replace")

    def close(self) -> None:
        if self.model:
            L.llama_model_free(self.model)
            self.model = None


class LlamaContext:
    """A llama.cpp context with ``n_seq`` independent KV sequences of ``n_ctx_seq`` each."""

    def __init__(self, model: LlamaModel, n_seq: int, n_ctx_seq: int, n_batch: int, threads: int) -> None:
        params = L.llama_context_default_params()
        params.n_ctx = n_ctx_seq * n_seq
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq
        params.n_threads = threads
        params.n_threads_batch = threads
        params.no_perf = True
        # Separate KV buffers per sequence: faster when sequences share no prefix, and a
        # long sequence can never starve the others of cache.
        params.kv_unified = False
        self.ctx = L.llama_init_from_model(model.model, params)
        self.threads = threads
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a context (out of memory?)")
        self.n_ctx_seq: int = L.llama_n_ctx_seq(self.ctx)
        self.n_ubatch: int = L.llama_n_ubatch(self.ctx)
        self.kv_unified: bool = bool(params.kv_unified)
        self.memory = L.llama_get_memory(self.ctx)
        self.n_vocab = model.n_vocab
        # Recurrent and hybrid models keep a state, not cells per position: their sequences
        # cannot be cut back to a position (speculation needs that to drop rejected drafts).
        self.can_trim: bool = not (L.llama_model_is_recurrent(model.model) or L.llama_model_is_hybrid(model.model))

    def set_threads(self, threads: int) -> None:
        """Threads for the next decodes (prompt chunks and decode rows alike): llama.cpp
        reads the count at each graph compute, so this is cheap enough to call per step."""
        if threads != self.threads:
            L.llama_set_n_threads(self.ctx, threads, threads)
            self.threads = threads

    def clear_sequence(self, seq_id: int) -> None:
        L.llama_memory_seq_rm(self.memory, seq_id, -1, -1)

    def trim_sequence(self, seq_id: int, keep: int) -> bool:
        """Keep the first ``keep`` positions of a sequence; False if the cache can't."""
        return bool(L.llama_memory_seq_rm(self.memory, seq_id, keep, -1))

    def move_sequence(self, src: int, dst: int) -> None:
        """Copy sequence ``src``'s KV cells into ``dst``'s stream (replacing what it held).

        Across per-slot streams llama.cpp copies the whole stream buffer, during the next
        decode; the source keeps its cells. Only a full-range copy is allowed (a partial one
        aborts the process), hence no positions here.
        """
        L.llama_memory_seq_cp(self.memory, src, dst, -1, -1)

    def decode(self, batch: "Batch") -> int:
        return L.llama_decode(self.ctx, batch.batch)

    def passes(self, batch: "Batch") -> int:
        """How many internal passes (ubatches) ``llama_decode`` will split ``batch`` into."""
        return ubatch_count(batch.runs, self.n_ubatch, sequential=not self.kv_unified)

    def logits_row(self, batch_index: int) -> np.ndarray:
        """Logits of the token at ``batch_index`` of the last decode (a view; copy to keep)."""
        ptr = L.llama_get_logits_ith(self.ctx, batch_index)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def close(self) -> None:
        if self.ctx:
            L.llama_free(self.ctx)
            self.ctx = None


def ubatch_count(runs: list[list[int]], n_ubatch: int, sequential: bool = True) -> int:
    """The number of ubatches llama.cpp splits a batch into, computed without decoding.

    ``runs`` is the batch in order as ``[seq_id, n_tokens]`` runs (one sequence id per
    token). This mirrors ``llama_batch_allocr::split_equal(n_ubatch, sequential)``, which
    ``llama_kv_cache::init_batch`` uses when every sequence has its own KV stream
    (``kv_unified=False``), so a pass-count metric can show when the batch order costs
    extra passes (each one a full forward over the weights):

    - a ubatch takes the first unused token's sequence, then, scanning on in batch order,
      every sequence whose id is the previous one's plus one (``sequential``; any
      sequence not already in it otherwise);
    - it then takes the same number of tokens from each chosen sequence: the fewest any of
      them has left, capped so the ubatch holds at most ``n_ubatch`` tokens.

    With a unified KV cache llama.cpp uses ``split_simple``: ``n_ubatch`` tokens at a time.
    """
    total = sum(n for _, n in runs)
    if not sequential:
        return -(-total // n_ubatch)
    left = [n for _, n in runs]  # tokens of each run not yet in a ubatch
    count = 0
    while total > 0:
        chosen = _chain_of_sequences(runs, left, n_ubatch)
        per_seq = min(_tokens_left(runs, left, seq) for seq in chosen)
        per_seq = min(per_seq, max(1, n_ubatch // len(chosen)))
        for seq in chosen:
            _take(runs, left, seq, per_seq)
        total -= per_seq * len(chosen)
        count += 1
    return count


def _chain_of_sequences(runs: list[list[int]], left: list[int], n_ubatch: int) -> list[int]:
    """The sequences of the next ubatch: split_equal's first loop, sequential mode."""
    chosen: list[int] = []
    for (seq, _), n_left in zip(runs, left):
        if n_left == 0 or seq in chosen:
            continue
        if not chosen or seq == chosen[-1] + 1:
            chosen.append(seq)
            if len(chosen) > n_ubatch:
                break
    return chosen


def _tokens_left(runs: list[list[int]], left: list[int], seq: int) -> int:
    return sum(n for (s, _), n in zip(runs, left) if s == seq)


def _take(runs: list[list[int]], left: list[int], seq: int, n: int) -> None:
    """Mark a sequence's first ``n`` unused tokens used (llama.cpp takes them in batch order)."""
    for i, (s, _) in enumerate(runs):
        if n == 0:
            return
        if s == seq and left[i]:
            used = min(n, left[i])
            left[i] -= used
            n -= used


class Batch:
    """A reusable llama_batch of up to ``capacity`` tokens, one sequence id per token."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.batch = L.llama_batch_init(capacity, 0, 1)
        self.size = 0
        # The batch as [seq_id, n_tokens] runs in order: what llama.cpp's ubatch split reads.
        self.runs: list[list[int]] = []

    def clear(self) -> None:
        self.size = 0
        self.batch.n_tokens = 0
        self.runs = []

    def add(self, token: int, pos: int, seq_id: int, want_logits: bool) -> int:
        i = self.size
        b = self.batch
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq_id
        b.logits[i] = 1 if want_logits else 0
        self.size += 1
        b.n_tokens = self.size
        if self.runs and self.runs[-1][0] == seq_id:
            self.runs[-1][1] += 1
        else:
            self.runs.append([seq_id, 1])
        return i

    def close(self) -> None:
        L.llama_batch_free(self.batch)


class Sampler:
    """A per-request llama.cpp sampler chain (penalties, grammar, top-k/p, temperature).

    With a lazy grammar (``params.lazy_grammar``) it holds two chains: the free one, and
    from the token that ends the trigger until the one that ends ``end``, a fresh chain
    with the grammar in it. The trigger may only end on a token boundary (trigger.py), so
    the grammar never has to accept half a token, which is what aborted llama.cpp's own
    lazy grammar."""

    PENALTY_WINDOW = 64
    TAIL = 64  # bytes of output kept to find the trigger and the end marker

    def __init__(self, model: LlamaModel, params: SamplingParams, seed: int) -> None:
        self.model, self.params, self.seed = model, params, seed
        self.chain = self._new_chain(params.grammar)
        self._free_chain = None  # the chain to go back to while the lazy grammar runs
        self._tail = b""
        self._masks: TriggerMasks | None = None
        lazy = params.lazy_grammar
        if lazy is not None and (not lazy.trigger or not lazy.end):
            self.close()
            raise InvalidRequestError("a lazy grammar needs a trigger and an end", "tools")
        # As bytes once: the output tail they are matched against grows by a token's bytes per step.
        self._trigger = lazy.trigger.encode("utf-8") if lazy is not None else b""
        self._end = lazy.end.encode("utf-8") if lazy is not None else b""

    def _new_chain(self, grammar: str | None):  # noqa: ANN202 - ctypes pointer
        chain_params = L.llama_sampler_chain_default_params()
        chain_params.no_perf = True
        chain = L.llama_sampler_chain_init(chain_params)
        try:
            self._build(chain, self.model, self.params, self.seed, grammar)
        except Exception:
            L.llama_sampler_free(chain)
            raise
        return chain

    def _build(self, chain, model: LlamaModel, p: SamplingParams, seed: int, grammar: str | None) -> None:  # noqa: ANN001
        def add(sampler) -> None:  # noqa: ANN001 - ctypes pointer
            L.llama_sampler_chain_add(chain, sampler)

        if p.logit_bias:
            biases = (L.llama_logit_bias * len(p.logit_bias))()
            for i, (token, bias) in enumerate(p.logit_bias.items()):
                if not 0 <= token < model.n_vocab:
                    raise InvalidRequestError(f"logit_bias token {token} is outside the vocabulary", "logit_bias")
                biases[i].token = token
                biases[i].bias = bias
            add(L.llama_sampler_init_logit_bias(model.n_vocab, len(p.logit_bias), biases))
        if p.presence_penalty or p.frequency_penalty or p.repetition_penalty != 1.0:
            add(L.llama_sampler_init_penalties(
                model.n_vocab, self.PENALTY_WINDOW, p.repetition_penalty, p.frequency_penalty, p.presence_penalty))
        if grammar:
            compiled = L.llama_sampler_init_grammar(model.vocab, grammar.encode("utf-8"), b"root")
            if not compiled:
                raise InvalidRequestError("the grammar for response_format could not be compiled", "response_format")
            add(compiled)
        if p.temperature <= 0.0:
            add(L.llama_sampler_init_greedy())
            return
        if p.top_k > 0:
            add(L.llama_sampler_init_top_k(p.top_k))
        if p.top_p < 1.0:
            add(L.llama_sampler_init_top_p(p.top_p, 1))
        if p.min_p > 0.0:
            add(L.llama_sampler_init_min_p(p.min_p, 1))
        add(L.llama_sampler_init_temp(p.temperature))
        add(L.llama_sampler_init_dist(seed & 0xFFFFFFFF))

    @property
    def in_lazy_grammar(self) -> bool:
        return self._free_chain is not None

    def sample(self, ctx: LlamaContext, batch_index: int) -> int:
        """Sample the next token from the logits at ``batch_index`` and accept it."""
        lazy = self.params.lazy_grammar
        if lazy is None:
            return L.llama_sampler_sample(self.chain, ctx.ctx, batch_index)
        if not self.in_lazy_grammar:
            self._mask_overruns(ctx, batch_index)
        token = L.llama_sampler_sample(self.chain, ctx.ctx, batch_index)
        self._tail = (self._tail + self.model.piece(token))[-self.TAIL:]
        if not self.in_lazy_grammar and self._tail.endswith(self._trigger):
            self._free_chain, self.chain = self.chain, self._new_chain(lazy.grammar)
        elif self.in_lazy_grammar and self._tail.endswith(self._end):
            L.llama_sampler_free(self.chain)
            self.chain, self._free_chain = self._free_chain, None
        return token

    def _mask_overruns(self, ctx: LlamaContext, batch_index: int) -> None:
        """Forbid tokens that would complete the trigger mid-token (see trigger.py)."""
        if self._masks is None:  # first use, on the scheduler thread: one vocabulary pass per model
            self._masks = masks_for(self.model.trigger_masks, self._trigger, self.model.pieces())
        banned = self._masks.banned(self._tail)
        if banned is not None:
            ctx.logits_row(batch_index)[banned] = -np.inf

    def close(self) -> None:
        for chain in (self.chain, self._free_chain):
            if chain:
                L.llama_sampler_free(chain)
        self.chain = self._free_chain = None
