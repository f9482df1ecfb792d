"""Stop strings and UTF-8 handling on streamed token bytes (unit level, no model)."""

from __future__ import annotations

from ingot.engines.text import StopMatcher, TextStream


def _run(pieces: list[bytes], stops: list[str], include: bool = False) -> tuple[str, str | None]:
    stream = TextStream(stops, include)
    out = []
    for piece in pieces:
        delta, stop = stream.push(piece)
        out.append(delta)
        if stop is not None:
            return "".join(out), stop
    out.append(stream.finish())
    return "".join(out), None


def test_stop_spanning_tokens_never_leaks():
    text, stop = _run([b"Hello ", b"wor", b"ld", b" END", b"ING more"], ["END"])
    assert (text, stop) == ("Hello world ", "END")


def test_partial_stop_prefix_is_released_when_it_does_not_match():
    stream = TextStream(["STOP"])
    assert stream.push(b"a ST") == ("a ", None)  # "ST" held back
    assert stream.push(b"AR") == ("STAR", None)
    assert stream.finish() == ""


def test_include_stop_str_in_output():
    assert _run([b"x", b"yz"], ["y"], include=True) == ("xy", "y")


def test_earliest_of_several_stops_wins():
    assert _run([b"a b c"], ["c", "b"]) == ("a ", "b")


def test_multibyte_character_split_across_tokens():
    euro = "€".encode()  # 3 bytes
    stream = TextStream([])
    assert stream.push(euro[:1]) == ("", None)
    assert stream.push(euro[1:]) == ("€", None)
    assert stream.text == "€"


def test_invalid_bytes_become_replacement_not_crash():
    assert _run([b"\xff", b"ok"], []) == ("\ufffdok", None)


def test_matcher_holds_longest_prefix():
    m = StopMatcher(["abc", "bcd"])
    assert m.feed("xab") == ("x", None)
    assert m.feed("cd") == ("", "abc")
