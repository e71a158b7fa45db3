"""Pure parts of the IRC client: framing, decoding, splitting, throttle, backoff, dedup."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubbub.irc import history, lines, nicks, sasl
from hubbub.irc.backoff import Backoff
from hubbub.irc.config import Sasl, SaslMechanism
from hubbub.irc.errors import LineTooLong, ProtocolError
from hubbub.irc.events import Message, MessageKind
from hubbub.irc.throttle import TokenBucket

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_buffer_splits_crlf_lf_and_keeps_partial_lines() -> None:
    buf = lines.LineBuffer()
    assert buf.feed(b"PING :a\r\nPI") == [b"PING :a"]
    assert buf.pending == 2
    assert buf.feed(b"NG :b\n\r\n\nX") == [b"PING :b"]
    assert buf.feed(b"\r\n") == [b"X"]


def test_buffer_refuses_an_endless_line_and_can_go_on() -> None:
    buf = lines.LineBuffer(max_line=100)
    with pytest.raises(LineTooLong, match="without end of line"):
        buf.feed(b"x" * 101)
    assert buf.pending == 0
    with pytest.raises(LineTooLong, match="line of 150 bytes"):
        buf.feed(b"y" * 150 + b"\r\nPING\r\n")
    assert buf.feed(b"PONG\r\n") == [b"PING", b"PONG"]  # what followed is kept


def test_decode_falls_back_to_latin1_and_keeps_every_byte() -> None:
    assert lines.decode("héllo".encode()) == "héllo"
    raw = b"caf\xe9 \xff"
    assert lines.decode(raw) == "café ÿ"
    assert lines.decode(raw).encode("latin-1") == raw


def test_parse_refuses_garbage() -> None:
    for raw in (b"   ", b":onlysource", b"@tags-only", b":src \x01\x02 x"):
        with pytest.raises(ProtocolError):
            lines.parse(raw)
    line = lines.parse(b"@time=2026-01-01T00:00:00.000Z :n!u@h PRIVMSG #c :caf\xe9")
    assert line.params == ["#c", "café"]
    assert line.tags == {"time": "2026-01-01T00:00:00.000Z"}


def test_encode_refuses_newlines() -> None:
    from irctokens.line import build

    assert lines.encode(build("PRIVMSG", ["#c", "hi there"])) == b"PRIVMSG #c :hi there\r\n"
    with pytest.raises(ValueError):
        lines.encode(build("PRIVMSG", ["#c", "a\r\nQUIT"]))


def test_text_budget_counts_the_relayed_line() -> None:
    prefix = "nick!user@host"
    budget = lines.text_budget(prefix, "PRIVMSG", "#chan")
    relayed = f":{prefix} PRIVMSG #chan :".encode() + b"x" * budget + b"\r\n"
    assert len(relayed) == 512


def test_split_never_cuts_a_utf8_sequence_and_joins_back() -> None:
    text = "é" * 300 + "🙂" * 100
    parts = lines.split_text(text, 101)
    assert "".join(parts) == text
    for part in parts:
        assert len(part.encode()) <= 101
        part.encode().decode("utf-8")  # every part is valid UTF-8 on its own
    assert max(len(p.encode()) for p in parts) >= 97


def test_split_prefers_word_boundaries() -> None:
    text = "alpha beta gamma delta epsilon"
    assert lines.split_text(text, 12) == ["alpha beta ", "gamma delta ", "epsilon"]
    assert lines.split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    assert lines.split_text("one\r\ntwo\n\nthree", 100) == ["one", "two", "three"]
    with pytest.raises(ValueError):
        lines.split_text("abc", 2)


def test_token_bucket_schedule() -> None:
    bucket = TokenBucket(burst=5, interval=0.5)
    assert [bucket.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.delay(0.0) == pytest.approx(0.5)
    assert bucket.delay(0.25) == pytest.approx(0.25)
    assert bucket.take(0.5) is True
    assert bucket.take(0.5) is False
    assert bucket.delay(10.0) == 0.0
    assert [bucket.take(10.0) for _ in range(6)] == [True] * 5 + [False]  # refill caps at burst


def test_backoff_grows_caps_jitters_and_resets() -> None:
    b = Backoff(base=2, cap=60, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(10)]
    ceilings = [min(60, 2 * 2**n) for n in range(10)]
    for d, c in zip(delays, ceilings, strict=True):
        assert c / 2 <= d <= c
    assert len(set(delays)) == len(delays)
    b.connected_for(5)
    assert b.attempt == 10
    b.connected_for(60)
    assert b.attempt == 0
    assert 1 <= b.next_delay() <= 2


def _msg(text: str, msgid: str | None = None, at: float = 0) -> Message:
    return Message("#c", "#c", "bob", text, MessageKind.PRIVMSG, T0 + timedelta(seconds=at), msgid)


def test_dedup_keys_by_msgid_or_content() -> None:
    seen = history.SeenSet(keep=100)
    seen.add("#C", _msg("one", "id1", 1))
    seen.add("#c", _msg("two", None, 2))
    replay = (
        _msg("one", "id1", 1),  # same msgid
        _msg("two", "id2", 2),  # stored without msgid, replayed with one: same content
        _msg("two", "id3", 3),  # same text a second later: new
        _msg("three", "id4", 4),
    )
    fresh = seen.filter_new("#c", replay)
    assert [m.msgid for m in fresh] == ["id3", "id4"]
    assert seen.filter_new("#c", replay) == []
    assert seen.anchor("#c") == history.Anchor("id4", T0 + timedelta(seconds=4))


def test_dedup_set_is_bounded() -> None:
    seen = history.SeenSet(keep=10)
    for i in range(100):
        seen.add("#c", _msg(str(i), f"id{i}", i))
    assert not seen.seen("#c", _msg("0", "id0", 0))
    assert seen.seen("#c", _msg("99", "id99", 99))


def test_chathistory_params() -> None:
    assert history.chathistory_params("#c", None, 50) == ["LATEST", "#c", "*", "50"]
    assert history.chathistory_params("#c", history.Anchor("abc", T0), 50) == [
        "AFTER",
        "#c",
        "msgid=abc",
        "50",
    ]
    anchor = history.Anchor(None, T0 + timedelta(microseconds=123456))
    assert history.chathistory_params("#c", anchor, 5)[2] == "timestamp=2026-11-23T10:00:00.123Z"


def test_sasl_chunks() -> None:
    assert sasl.chunks(b"") == ["+"]
    plain = sasl.payload(Sasl(SaslMechanism.PLAIN, "jilles", "sesame"))
    assert sasl.chunks(plain) == ["AGppbGxlcwBzZXNhbWU="]
    exact = sasl.chunks(b"x" * 300)  # 400 base64 characters
    assert [len(c) for c in exact] == [400, 1] and exact[1] == "+"
    assert [len(c) for c in sasl.chunks(b"x" * 400)] == [400, 136]
    assert sasl.offered("PLAIN,EXTERNAL", SaslMechanism.EXTERNAL)
    assert not sasl.offered("PLAIN", SaslMechanism.EXTERNAL)
    assert sasl.offered("", SaslMechanism.EXTERNAL)


def test_nick_candidates() -> None:
    got = list(nicks.candidates("hubbub", "hub", nicklen=8))
    assert got[:7] == ["hubbub", "hub", "hubbub_", "hubbub__", "hubbu___", "hubbub1", "hubbub2"]
    assert all(len(n) <= 8 for n in got)
    assert len(got) == len({n.lower() for n in got}) <= nicks.MAX_ATTEMPTS


@given(
    st.text(
        st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=2000
    ),
    st.integers(4, 600),
)
@settings(max_examples=200, deadline=None)
def test_split_property(text: str, budget: int) -> None:
    parts = lines.split_text(text, budget)
    assert "".join(parts) == text
    for part in parts:
        assert part and len(part.encode("utf-8")) <= budget


def test_split_replaces_lone_surrogates() -> None:
    assert lines.split_text("a\ud800b", 10) == ["a\ufffdb"]


def test_secrets_stay_out_of_repr() -> None:
    from hubbub.irc.config import ClientConfig

    config = ClientConfig(
        "n", password="server-secret", sasl=Sasl(SaslMechanism.PLAIN, "u", "sasl-secret")
    )
    assert "secret" not in repr(config)
