"""Byte-level tests of the sans-I/O IRC client: exact lines in, exact lines out."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from irchelp import FIXED_NOW, Harness, make, registered
from irctokens.line import tokenise

from hubbub.irc.client import State
from hubbub.irc.config import Sasl, SaslMechanism
from hubbub.irc.errors import NotConnected
from hubbub.irc.events import (
    Batch,
    CapsChanged,
    CtcpReply,
    CtcpRequest,
    Disconnected,
    Error,
    History,
    Join,
    Kick,
    LabeledResponse,
    Member,
    Message,
    MessageKind,
    Mode,
    Names,
    Nick,
    NickInUse,
    Numeric,
    Part,
    Quit,
    Registered,
    SaslResult,
    Topic,
    UserUpdate,
)

ALL_CAPS = (
    "server-time message-tags echo-message batch labeled-response away-notify "
    "account-notify extended-join multi-prefix userhost-in-names chghost setname "
    "draft/chathistory cap-notify"
)


# -- registration -------------------------------------------------------------


def test_registration_lines() -> None:
    h = make("me", username="u", realname="Real Name", password="secret")
    h.client.connect()
    assert h.sent() == ["CAP LS 302", "PASS secret", "NICK me", "USER u 0 * :Real Name"]


def test_cap_ls_multiline_requests_what_is_offered_and_wanted() -> None:
    h = make()
    h.client.connect()
    h.sent()
    h.feed(":srv CAP * LS * :multi-prefix sasl=PLAIN unknown-cap")
    assert h.sent() == []  # waits for the last LS line
    h.feed(":srv CAP * LS :server-time batch draft/chathistory message-tags=x")
    assert h.sent() == ["CAP REQ :batch draft/chathistory message-tags multi-prefix server-time"]
    h.feed(":srv CAP me ACK :batch draft/chathistory message-tags multi-prefix server-time")
    assert h.sent() == ["CAP END"]
    h.feed(":srv 001 me :Welcome", ":srv 376 me :End of MOTD")
    assert h.client.state is State.REGISTERED
    reg = [e for e in h.events if isinstance(e, Registered)]
    assert reg == [
        Registered(
            "me",
            frozenset(
                {"batch", "draft/chathistory", "message-tags", "multi-prefix", "server-time"}
            ),
        )
    ]


def test_cap_nak_still_ends_negotiation() -> None:
    h = make()
    h.client.connect()
    h.sent()
    h.feed(":srv CAP * LS :server-time")
    assert h.sent() == ["CAP REQ server-time"]
    h.feed(":srv CAP * NAK :server-time")
    assert h.sent() == ["CAP END"]
    assert h.client.caps == set()


def test_server_without_cap_registers() -> None:
    h = make()
    h.client.connect()
    h.sent()
    h.feed(":srv 421 me CAP :Unknown command", ":srv 001 me :Welcome", ":srv 422 me :No MOTD")
    assert h.client.registered
    assert isinstance(h.events[-1], Registered)


def test_cap_new_and_del() -> None:
    h = registered(caps="server-time")
    h.feed(":srv CAP me NEW :away-notify foo")
    assert h.sent() == ["CAP REQ away-notify"]
    h.feed(":srv CAP me ACK :away-notify")
    assert h.sent() == []  # no CAP END after registration
    assert h.events[-1] == CapsChanged(
        frozenset({"server-time", "away-notify"}), frozenset({"away-notify"})
    )
    h.feed(":srv CAP me DEL :server-time")
    assert h.client.caps == {"away-notify"}
    assert h.events[-1] == CapsChanged(
        frozenset({"away-notify"}), removed=frozenset({"server-time"})
    )


# -- SASL ---------------------------------------------------------------------


def _to_sasl(mechanism: SaslMechanism, required: bool = False, offer: str = "sasl") -> Harness:
    h = make(sasl=Sasl(mechanism, "acct", "pw", required))
    h.client.connect()
    h.sent()
    h.feed(f":srv CAP * LS :{offer}")
    return h


def test_sasl_plain_success() -> None:
    h = _to_sasl(SaslMechanism.PLAIN)
    assert h.sent() == ["CAP REQ sasl"]
    h.feed(":srv CAP * ACK sasl")
    assert h.sent() == ["AUTHENTICATE PLAIN"]
    h.feed("AUTHENTICATE +")
    expected = base64.b64encode(b"\0acct\0pw").decode()
    assert h.sent() == [f"AUTHENTICATE {expected}"]
    h.feed(
        ":srv 900 me me!u@h acct :You are now logged in as acct",
        ":srv 903 me :SASL authentication successful",
    )
    assert h.sent() == ["CAP END"]
    assert SaslResult(True, "PLAIN", "acct", "SASL authentication successful") in h.events


def test_sasl_external_sends_empty_response() -> None:
    h = _to_sasl(SaslMechanism.EXTERNAL, offer="sasl=PLAIN,EXTERNAL")
    h.sent()
    h.feed(":srv CAP * ACK :sasl")
    assert h.sent() == ["AUTHENTICATE EXTERNAL"]
    h.feed("AUTHENTICATE +")
    assert h.sent() == ["AUTHENTICATE +"]


@pytest.mark.parametrize("code", ["904", "905", "906", "902"])
def test_sasl_failure_optional_still_registers(code: str) -> None:
    h = _to_sasl(SaslMechanism.PLAIN)
    h.sent()
    h.feed(":srv CAP * ACK :sasl", "AUTHENTICATE +")
    h.sent()
    h.feed(
        ":srv 908 me PLAIN,EXTERNAL :are available SASL mechanisms", f":srv {code} me :SASL failed"
    )
    assert h.sent() == ["CAP END"]
    assert SaslResult(False, "PLAIN", None, "SASL failed") in h.events
    h.feed(":srv 001 me :hi", ":srv 422 me :none")
    assert h.client.registered


def test_sasl_failure_required_aborts_without_retry() -> None:
    h = _to_sasl(SaslMechanism.PLAIN, required=True)
    h.sent()
    h.feed(":srv CAP * ACK :sasl", "AUTHENTICATE +")
    h.sent()
    h.feed(":srv 904 me :SASL authentication failed")
    assert h.sent() == ["QUIT :SASL failed (904: SASL authentication failed)"]
    assert h.events[-1] == Disconnected(
        "SASL failed (904: SASL authentication failed)", retry=False
    )
    assert h.client.state is State.CLOSED


def test_sasl_mechanism_not_offered() -> None:
    h = _to_sasl(SaslMechanism.EXTERNAL, offer="sasl=PLAIN server-time")
    assert h.sent() == ["CAP REQ server-time"]
    h.feed(":srv CAP * ACK :server-time")
    assert h.sent() == ["CAP END"]
    assert SaslResult(False, "EXTERNAL", message="SASL not offered") in h.events


def test_sasl_required_but_server_has_no_cap() -> None:
    h = make(sasl=Sasl(SaslMechanism.PLAIN, "a", "b", required=True))
    h.client.connect()
    h.sent()
    h.feed(":srv 001 me :Welcome")
    assert h.sent()[-1].startswith("QUIT :SASL required")
    assert h.events[-1] == Disconnected(
        "SASL required but the server does not offer it", retry=False
    )


# -- nicks --------------------------------------------------------------------


def test_nick_in_use_tries_alternatives() -> None:
    h = make("wanted", alt_nick="other")
    h.client.connect()
    h.sent()
    h.feed(":srv 433 * wanted :Nickname is already in use")
    assert h.sent() == ["NICK other"]
    h.feed(":srv 432 * other :Erroneous nickname")
    assert h.sent() == ["NICK wanted_"]
    h.feed(":srv 437 * wanted_ :Nick/channel is temporarily unavailable")
    assert h.sent() == ["NICK wanted__"]
    assert h.events[-1] == NickInUse("wanted_", "437", "wanted__")


def test_nick_gives_up_after_bound() -> None:
    h = make("n")
    h.client.connect()
    h.sent()
    for _ in range(30):
        h.feed(":srv 433 * x :in use")
        if h.client.closed:
            break
    assert h.client.closed
    assert isinstance(h.events[-2], Disconnected) or isinstance(h.events[-1], NickInUse)
    assert any(isinstance(e, Disconnected) and not e.retry for e in h.events)


def _registered_as_alt(isupport: str = "") -> Harness:
    h = make("wanted")
    h.client.connect()
    h.sent()
    h.feed(":srv 433 * wanted :in use")
    h.sent()
    h.feed(":srv 001 wanted_ :Welcome")
    if isupport:
        h.feed(f":srv 005 wanted_ {isupport} :are supported")
    h.feed(":srv 422 wanted_ :No MOTD")
    return h


def test_regain_with_monitor() -> None:
    h = _registered_as_alt("MONITOR=100")
    assert h.client.nick == "wanted_"
    assert h.sent() == ["MONITOR + wanted"]
    h.feed(":srv 731 wanted_ :wanted")
    assert h.sent() == ["NICK wanted"]
    h.feed(":wanted_!u@h NICK :wanted")
    assert h.sent() == ["MONITOR - wanted"]
    assert h.events[-1] == Nick("wanted_", "wanted", FIXED_NOW, (), True)
    assert h.client.nick == "wanted"


def test_regain_with_ison_on_a_schedule() -> None:
    h = _registered_as_alt()
    assert h.sent() == []
    h.clock.advance(29)
    h.client.tick()
    assert h.sent() == []
    h.clock.advance(2)
    h.client.tick()
    assert h.sent() == ["ISON wanted"]
    h.feed(":srv 303 wanted_ :wanted")
    assert h.sent() == []  # still taken
    h.client.tick()
    assert h.sent() == []  # bounded: not before the next interval
    h.clock.advance(31)
    h.client.tick()
    assert h.sent() == ["ISON wanted"]
    h.feed(":srv 303 wanted_ :")
    assert h.sent() == ["NICK wanted"]


def test_regain_when_the_holder_quits_or_renames() -> None:
    h = _registered_as_alt()
    h.feed(":wanted!u@h QUIT :bye")
    assert h.sent() == ["NICK wanted"]
    h.feed(":srv 433 wanted_ wanted :in use")
    assert h.sent() == []  # after registration a refusal only reports
    assert h.events[-1] == NickInUse("wanted", "433", None)
    h.feed(":wanted!u@h NICK :someone")
    assert h.sent() == ["NICK wanted"]


# -- keep-alive, errors, garbage ----------------------------------------------


def test_ping_pong_skips_the_throttle() -> None:
    h = registered()
    for i in range(10):
        h.client.privmsg("#c", f"m{i}")
    assert len(h.sent()) == 5
    h.feed("PING :irc.example")
    assert h.sent() == ["PONG irc.example"]


def test_keepalive_ping_and_timeout() -> None:
    h = registered()
    h.clock.advance(91)
    h.client.tick()
    assert h.sent() == ["PING hubbub"]
    h.client.tick()
    assert h.sent() == []
    h.clock.advance(150)
    h.tick()
    assert h.client.closed
    assert h.events[-1] == Disconnected("ping timeout (241 s without data)", True)


def test_registration_timeout() -> None:
    h = make()
    h.client.connect()
    h.clock.advance(61)
    h.tick()
    assert h.events[-1] == Disconnected("registration timed out", True)


def test_error_line_closes() -> None:
    h = registered()
    h.feed("ERROR :Closing link: (me@host) [K-Lined]")
    assert h.events[-1] == Disconnected("server error: Closing link: (me@host) [K-Lined]", True)
    with pytest.raises(NotConnected):
        h.client.privmsg("#c", "hi")


def test_garbage_lines_are_reported_and_skipped() -> None:
    h = registered()
    h.feed(
        b"\x00\x01\x02\r\n",
        b":onlysource\r\n",
        b":a!b@c PRIVMSG\r\n",
        b":srv 332 me\r\n",
        b"PING :x\r\n",
    )
    errors = [e for e in h.events if isinstance(e, Error)]
    assert len(errors) == 4
    assert not any(e.fatal for e in errors)
    assert h.sent() == ["PONG x"]
    assert h.client.registered


def test_endless_line_is_a_clear_error() -> None:
    h = registered()
    h.client.receive_data(b"x" * 8000)
    h.client.receive_data(b"x" * 1000)
    events = h.client.events_received()
    assert events[0] == Error(
        "protocol error: 9000 bytes without end of line (limit 8703)", fatal=True
    )
    assert isinstance(events[1], Disconnected) and events[1].retry
    h.client.receive_data(b"PING :x\r\n")  # closed: ignored, no crash
    assert h.client.events_received() == []


def test_end_of_stream() -> None:
    h = registered()
    h.client.receive_data(b"")
    assert h.client.events_received() == [Disconnected("server closed the connection", True)]


# -- messages -----------------------------------------------------------------


def test_incoming_privmsg_with_server_time_and_msgid() -> None:
    h = registered(caps="server-time message-tags")
    h.feed("@time=2026-01-02T03:04:05.678Z;msgid=abc;account=bob :bob!b@host PRIVMSG #chan :hello")
    (msg,) = h.events
    assert msg == Message(
        target="#chan",
        conversation="#chan",
        nick="bob",
        text="hello",
        kind=MessageKind.PRIVMSG,
        time=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        msgid="abc",
        is_channel=True,
        userhost="b@host",
        account="bob",
    )
    assert msg.tags["msgid"] == "abc"


def test_private_message_conversation_is_the_other_party() -> None:
    h = registered()
    h.feed(
        ":bob!b@h PRIVMSG me :psst", ":srv NOTICE me :server says hi", "NOTICE * :*** Looking up"
    )
    a, b, c = h.events
    assert isinstance(a, Message) and a.conversation == "bob" and not a.is_channel
    assert isinstance(b, Message) and b.kind is MessageKind.NOTICE and b.conversation == ""
    assert isinstance(c, Message) and c.conversation == ""


def test_non_utf8_is_decoded_with_latin1() -> None:
    h = registered()
    h.feed(b":bob!b@h PRIVMSG #c :caf\xe9 cr\xe8me\r\n")
    (msg,) = h.events
    assert isinstance(msg, Message) and msg.text == "café crème"


def test_ctcp_action_both_ways() -> None:
    h = registered()
    h.feed(":bob!b@h PRIVMSG #c :\x01ACTION waves\x01")
    assert isinstance(h.events[0], Message)
    assert (h.events[0].kind, h.events[0].text) == (MessageKind.ACTION, "waves")
    h.client.action("#c", "waves back")
    assert h.sent() == ["PRIVMSG #c :\x01ACTION waves back\x01"]
    own = h.client.events_received()[0]
    assert (
        isinstance(own, Message) and own.own and own.kind is MessageKind.ACTION and not own.is_echo
    )


def test_ctcp_replies_rate_limited() -> None:
    h = registered(version="Hubbub 1.0")
    h.feed(":bob!b@h PRIVMSG me :\x01VERSION\x01")
    assert h.sent() == ["NOTICE bob :\x01VERSION Hubbub 1.0\x01"]
    h.feed(":bob!b@h PRIVMSG me :\x01PING 12345\x01")
    assert h.sent() == ["NOTICE bob :\x01PING 12345\x01"]
    h.feed(":bob!b@h PRIVMSG me :\x01TIME\x01")
    assert h.sent() == ["NOTICE bob :\x01TIME Mon Nov 23 10:00:00 2026 UTC\x01"]
    h.feed(":bob!b@h PRIVMSG me :\x01VERSION\x01")
    assert h.sent() == []  # fourth within 10 s: not answered
    assert h.events[-1] == CtcpRequest("bob", "me", "VERSION", "", FIXED_NOW, False)
    h.clock.advance(10)
    h.feed(":bob!b@h PRIVMSG me :\x01VERSION\x01")
    assert len(h.sent()) == 1
    h.feed(":bob!b@h NOTICE me :\x01VERSION irssi\x01")
    assert h.events[-1] == CtcpReply("bob", "VERSION", "irssi", FIXED_NOW)


def test_echo_message_is_not_synthesised() -> None:
    h = registered(caps="echo-message")
    h.client.privmsg("bob", "hi")
    assert h.sent() == ["PRIVMSG bob hi"]
    assert h.client.events_received() == []
    h.feed(":me!u@h PRIVMSG bob :hi")
    (echo,) = h.events
    assert isinstance(echo, Message) and echo.is_echo and echo.own and echo.conversation == "bob"


def test_long_message_split_to_fit_the_relayed_line() -> None:
    h = registered()
    h.feed(":srv 396 me some.host :is now your displayed host")
    h.feed(":me!~user@some.host JOIN #c")
    text = ("word " * 150) + "é" * 200
    h.client.privmsg("#c", text)
    out = h.drain()
    assert len(out) > 1
    prefix = h.client.own_prefix()
    assert prefix == "me!~user@some.host"
    for line in out:
        assert len(f":{prefix} {line}\r\n".encode()) <= 512
    texts = [tokenise(line).params[1] for line in out]
    assert "".join(texts) == text
    assert texts[0].endswith("word ")


def test_tags_on_outgoing_only_with_message_tags() -> None:
    h = registered()
    h.client.privmsg("#c", "x", tags={"+draft/reply": "abc"})
    assert h.sent() == ["PRIVMSG #c x"]
    h = registered(caps="message-tags")
    h.client.privmsg("#c", "x", tags={"+draft/reply": "abc"})
    assert h.sent() == ["@+draft/reply=abc PRIVMSG #c x"]


def test_throttle_burst_then_one_per_interval() -> None:
    h = registered(throttle_burst=5, throttle_interval=1.0)
    for i in range(8):
        h.client.privmsg("#c", f"m{i}")
    assert h.sent() == [f"PRIVMSG #c m{i}" for i in range(5)]
    assert h.client.send_delay() == pytest.approx(1.0)
    h.clock.advance(0.5)
    assert h.sent() == []
    h.clock.advance(0.5)
    assert h.sent() == ["PRIVMSG #c m5"]
    h.clock.advance(2)
    assert h.sent() == ["PRIVMSG #c m6", "PRIVMSG #c m7"]
    assert h.client.send_delay() is None


def test_bad_targets_and_raw_lines() -> None:
    h = registered()
    with pytest.raises(ValueError):
        h.client.privmsg("a b", "x")
    with pytest.raises(ValueError):
        h.client.send_raw("PRIVMSG #c :a\r\nQUIT")
    h.client.send_raw("WHOIS bob")
    assert h.sent() == ["WHOIS bob"]


# -- channels -----------------------------------------------------------------


def test_names_of_a_channel_not_joined_is_a_reply() -> None:
    h = registered()
    h.feed(":srv 353 me = #other :@bob carol", ":srv 366 me #other :End of /NAMES list.")
    assert h.events == [
        Numeric("353", ("me", "=", "#other", "@bob carol"), FIXED_NOW),
        Numeric("366", ("me", "#other", "End of /NAMES list."), FIXED_NOW),
    ]


def test_channel_events_and_names_with_prefixes() -> None:
    h = registered(caps="multi-prefix extended-join", isupport="PREFIX=(qov)~@+")
    h.client.join(["#a", "#b"])
    assert h.sent() == ["JOIN #a,#b"]
    h.feed(
        ":me!u@h JOIN #a * :Me",
        ":srv 332 me #a :the topic",
        ":srv 353 me = #a :~@me +bob @+carol",
        ":srv 366 me #a :End of /NAMES list.",
        ":dave!d@h JOIN #a dave :Dave D",
        ":bob!b@h NICK robert",
        ":carol!c@h MODE #a +o robert",
        ":robert!b@h TOPIC #a :new topic",
        ":carol!c@h KICK #a dave :out",
        ":robert!b@h PART #a :later",
        ":carol!c@h QUIT :gone",
    )
    t = FIXED_NOW
    assert h.events == [
        Join("#a", "me", t, "u@h", None, "Me", True),
        Topic("#a", "the topic", t),
        Names("#a", (Member("bob", "+"), Member("carol", "@+"), Member("me", "~@"))),
        Join("#a", "dave", t, "d@h", "dave", "Dave D"),
        Nick("bob", "robert", t, ("#a",)),
        Mode("#a", ("+o", "robert"), t, "carol"),
        Topic("#a", "new topic", t, "robert", True),
        Kick("#a", "dave", "carol", "out", t),
        Part("#a", "robert", "later", t),
        Quit("carol", "gone", t, ("#a",)),
    ]
    assert list(h.client.server.channels["#a"].users) == ["me"]


def test_user_updates() -> None:
    h = registered(caps="away-notify account-notify chghost setname")
    h.feed(
        ":bob!b@h AWAY :lunch",
        ":bob!b@h AWAY",
        ":bob!b@h ACCOUNT bobacct",
        ":bob!b@h ACCOUNT *",
        ":bob!b@h CHGHOST nb new.host",
        ":bob!b@h SETNAME :Bob B",
    )
    assert [(e.what, e.value) for e in h.events if isinstance(e, UserUpdate)] == [
        ("away", "lunch"),
        ("away", None),
        ("account", "bobacct"),
        ("account", None),
        ("host", "nb@new.host"),
        ("realname", "Bob B"),
    ]


# -- batches and labels -------------------------------------------------------


def test_chathistory_batch_grouped() -> None:
    h = registered(caps=ALL_CAPS, isupport="CHATHISTORY=50")
    label = h.client.chathistory("#c", None, limit=100)
    assert label == "h1"
    assert h.sent() == ["@label=h1 CHATHISTORY LATEST #c * 50"]
    h.feed(
        "@label=h1 BATCH +b1 chathistory #c",
        "@batch=b1;time=2026-01-01T00:00:01.000Z;msgid=m1 :bob!b@h PRIVMSG #c :one",
        "@batch=b1;time=2026-01-01T00:00:02.000Z;msgid=m2 :me!u@h PRIVMSG #c :two",
        "BATCH -b1",
    )
    (hist,) = h.events
    assert isinstance(hist, History) and hist.target == "#c" and hist.label == "h1"
    assert [(m.msgid, m.text, m.own, m.batch) for m in hist.messages] == [
        ("m1", "one", False, "b1"),
        ("m2", "two", True, "b1"),
    ]


def test_chathistory_not_offered() -> None:
    h = registered()
    assert h.client.chathistory("#c", None) is None
    assert h.sent() == []


def test_nested_batches_and_labeled_response() -> None:
    h = registered(caps=ALL_CAPS)
    label = h.client.send_line("WHOIS", ["bob"], label=True)
    assert h.sent() == [f"@label={label} WHOIS bob"]
    h.feed(
        f"@label={label} BATCH +outer labeled-response",
        "@batch=outer :srv 311 me bob b h * :Bob",
        "@batch=outer BATCH +inner netjoin irc.a irc.b",
        "@batch=inner :x!x@x JOIN #c",
        "BATCH -inner",
        "@batch=outer :srv 318 me bob :End of /WHOIS list.",
        "BATCH -outer",
    )
    (resp,) = h.events
    assert isinstance(resp, LabeledResponse) and resp.label == label
    assert [type(e).__name__ for e in resp.events] == ["Numeric", "Batch", "Numeric"]
    inner = resp.events[1]
    assert (
        isinstance(inner, Batch) and inner.type == "netjoin" and inner.params == ("irc.a", "irc.b")
    )
    assert isinstance(inner.events[0], Join)


def test_label_on_single_line_and_ack() -> None:
    h = registered(caps=ALL_CAPS)
    h.feed("@label=h7 :srv 401 me nobody :No such nick", "@label=h8 :srv ACK")
    assert [(e.label, len(e.events)) for e in h.events if isinstance(e, LabeledResponse)] == [
        ("h7", 1),
        ("h8", 0),
    ]


def test_batch_bounds() -> None:
    h = registered(caps=ALL_CAPS)
    for i in range(40):
        h.feed(f"BATCH +r{i} netsplit a b")
    assert sum(isinstance(e, Error) for e in h.events) == 8
    h.feed("BATCH -nonexistent", "BATCH")
    assert h.client.registered


@given(st.lists(st.binary(max_size=300), max_size=30))
@settings(max_examples=200, deadline=None)
def test_any_bytes_never_crash_the_client(chunks: list[bytes]) -> None:
    h = registered(caps=ALL_CAPS)
    for chunk in chunks:
        h.client.receive_data(chunk + b"\r\n")
        h.client.events_received()
        h.client.data_to_send()
        h.client.tick()


@given(
    st.lists(
        st.sampled_from(
            [
                ":a!b@c PRIVMSG #x :hi",
                ":a!b@c JOIN #x",
                ":a!b@c PART",
                ":a!b@c KICK #x",
                ":a!b@c NICK",
                ":a!b@c MODE #x +o",
                ":srv 353 me = #x",
                ":srv 366 me",
                "BATCH +a chathistory",
                "BATCH -a",
                "@batch=a :a!b@c PRIVMSG #x :in",
                ":srv CAP me ACK",
                ":srv CAP me NEW :sasl",
                ":srv CAP me DEL",
                "AUTHENTICATE +",
                ":srv 904 me",
                ":srv 433",
                ":srv 731 me",
                ":srv 303 me",
                "ERROR",
                ":a!b@c QUIT",
                ":a!b@c PRIVMSG me :\x01",
                ":a!b@c PRIVMSG me :\x01\x01",
                "@label= :srv ACK",
            ]
        ),
        max_size=40,
    )
)
@settings(max_examples=200, deadline=None)
def test_odd_lines_in_any_order_never_crash(script: list[str]) -> None:
    h = registered(caps=ALL_CAPS)
    for line in script:
        h.feed(line)
        h.client.data_to_send()


def test_standard_replies_and_unknown_commands_are_reported() -> None:
    h = registered(caps=ALL_CAPS)
    h.feed(
        "@label=h3 FAIL CHATHISTORY INVALID_TARGET #nope :Messages could not be retrieved",
        ":srv WHATEVER a b :c",
        "@+typing=active :bob!b@h TAGMSG #c",
    )
    assert isinstance(h.events[0], LabeledResponse)
    (fail,) = h.events[0].events
    assert isinstance(fail, Numeric) and fail.command == "FAIL" and fail.params[0] == "CHATHISTORY"
    assert isinstance(h.events[1], Numeric) and h.events[1].command == "WHATEVER"
    assert len(h.events) == 2


def test_raw_quit_ends_for_good() -> None:
    h = registered()
    h.client.send_raw("QUIT :bye")
    assert h.sent() == ["QUIT bye"]
    h.feed("ERROR :Closing link")
    assert h.events[-1] == Disconnected("server error: Closing link", retry=False)


def test_a_bug_on_one_line_does_not_end_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    h = registered()

    def broken(*_: object) -> list[object]:
        raise TypeError("bug")

    monkeypatch.setattr(h.client, "_on_invite", broken)
    h.feed(":bob!b@h INVITE me #x", "PING :still")
    assert h.events[0] == Error("unexpected line (TypeError: bug)", ":bob!b@h INVITE me #x")
    assert h.sent() == ["PONG still"]
