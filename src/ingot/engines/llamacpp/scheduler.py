"""Continuous batching for llama.cpp: one worker thread, many sequences per decode step.

Each loop iteration:
1. drops aborted requests (their KV cells and slot are freed before the next decode),
2. admits waiting requests into free slots,
3. builds one ``llama_batch``: the last sampled token of every decoding sequence, and
   prompt chunks of prefilling sequences up to the token budget (chunked prefill, so a long
   prompt never stalls the others for more than one step), in slot order,
4. calls ``llama_decode`` once (the GIL is released during it),
5. samples each sequence's next token with its own sampler chain and hands the output to
   the request's asyncio queue via ``call_soon_threadsafe``.

Requests join between steps and leave as soon as they finish.

Passes: each slot has its own KV stream (``kv_unified=False``, measured faster than a
unified cache: 116 vs 218 ms per 8-sequence step at 512 tokens of context), and llama.cpp
then runs sequences in one internal pass (ubatch) only while their ids rise by exactly one
in batch order (``split_equal``). So the batch lists sequences by slot, a new request
takes the free slot that keeps the running slots contiguous (unless another free slot's
cached prefix saves enough prefill), and when nothing waits to fill the holes that
finished requests leave, the sequences outside the densest block move into them (one KV
stream copy each, about the cost of one extra pass, instead of an extra pass every step).
The passes per step are counted (``LlamaContext.passes``, llama.cpp's rule) and exported.

Prefix cache: a finished sequence's KV cells stay in its slot. A new request goes to the
free slot whose cached tokens share the longest prefix with its prompt, and only the rest
of the prompt is prefilled (multi-turn chats and shared system prompts skip most of the
prefill), as llama.cpp's own server does.

Shared prefixes across slots (prefixes.py): when another slot holds a longer prefix of the
prompt, its KV cells are copied instead of prefilled; when a running sequence is still
prefilling a prompt that starts the same way, the new request waits for that part and then
copies it, so a burst sharing a long prefix prefills it once. Both count as cached tokens.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ingot.engines.llamacpp.binding import Batch, LlamaContext, LlamaModel, Sampler
from ingot.engines.llamacpp.prefixes import best_donor, common_prefix
from ingot.engines.llamacpp.threads import ThreadPolicy
from ingot.engines.llamacpp.speculation import (
    DraftCandidate,
    DraftTuner,
    NgramDrafter,
    updated_acceptance,
)
from ingot.engines.protocol import FinishReason, GenerationOutput, GenerationRequest, TokenLogprob
from ingot.errors import QueueFullError
from ingot.engines.text import TextStream

log = logging.getLogger("ingot.scheduler")

# Prefix-cache tokens a slot outside the running block must save over the best contiguous
# slot to be chosen: the gap it opens costs a KV stream copy (compaction), measured at
# about one more decode pass, or an extra pass per step while other requests wait.
GAP_WORTH_TOKENS = 64
# A sequence this close to its token limit is not worth a stream copy.
MIN_STEPS_LEFT_TO_MOVE = 2

# What the scheduler hands to a request's queue: an output, or an exception to raise.
Delivery = GenerationOutput | BaseException


@dataclass
class Sequence:
    """A request bound (or waiting to be bound) to a KV slot."""

    request: GenerationRequest
    sampler: Sampler
    deliver: Callable[[Delivery], None]
    max_tokens: int
    submitted_at: float = field(default_factory=time.monotonic)
    slot: int = -1
    n_prefilled: int = 0  # prompt tokens already in the KV cache
    n_cached: int = 0  # of those, reused from an earlier request (prefix cache)
    next_token: int | None = None  # sampled, not yet decoded
    n_generated: int = 0
    text: TextStream | None = None
    prompt_logprobs: list[TokenLogprob | None] | None = None
    drafter: NgramDrafter | None = None  # prompt-lookup drafts (speculation on), from the first sample
    acceptance: float | None = None  # moving average of the draft tokens kept (None: no draft yet)
    draft_match: int = 0  # n-gram length behind the draft in flight
    donor: "Sequence | None" = None  # a running sequence prefilling the prefix this one will copy
    donor_tokens: int = 0  # how many prompt tokens to copy from it once it has them

    @property
    def prompt(self) -> list[int]:
        return self.request.prompt_token_ids

    @property
    def next_pos(self) -> int:
        """The KV position the sampled, not yet decoded ``next_token`` goes to."""
        return len(self.prompt) + self.n_generated - 1

    @property
    def prefilling(self) -> bool:
        return self.n_prefilled < len(self.prompt)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max()
    return shifted - np.log(np.exp(shifted).sum())


class Scheduler:
    """Owns the llama.cpp context; all KV and sampler state is touched only by its thread."""

    def __init__(
        self,
        model: LlamaModel,
        ctx: LlamaContext,
        n_slots: int,
        batch_tokens: int,
        max_queue: int,
        max_draft: int = 0,
        share_prefixes: bool = True,
        threads: ThreadPolicy | None = None,
    ) -> None:
        self.model = model
        self.ctx = ctx
        self.n_slots = n_slots
        self.batch_tokens = batch_tokens
        self.max_queue = max_queue
        self._batch = Batch(batch_tokens)
        self._lock = threading.Condition()
        self._waiting: deque[Sequence] = deque()
        self._running: dict[int, Sequence] = {}  # slot -> sequence
        self._by_id: dict[str, Sequence] = {}
        # Tokens whose KV cells each slot holds (kept after a request ends, for reuse).
        self._slot_tokens: list[list[int]] = [[] for _ in range(n_slots)]
        self._slot_last_used: list[float] = [0.0] * n_slots
        self._aborted: set[str] = set()
        self._steps = 0  # llama_decode calls
        self._passes = 0  # internal passes (ubatches) over all steps
        self._last_passes = 0
        self._moves = 0  # sequences moved to another slot to close a gap
        # Copying a prefix from another slot needs the copy cut back to it (not recurrent).
        self.share_prefixes = share_prefixes and ctx.can_trim
        self._shared_tokens = 0  # prompt tokens copied from another slot instead of prefilled
        self._prefix_copies = 0
        # Prompt-lookup speculation (speculation.py): off when max_draft is 0, or when the
        # model's memory cannot drop the rejected draft cells (recurrent / hybrid models).
        self.max_draft = max_draft if ctx.can_trim else 0
        # One tuner per thread count: a step's cost in rows changes with the threads, and a fit
        # over steps run at both counts would price neither right.
        self._tuners: dict[int, DraftTuner] = {}
        self.threads = threads or ThreadPolicy.fixed(ctx.threads)
        self._thread_changes = 0
        self._drafted = 0  # draft tokens sent to llama_decode
        self._accepted = 0  # of those, kept
        self._spec_steps = 0  # steps that carried drafts
        self._stop = False
        self._error: BaseException | None = None
        self._step_seconds = 0.05  # moving average, for Retry-After
        self._thread = threading.Thread(target=self._run, name="llamacpp-scheduler", daemon=True)
        self._thread.start()

    # ---- called from the event loop thread -------------------------------------------

    def submit(self, seq: Sequence) -> None:
        with self._lock:
            if self._error is not None:
                raise RuntimeError(f"engine worker failed: {self._error!r}")
            busy = len(self._running) >= self.n_slots
            if busy and len(self._waiting) >= self.max_queue:
                raise QueueFullError(
                    f"server is at capacity: {len(self._running)} running, {len(self._waiting)} waiting",
                    retry_after=self.retry_after(),
                )
            self._waiting.append(seq)
            self._by_id[seq.request.request_id] = seq
            self._lock.notify()

    def abort(self, request_id: str) -> None:
        with self._lock:
            if request_id in self._by_id:
                self._aborted.add(request_id)
                self._lock.notify()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "running": len(self._running),
                "waiting": len(self._waiting),
                "slots": self.n_slots,
                "max_queue": self.max_queue,
                "decode_steps": self._steps,
                "decode_passes": self._passes,
                "decode_passes_last": self._last_passes,
                "slot_moves": self._moves,
                "prefix_shared_tokens": self._shared_tokens,
                "prefix_copies": self._prefix_copies,
                "spec_draft_tokens": self._drafted,
                "spec_accepted_tokens": self._accepted,
                "spec_steps": self._spec_steps,
                "threads": self.ctx.threads,
                "thread_changes": self._thread_changes,
            }

    def retry_after(self) -> int:
        """Seconds until a slot likely frees: a rough, honest hint for clients."""
        return max(1, int(self._step_seconds * 32 + 0.999))

    def alive(self) -> bool:
        return self._thread.is_alive() and self._error is None

    def close(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        self._thread.join(timeout=30)
        self._batch.close()

    # ---- worker thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._stop and not self._running and not self._waiting:
                        self._lock.wait()
                    if self._stop:
                        break
                    self._drop_aborted()
                    self._admit()
                    self._compact()
                    self._take_shared_prefixes()
                    active = list(self._running.values())
                if active:
                    self._step(active)
        except BaseException as exc:  # noqa: BLE001 - report to every request, then die
            log.exception("scheduler crashed")
            with self._lock:
                self._error = exc
                pending = list(self._running.values()) + list(self._waiting)
            for seq in pending:
                seq.deliver(RuntimeError(f"engine worker failed: {exc!r}"))
        finally:
            with self._lock:
                for seq in list(self._running.values()) + list(self._waiting):
                    seq.sampler.close()

    def _drop_aborted(self) -> None:
        if not self._aborted:
            return
        for request_id in self._aborted:
            seq = self._by_id.get(request_id)
            if seq is None:
                continue
            if seq.slot >= 0:
                self._release(seq)
            else:
                self._waiting.remove(seq)
                self._by_id.pop(request_id, None)
                seq.sampler.close()
        self._aborted.clear()

    def _admit(self) -> None:
        free = [s for s in range(self.n_slots) if s not in self._running]
        while free and self._waiting:
            seq = self._waiting.popleft()
            slot, reuse = self._best_slot(free, seq)
            free.remove(slot)
            seq.slot = slot
            self._reuse_prefix(seq, reuse)
            self._slot_last_used[slot] = time.monotonic()
            self._running[slot] = seq
            self._share_prefix(seq)

    def _best_slot(self, free: list[int], seq: Sequence) -> tuple[int, int]:
        """The free slot for a request, and how many prompt tokens its cache can reuse.

        The slot that keeps the running slots in the fewest contiguous blocks (each block
        is one llama.cpp pass per step), most prefix reuse first, then least recently used
        (its cache is the one least likely wanted again); a slot that breaks contiguity
        only when its cached prefix saves ``GAP_WORTH_TOKENS`` more prompt tokens.
        """
        prompt = seq.prompt
        reuse = {slot: common_prefix(self._slot_tokens[slot], prompt) for slot in free}
        blocks = {slot: self._blocks_added(slot) for slot in free}
        packed = min(free, key=lambda s: (blocks[s], -reuse[s], self._slot_last_used[s]))
        longest = min(free, key=lambda s: (-reuse[s], blocks[s], self._slot_last_used[s]))
        best = longest if reuse[longest] - reuse[packed] >= GAP_WORTH_TOKENS else packed
        # At least one prompt token must be decoded to get logits; prompt log-probs need all.
        if seq.request.params.prompt_logprobs is not None:
            return best, 0
        return best, min(reuse[best], len(prompt) - 1)

    def _blocks_added(self, slot: int) -> int:
        """How the number of contiguous blocks of running slots changes if ``slot`` joins:
        +1 (a new block), 0 (extends one) or -1 (joins two)."""
        return 1 - (slot - 1 in self._running) - (slot + 1 in self._running)

    def _compact(self) -> None:
        """Close the gaps between running slots when no waiting request will fill them: move
        each sequence outside the window holding the most running slots into its holes."""
        if self._waiting or len(self._running) < 2:
            return
        running = sorted(self._running)
        if running[-1] - running[0] + 1 == len(running):
            return
        start = self._densest_window(running)
        window = range(start, start + len(running))
        holes = [slot for slot in window if slot not in self._running]
        movers = [slot for slot in running if slot not in window and self._worth_moving(self._running[slot])]
        for src, dst in zip(movers, holes):
            self._move(self._running[src], dst)

    def _densest_window(self, running: list[int]) -> int:
        """The first slot of the ``len(running)``-slot window holding most running slots."""
        n = len(running)
        starts = range(0, self.n_slots - n + 1)
        return max(starts, key=lambda w: (sum(1 for s in running if w <= s < w + n), -w))

    @staticmethod
    def _worth_moving(seq: Sequence) -> bool:
        return seq.prefilling or seq.max_tokens - seq.n_generated >= MIN_STEPS_LEFT_TO_MOVE

    def _move(self, seq: Sequence, dst: int) -> None:
        """Move a running sequence's KV cells and bookkeeping to the free slot ``dst``. The
        old slot keeps a copy of its cells, so it stays a prefix cache for a follow-up."""
        src = seq.slot
        self.ctx.move_sequence(src, dst)
        self._slot_tokens[dst] = list(self._slot_tokens[src])
        self._slot_last_used[dst] = time.monotonic()
        del self._running[src]
        self._running[dst] = seq
        seq.slot = dst
        self._moves += 1
        log.debug("moved sequence %s from slot %d to %d", seq.request.request_id, src, dst)

    def _reuse_prefix(self, seq: Sequence, keep: int) -> None:
        slot = seq.slot
        if keep <= 0 or not self.ctx.trim_sequence(slot, keep):
            self.ctx.clear_sequence(slot)
            keep = 0
        self._slot_tokens[slot] = seq.prompt[:keep]
        seq.n_prefilled = seq.n_cached = keep

    def _share_prefix(self, seq: Sequence) -> None:
        """Copy a longer prompt prefix from another slot now, or wait for the running
        sequence that is prefilling one (see prefixes.py); nothing if none saves enough."""
        if not self.share_prefixes or seq.request.params.prompt_logprobs is not None:
            return
        prefilling = {slot: other.prompt for slot, other in self._running.items()
                      if other is not seq and other.prefilling and other.donor is None}
        donor = best_donor(seq.prompt, seq.slot, seq.n_prefilled, len(seq.prompt) - 1, self._slot_tokens,
                           prefilling)
        if donor is None:
            return
        if donor.ready:
            self._copy_prefix(seq, donor.slot, donor.tokens)
        else:
            seq.donor, seq.donor_tokens = self._running[donor.slot], donor.tokens

    def _take_shared_prefixes(self) -> None:
        """Waiting sequences whose donor has prefilled the shared part (or stopped) copy it
        now; the copy runs inside the next ``llama_decode``, before its forward pass."""
        for seq in list(self._running.values()):
            donor = seq.donor
            if donor is None:
                continue
            if donor.slot >= 0 and donor.prefilling and donor.n_prefilled < seq.donor_tokens:
                continue
            seq.donor = None
            self._share_prefix(seq)  # the donor's cells now, or a finished donor's cache

    def _copy_prefix(self, seq: Sequence, src: int, tokens: int) -> None:
        slot = seq.slot
        self.ctx.move_sequence(src, slot)
        if not self.ctx.trim_sequence(slot, tokens):
            raise RuntimeError(f"llama.cpp could not cut slot {slot}'s copied cells back to {tokens} tokens")
        self._shared_tokens += tokens - seq.n_prefilled
        self._prefix_copies += 1
        self._slot_tokens[slot] = seq.prompt[:tokens]
        seq.n_prefilled = seq.n_cached = tokens
        log.debug("request %s copied %d prompt tokens from slot %d", seq.request.request_id, tokens, src)

    def _release(self, seq: Sequence) -> None:
        """Free a sequence's slot (called with the lock held). Its KV cells stay for reuse."""
        self._running.pop(seq.slot, None)
        self._by_id.pop(seq.request.request_id, None)
        seq.sampler.close()
        seq.slot = -1

    def _forget_slot(self, slot: int) -> None:
        self.ctx.clear_sequence(slot)
        self._slot_tokens[slot] = []

    def _prefill_chunks(self, active: list[Sequence], decode_rows: int) -> dict[int, int]:
        """Prompt tokens each prefilling sequence gets this step (slot -> count): what the
        decoding sequences' ``decode_rows`` leave of the budget, in admission order (first
        come, first prefilled)."""
        budget = self.batch_tokens - decode_rows
        chunks: dict[int, int] = {}
        for seq in active:
            if budget <= 0:
                break
            if seq.prefilling and seq.donor is None:
                chunks[seq.slot] = min(budget, len(seq.prompt) - seq.n_prefilled)
                budget -= chunks[seq.slot]
        return chunks

    def _drafts(self, decoding: list[Sequence], chunks: dict[int, int]) -> dict[int, list[int]]:
        """Prompt-lookup drafts for this step's decoding sequences (slot -> draft), all cut
        to the length the tuner finds fastest; empty when speculation does not pay."""
        if self.max_draft <= 0 or not decoding:
            return {}
        # Prompts first: drafts get only the batch room the prompt chunks leave. A prompt row
        # is certain progress for a waiting request, a draft row a guess (kept ~0.6-0.9 of
        # the time), and on a compute-bound CPU both cost alike; when drafts could take half
        # the room, 16 RAG streams waited 1.15x longer than llama-server for a first token.
        room = self.batch_tokens - len(decoding) - sum(chunks.values())
        cap = min(self.max_draft, room // len(decoding))
        if cap <= 0:
            return {}
        candidates = []
        for seq in decoding:
            if seq.drafter is None:
                continue
            pos = seq.next_pos
            limit = min(cap, seq.max_tokens - seq.n_generated - 1, self.ctx.n_ctx_seq - 1 - pos)
            draft, match = seq.drafter.propose(limit)
            seq.draft_match = match
            candidates.append(DraftCandidate(seq.slot, draft, match, seq.acceptance))
        length = self._tuner.choose(candidates, sorted(chunks.items()))
        return {c.slot: c.draft[:length] for c in candidates if length and c.draft}

    @property
    def _tuner(self) -> DraftTuner:
        tuner = self._tuners.get(self.ctx.threads)
        if tuner is None:
            tuner = self._tuners[self.ctx.threads] = DraftTuner(self.max_draft, self.ctx.n_ubatch,
                                                                 sequential=not self.ctx.kv_unified)
        return tuner

    def _choose_threads(self) -> None:
        """Fewer threads while other work in the process computes (threads.py)."""
        threads = self.threads.choose()
        if threads != self.ctx.threads:
            self.ctx.set_threads(threads)
            self._thread_changes += 1

    def _step(self, active: list[Sequence]) -> None:
        started = time.monotonic()
        self._choose_threads()
        batch = self._batch
        batch.clear()
        sample_at: list[tuple[Sequence, int]] = []  # sequences that sample after this decode
        verify_at: list[tuple[Sequence, int, list[int]]] = []  # (seq, first row, draft) with drafts
        prompt_rows: list[tuple[Sequence, int, int]] = []  # (seq, first prompt pos, first batch index)
        decoded: list[tuple[Sequence, list[int]]] = []  # tokens entering each slot's KV

        decoding = [seq for seq in active if seq.next_token is not None]
        chunks = self._prefill_chunks(active, len(decoding))
        drafts = self._drafts(decoding, chunks)
        # Slot order: llama.cpp keeps consecutive sequence ids in one pass (see the module doc).
        for seq in sorted(active, key=lambda s: s.slot):
            if seq.next_token is not None:
                self._add_decode_rows(seq, drafts.get(seq.slot, []), sample_at, verify_at, decoded)
            elif seq.slot in chunks:
                self._add_prompt_chunk(seq, chunks[seq.slot], sample_at, prompt_rows, decoded)

        self._count_passes(batch, len(active))
        decode_started = time.monotonic()
        rc = self.ctx.decode(batch)
        if rc != 0:
            self._fail_step(active, rc)
            return
        if not chunks:  # the cost model is of decode rows (all with logits), not prompt chunks
            self._tuner.observe_step(self._last_passes, batch.size, time.monotonic() - decode_started)
        for seq, tokens in decoded:
            self._slot_tokens[seq.slot].extend(tokens)

        for seq, start, first_index in prompt_rows:
            self._collect_prompt_logprobs(seq, start, first_index)
        for seq, index in sample_at:
            self._sample(seq, index)
        for seq, first_index, draft in verify_at:
            self._verify(seq, first_index, draft)

        elapsed = time.monotonic() - started
        self._step_seconds = 0.9 * self._step_seconds + 0.1 * elapsed

    def _add_decode_rows(
        self,
        seq: Sequence,
        draft: list[int],
        sample_at: list[tuple[Sequence, int]],
        verify_at: list[tuple[Sequence, int, list[int]]],
        decoded: list[tuple[Sequence, list[int]]],
    ) -> None:
        """Append a decoding sequence's next token, and its draft after it (every row with
        logits: each one is sampled to check the draft token that follows it)."""
        pos = seq.next_pos
        index = self._batch.add(seq.next_token, pos, seq.slot, True)
        for offset, token in enumerate(draft, start=1):
            self._batch.add(token, pos + offset, seq.slot, True)
        decoded.append((seq, [seq.next_token, *draft]))
        if draft:
            verify_at.append((seq, index, draft))
            self._drafted += len(draft)
            self._spec_steps += 1
        else:
            sample_at.append((seq, index))

    def _verify(self, seq: Sequence, first_index: int, draft: list[int]) -> None:
        """Sample a drafted sequence row by row: keep each draft token its row's sampler
        picks, stop at the first it does not (that sample is the real next token) or when
        the sequence finishes, and drop the KV cells of the draft tokens not kept."""
        slot = seq.slot
        first_pos = seq.next_pos
        rows = len(draft) + 1
        kept_rows = rows
        for row in range(rows):
            if not self._sample(seq, first_index + row):
                kept_rows = row + 1
                break
            if row < len(draft) and seq.next_token == draft[row]:
                continue  # that token is already in the KV cache, at the next row
            kept_rows = row + 1
            break
        accepted = kept_rows - 1
        self._accepted += accepted
        seq.acceptance = updated_acceptance(seq.acceptance, len(draft), accepted)
        self._tuner.observe_verify(seq.draft_match, len(draft), accepted)
        if kept_rows < rows:
            keep = first_pos + kept_rows
            if not self.ctx.trim_sequence(slot, keep):
                raise RuntimeError(f"llama.cpp could not drop rejected draft cells of slot {slot}")
            del self._slot_tokens[slot][keep:]

    def _add_prompt_chunk(
        self,
        seq: Sequence,
        n: int,
        sample_at: list[tuple[Sequence, int]],
        prompt_rows: list[tuple[Sequence, int, int]],
        decoded: list[tuple[Sequence, list[int]]],
    ) -> None:
        """Append the next ``n`` prompt tokens of a prefilling sequence to the batch."""
        batch = self._batch
        start = seq.n_prefilled
        chunk = seq.prompt[start : start + n]
        all_logits = seq.request.params.prompt_logprobs is not None
        first_index = batch.size
        for offset, token in enumerate(chunk):
            pos = start + offset
            batch.add(token, pos, seq.slot, all_logits or pos == len(seq.prompt) - 1)
        seq.n_prefilled += len(chunk)
        decoded.append((seq, chunk))
        if all_logits:
            prompt_rows.append((seq, start, first_index))
        if not seq.prefilling:
            sample_at.append((seq, batch.size - 1))

    def _count_passes(self, batch: Batch, n_sequences: int) -> None:
        """Count the passes llama.cpp will split this batch into (metrics, debug log): more
        than one per contiguous block of slots plus prefill remainders means a regression."""
        passes = self.ctx.passes(batch)
        self._steps += 1
        self._passes += passes
        self._last_passes = passes
        if log.isEnabledFor(logging.DEBUG):
            log.debug("decode step: %d tokens, %d sequences, %d passes, slots %s",
                      batch.size, n_sequences, passes, [seq for seq, _ in batch.runs])

    def _fail_step(self, active: list[Sequence], rc: int) -> None:
        log.error("llama_decode returned %s for %d sequences", rc, len(active))
        with self._lock:
            for seq in active:
                self._forget_slot(seq.slot)
                self._release(seq)
        for seq in active:
            seq.deliver(RuntimeError(f"llama_decode failed with code {rc}"))

    def _collect_prompt_logprobs(self, seq: Sequence, start: int, first_index: int) -> None:
        prompt = seq.prompt
        k = seq.request.params.prompt_logprobs or 0
        if seq.prompt_logprobs is None:
            seq.prompt_logprobs = [None]
        # Row j predicts prompt token j + 1.
        end = min(seq.n_prefilled, len(prompt) - 1)
        for pos in range(start, end):
            row = log_softmax(self.ctx.logits_row(first_index + pos - start))
            seq.prompt_logprobs.append(self._token_logprob(prompt[pos + 1], row, k))

    def _token_logprob(self, token: int, row: np.ndarray, k: int) -> TokenLogprob:
        piece = self.model.special_piece(token)
        entry = TokenLogprob(
            token_id=token,
            token=piece.decode("utf-8", errors="replace"),
            logprob=float(row[token]),
            bytes=list(piece),
        )
        if k > 0:
            top = np.argpartition(row, -k)[-k:]
            top = top[np.argsort(row[top])[::-1]]
            for t in top:
                p = self.model.special_piece(int(t))
                entry.top.append(
                    TokenLogprob(token_id=int(t), token=p.decode("utf-8", errors="replace"),
                                 logprob=float(row[t]), bytes=list(p))
                )
        return entry

    def _sample(self, seq: Sequence, index: int) -> bool:
        """Sample the token at batch row ``index``; deliver it; True if the sequence goes on."""
        params = seq.request.params
        if seq.text is None:
            seq.text = TextStream(params.stop, params.include_stop_str_in_output)
        if seq.max_tokens == 0:  # echo-only scoring request: nothing to generate
            self._finish(seq, "", [], None, "length", None)
            return False
        logprob_entry = None
        if params.logprobs is not None:
            row = log_softmax(self.ctx.logits_row(index))
        token = seq.sampler.sample(self.ctx, index)
        if params.logprobs is not None:
            logprob_entry = self._token_logprob(token, row, params.logprobs)
        seq.n_generated += 1

        if (self.model.is_eog(token) and not params.ignore_eos) or token in params.stop_token_ids:
            stop_reason = token if token in params.stop_token_ids else None
            self._finish(seq, seq.text.finish(), [token], logprob_entry, "stop", stop_reason)
            return False
        delta, stop = seq.text.push(self.model.piece(token))
        if stop is not None:
            self._finish(seq, delta, [token], logprob_entry, "stop", stop)
            return False
        context_full = len(seq.prompt) + seq.n_generated >= self.ctx.n_ctx_seq
        if seq.n_generated >= seq.max_tokens or context_full:
            self._finish(seq, delta + seq.text.finish(), [token], logprob_entry, "length", None)
            return False
        seq.next_token = token
        if seq.drafter is not None:
            seq.drafter.extend([token])
        elif self.max_draft:
            seq.drafter = NgramDrafter(seq.prompt + [token])
        seq.deliver(self._output(seq, delta, [token], logprob_entry, None, None))
        return True

    def _finish(
        self,
        seq: Sequence,
        delta: str,
        tokens: list[int],
        logprob: TokenLogprob | None,
        reason: FinishReason,
        stop_reason: str | int | None,
    ) -> None:
        with self._lock:
            self._release(seq)
        seq.deliver(self._output(seq, delta, tokens, logprob, reason, stop_reason))

    def _output(
        self,
        seq: Sequence,
        delta: str,
        tokens: list[int],
        logprob: TokenLogprob | None,
        reason: FinishReason | None,
        stop_reason: str | int | None,
    ) -> GenerationOutput:
        prompt_logprobs = seq.prompt_logprobs
        seq.prompt_logprobs = None  # sent once, with the first output
        return GenerationOutput(
            request_id=seq.request.request_id,
            text=delta,
            token_ids=tokens,
            logprobs=[logprob] if logprob is not None else ([] if seq.request.params.logprobs is not None else None),
            finish_reason=reason,
            prompt_tokens=len(seq.prompt),
            completion_tokens=seq.n_generated,
            prompt_logprobs=prompt_logprobs,
            stop_reason=stop_reason,
            cached_tokens=seq.n_cached,
        )


def make_deliver(loop: asyncio.AbstractEventLoop, queue: "asyncio.Queue[Delivery]") -> Callable[[Delivery], None]:
    """A thread-safe callback that puts a delivery on an asyncio queue."""

    def deliver(item: Delivery) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # loop closed: the client is gone
            pass

    return deliver
