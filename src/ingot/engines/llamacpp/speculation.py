"""Prompt-lookup (n-gram) speculative decoding: drafts from a sequence's own tokens, and the
draft length that pays off at this step.

Why: RAG answers and edits copy long spans of their prompt, chats repeat names and
phrases. When the last few tokens also occur earlier in the sequence (prompt or output),
the tokens that followed them there are a cheap guess at what comes next. The scheduler
feeds the guess (the *draft*) into the same ``llama_decode`` call as the sequence's real
next token, samples every row in order and keeps the draft up to the first token the
model would not have produced; the rest of the draft's KV cells are removed. One decode
then yields 1 + (accepted drafts) tokens, for the cost of a few more rows in a pass that
the weights are streamed through anyway.

Exactness: a draft token is kept only when the sampler chain, run on that row exactly as
it would run without speculation, picks that very token; the first mismatch is itself
the sampled token. So greedy output is identical to decoding without drafts, and sampled
output too (same sampler state, same random draws per emitted token). For a single
proposed token this "sample, then compare" rule is the standard acceptance rule
(accept with probability p(d), else draw from p without d).

Draft length: drafts cost compute whether or not they are kept. ``DraftTuner`` picks the
length per step that maximises expected tokens per second of decode: each sequence's
acceptance rate is tracked (a moving average, geometric model: the i-th draft token is
kept with probability a^i), and the cost of a step is modelled as ``per_pass * passes +
per_token * tokens``, fitted online from the steps the scheduler times. The linear fit misses kernel cliffs
(8 sequences at 1 thread: 8/16/24/32 rows took 66/110/156/211 ms, 40 rows 569 ms), so
the seconds measured per step shape (passes, rows) override it for shapes timed lately
(``StepCosts``); a shape never timed is priced by the fit, and at most one such shape is
tried per step, so the tuner walks towards a cliff one step at a time. With per-slot KV
(``kv_unified=False``) llama.cpp splits a batch into extra passes when sequences carry
unequal token counts, so the passes of each candidate length come from the same rule the
scheduler's pass metric uses (``binding.ubatch_count``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ingot.engines.llamacpp.binding import ubatch_count

# Before decode steps of different sizes are timed: one llama.cpp pass costs about as much
# as this many extra batch rows. Measured on the 2-core test VM, SmolLM2-135M q8_0 at 1
# thread: 1, 2, 3, 5, 9 rows of one sequence took 19, 32, 47, 60, 100 ms (~9 ms per pass,
# ~10 ms per row: compute-bound even at one row); other CPUs and thread counts are far
# more memory-bound, which the online fit finds.
PRIOR_PASS_ROWS = 1.0
# Acceptance rate per matched n-gram length before any draft of that length was verified
# (longer matches are more often a real copy); then a moving average over all sequences.
PRIOR_ACCEPTANCE_BY_MATCH = {1: 0.35, 2: 0.5, 3: 0.65, 4: 0.75}
PRIOR_ACCEPTANCE = 0.5  # a sequence's own rate before its first verify
ACCEPTANCE_WEIGHT = 0.3  # weight of the latest verify in a sequence's moving average
GLOBAL_ACCEPTANCE_WEIGHT = 0.05  # ... and in the all-sequences average per match length
COST_DECAY = 0.98  # forgetting factor of the online step-cost fit
SHAPE_WEIGHT = 0.2  # weight of the latest timing in a step shape's moving average
SHAPE_STALE_STEPS = 512  # a shape not timed for this many steps is priced by the fit again


class NgramDrafter:
    """The token history of one sequence and, for each n-gram length, where the current
    tail last occurred before: a draft is what followed that earlier occurrence.

    Appending a token is O(n_max) dictionary updates, so indexing a prompt is linear and
    proposing a draft is O(n_max + k)."""

    def __init__(self, tokens: list[int], n_min: int = 2, n_max: int = 4) -> None:
        self.n_min, self.n_max = n_min, n_max
        self.tokens: list[int] = []
        self._last_end: list[dict[tuple[int, ...], int]] = [{} for _ in range(n_max + 1)]
        self._earlier: list[int | None] = [None] * (n_max + 1)  # per n: end of the tail's earlier occurrence
        self.extend(tokens)

    def extend(self, tokens: list[int]) -> None:
        history = self.tokens
        for token in tokens:
            history.append(token)
            end = len(history)
            for n in range(self.n_min, self.n_max + 1):
                if end < n:
                    self._earlier[n] = None
                    continue
                key = tuple(history[end - n:end])
                table = self._last_end[n]
                self._earlier[n] = table.get(key)
                table[key] = end

    def propose(self, k: int) -> tuple[list[int], int]:
        """Up to ``k`` tokens that followed the longest earlier match of the tail, and the
        length of that match (0: none)."""
        if k <= 0:
            return [], 0
        for n in range(self.n_max, self.n_min - 1, -1):
            start = self._earlier[n]
            if start is not None:
                return self.tokens[start:start + k], n
        return [], 0


@dataclass
class DraftCandidate:
    """One decoding sequence as the tuner sees it: its slot, the draft it could send (up
    to the step's largest length), the n-gram length that drafted it, and its own
    acceptance rate so far (None before its first verify)."""

    slot: int
    draft: list[int]
    match: int
    acceptance: float | None


class StepCosts:
    """Seconds per decode step, measured per step shape (passes, rows): a moving average
    per shape, forgotten when the shape has not been timed for ``stale_after`` steps (the
    machine's load changes; a forgotten shape is priced by the fit and timed again)."""

    def __init__(self, stale_after: int = SHAPE_STALE_STEPS) -> None:
        self.stale_after = stale_after
        self._steps = 0
        self._seconds: dict[tuple[int, int], tuple[float, int]] = {}  # shape -> (average, step last timed)

    def observe(self, passes: int, rows: int, seconds: float) -> None:
        self._steps += 1
        shape = (passes, rows)
        known = self._seconds.get(shape)
        average = seconds if known is None else (1 - SHAPE_WEIGHT) * known[0] + SHAPE_WEIGHT * seconds
        self._seconds[shape] = (average, self._steps)
        if len(self._seconds) > 4 * self.stale_after:  # bound the table: drop what is stale
            self._seconds = {k: v for k, v in self._seconds.items() if not self._stale(v[1])}

    def seconds(self, passes: int, rows: int) -> float | None:
        """The shape's measured seconds, or None when it was not timed lately."""
        known = self._seconds.get((passes, rows))
        if known is None or self._stale(known[1]):
            return None
        return known[0]

    def _stale(self, last_timed: int) -> bool:
        return self._steps - last_timed > self.stale_after


class DraftTuner:
    """Chooses a step's draft length from expected kept tokens and a cost model: measured
    seconds per step shape where timed lately, else a linear fit over all timed steps."""

    def __init__(self, max_draft: int, n_ubatch: int, sequential: bool) -> None:
        self.max_draft = max_draft
        self.n_ubatch = n_ubatch
        self.sequential = sequential
        self.shapes = StepCosts()
        # Decayed sums for least squares of seconds ~ per_pass * passes + per_row * rows.
        self._spp = self._spr = self._srr = self._sps = self._srs = 0.0
        self.acceptance_by_match: dict[int, float] = dict(PRIOR_ACCEPTANCE_BY_MATCH)

    # ---- acceptance ------------------------------------------------------------------

    def estimate(self, candidate: DraftCandidate) -> float:
        """A candidate's chance to keep each draft token: the all-sequences rate for its
        match length, averaged with its own rate once it has one."""
        shared = self.acceptance_by_match.get(candidate.match, PRIOR_ACCEPTANCE)
        return shared if candidate.acceptance is None else (shared + candidate.acceptance) / 2

    def observe_verify(self, match: int, drafted: int, kept: int) -> None:
        if drafted > 0:
            w = GLOBAL_ACCEPTANCE_WEIGHT
            rate = _per_token_rate(drafted, kept)
            previous = self.acceptance_by_match.get(match, PRIOR_ACCEPTANCE)
            self.acceptance_by_match[match] = (1 - w) * previous + w * rate

    # ---- cost model ------------------------------------------------------------------

    def observe_step(self, passes: int, rows: int, seconds: float) -> None:
        self.shapes.observe(passes, rows, seconds)
        d = COST_DECAY
        self._spp = d * self._spp + passes * passes
        self._spr = d * self._spr + passes * rows
        self._srr = d * self._srr + rows * rows
        self._sps = d * self._sps + passes * seconds
        self._srs = d * self._srs + rows * seconds

    def linear_fit(self) -> tuple[float, float] | None:
        """(seconds per pass, seconds per row) fitted over the timed steps. Until steps of
        different shapes give a fit with both costs positive (or when a cliff bends it
        negative), one scale through the origin over rows with the prior pass cost; None
        before any step was timed."""
        det = self._spp * self._srr - self._spr * self._spr
        if det > 1e-9 * max(1.0, self._spp * self._srr):
            per_pass = (self._sps * self._srr - self._srs * self._spr) / det
            per_row = (self._srs * self._spp - self._sps * self._spr) / det
            if per_pass > 0 and per_row > 0:
                return per_pass, per_row
        prior = PRIOR_PASS_ROWS  # seconds ~ scale * (prior * passes + rows), least squares
        units_squared = prior * prior * self._spp + 2 * prior * self._spr + self._srr
        if units_squared <= 0:
            return None
        scale = (prior * self._sps + self._srs) / units_squared
        return (prior * scale, scale) if scale > 0 else None

    def pass_cost_in_rows(self) -> float:
        """What one pass costs in batch rows: the fitted ratio, or the prior until the fit
        has seen steps of different shapes."""
        fit = self.linear_fit()
        return PRIOR_PASS_ROWS if fit is None else min(fit[0] / fit[1], 64.0)

    # ---- choice ----------------------------------------------------------------------

    def choose(self, candidates: list[DraftCandidate], other_runs: list[tuple[int, int]]) -> int:
        """The draft length (0 = no speculation) for this step's decoding sequences.

        ``other_runs`` are the step's prompt chunks as (slot, tokens): they share the batch,
        so they count in its passes and rows (the cost), not in the kept tokens."""
        if not candidates or self.max_draft <= 0 or not any(c.draft for c in candidates):
            return 0
        fit = self.linear_fit()
        longest = min(self.max_draft, max(len(c.draft) for c in candidates))
        best_k, best_rate, previous = 0, 0.0, 0.0
        acceptance = [self.estimate(c) for c in candidates]
        for k in range(0, longest + 1):
            kept = sum(_expected_kept(a, min(k, len(c.draft))) for c, a in zip(candidates, acceptance))
            runs = [(c.slot, 1 + min(k, len(c.draft))) for c in candidates] + other_runs
            runs.sort()
            passes = ubatch_count([list(r) for r in runs], self.n_ubatch, self.sequential)
            rows = sum(n for _, n in runs)
            cost, timed = self._cost(fit, passes, rows)
            rate = (len(candidates) + kept) / cost
            if k >= 2 and rate <= previous:
                # From k = 1 on the passes stay put, kept tokens grow ever more slowly and
                # rows linearly: the rate has one peak, so stop past it (this runs every step).
                break
            if rate > best_rate * 1.0001:
                best_k, best_rate = k, rate
            previous = rate
            if not timed and k > 0:
                break  # one untimed shape per step: longer drafts wait until it is timed
        return best_k

    def _cost(self, fit: tuple[float, float] | None, passes: int, rows: int) -> tuple[float, bool]:
        """A step shape's cost and whether it was measured: its own timing when it has one
        (seconds), else the linear fit (seconds), else rows with the prior pass cost (no
        timings yet: every shape is priced in rows alike)."""
        if fit is None:
            return PRIOR_PASS_ROWS * passes + rows, True
        measured = self.shapes.seconds(passes, rows)
        if measured is not None:
            return measured, True
        return fit[0] * passes + fit[1] * rows, False


def _expected_kept(acceptance: float, length: int) -> float:
    """Expected kept draft tokens when each is kept with probability ``acceptance`` given
    the ones before it were: a + a^2 + ... + a^length."""
    total, term = 0.0, 1.0
    for _ in range(length):
        term *= acceptance
        total += term
    return total


def _per_token_rate(drafted: int, kept: int) -> float:
    """The per-token keep rate one verify shows: kept / trials, the trials ending at the
    first rejected token."""
    trials = kept + (1 if kept < drafted else 0)
    return kept / trials


def updated_acceptance(previous: float | None, drafted: int, kept: int) -> float | None:
    """A sequence's acceptance rate after a verify that kept ``kept`` of ``drafted``,
    folded into its moving average (started at the prior)."""
    if drafted <= 0:
        return previous
    start = PRIOR_ACCEPTANCE if previous is None else previous
    return (1 - ACCEPTANCE_WEIGHT) * start + ACCEPTANCE_WEIGHT * _per_token_rate(drafted, kept)
