"""Turning a stream of token bytes into clean text deltas, engine-independent.

Two problems every streaming server meets: a multi-byte UTF-8 character split across
tokens must not be emitted half-way, and a stop string that spans several tokens must
never leak to the client. ``TextStream`` holds back exactly the bytes and characters
that might still turn into either.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field


@dataclass
class StopMatcher:
    """Finds the earliest stop string in streamed text, holding back possible prefixes."""

    stops: list[str]
    include_stop: bool = False
    _held: str = field(default="", init=False)

    def feed(self, text: str) -> tuple[str, str | None]:
        """Return (text safe to emit now, the stop string matched or None)."""
        buffer = self._held + text
        self._held = ""
        if not self.stops:
            return buffer, None
        first: tuple[int, str] | None = None
        for stop in self.stops:
            at = buffer.find(stop)
            if at >= 0 and (first is None or at < first[0]):
                first = (at, stop)
        if first is not None:
            at, stop = first
            end = at + len(stop) if self.include_stop else at
            return buffer[:end], stop
        hold = self._longest_stop_prefix_suffix(buffer)
        if hold:
            self._held = buffer[-hold:]
            return buffer[:-hold], None
        return buffer, None

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held

    def _longest_stop_prefix_suffix(self, buffer: str) -> int:
        best = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(buffer)), best, -1):
                if buffer.endswith(stop[:n]):
                    best = n
                    break
        return best


class TextStream:
    """Bytes of generated tokens in, safe text deltas out."""

    def __init__(self, stops: list[str], include_stop: bool = False) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = StopMatcher([s for s in stops if s], include_stop)
        self.text = ""  # everything emitted so far

    def push(self, piece: bytes) -> tuple[str, str | None]:
        delta, stop = self._stops.feed(self._decoder.decode(piece))
        self.text += delta
        return delta, stop

    def finish(self) -> str:
        """Release what was held back (the sequence ended for another reason)."""
        delta = self._stops.feed(self._decoder.decode(b"", final=True))[0] + self._stops.flush()
        self.text += delta
        return delta
