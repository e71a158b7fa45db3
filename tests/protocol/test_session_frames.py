"""The session's answers to client frames: exact frames, every error code."""

from __future__ import annotations

import orjson
import pytest
from sessionhelp import Driver, message

from hubbub.protocols.session import Call, Limits, Subscribe
from hubbub.protocols.wire import Read, Send, Typing


def test_ready_frame_lists_conversations_and_subscribes() -> None:
    d = Driver()
    d.session.start(
        [
            {"id": 3, "last_seq": 5, "name": "a"},
            {"id": 4, "last_seq": 0, "name": "b"},
        ],
        [1, 2],
    )
    assert d.frames() == [
        {
            "type": "ready",
            "user": {"id": 1, "name": "alice"},
            "conversations": [
                {"id": 3, "last_seq": 5, "name": "a"},
                {"id": 4, "last_seq": 0, "name": "b"},
            ],
            "online": [1, 2],
            "limits": {"max_frame": 65536, "replay_limit": 2000},
        }
    ]
    assert d.actions() == [Subscribe(3), Subscribe(4)]


def test_ping_answers_pong_even_before_resume() -> None:
    d = Driver()
    d.start((3, 0))
    assert d.text({"op": "ping"}) == [{"type": "pong"}]
    assert d.text({"op": "ping", "nonce": "p1"}) == [{"type": "pong", "nonce": "p1"}]


@pytest.mark.parametrize(
    "frame",
    [
        {"op": "send", "nonce": "n1", "conversation": 3, "text": "hi"},
        {"op": "typing", "conversation": 3},
        {"op": "read", "conversation": 3, "seq": 1},
    ],
)
def test_ops_before_resume_are_refused(frame: dict[str, object]) -> None:
    d = Driver()
    d.start((3, 0))
    [error] = d.text(frame)
    assert error["type"] == "error" and error["code"] == "not_resumed"
    assert error.get("nonce") == frame.get("nonce")
    assert d.actions() == []


def test_resume_is_answered_and_only_once() -> None:
    d = Driver()
    d.start((3, 0))
    assert d.resume() == [{"type": "resumed"}]
    [error] = d.text({"op": "resume", "positions": {}, "nonce": "r2"})
    assert error["code"] == "bad_frame" and error["nonce"] == "r2"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{", "bad_json"),
        ("", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('"send"', "bad_frame"),
        ("{}", "bad_frame"),
        ('{"op": 5}', "bad_frame"),
        ('{"op": "shout"}', "unknown_op"),
        ('{"op": "ping", "nonce": 5}', "bad_frame"),
        ('{"op": "ping", "nonce": ""}', "bad_frame"),
        ('{"op": "ping", "nonce": "with space"}', "bad_frame"),
        ('{"op": "send", "conversation": 3, "text": "x"}', "bad_frame"),
        ('{"op": "send", "nonce": "a", "conversation": "3", "text": "x"}', "bad_frame"),
        ('{"op": "send", "nonce": "a", "conversation": true, "text": "x"}', "bad_frame"),
        ('{"op": "send", "nonce": "a", "conversation": 0, "text": "x"}', "bad_frame"),
        ('{"op": "send", "nonce": "a", "conversation": 3.5, "text": "x"}', "bad_frame"),
        ('{"op": "send", "nonce": "a", "conversation": 3, "text": 5}', "bad_frame"),
        ('{"op": "send", "nonce": "a", "conversation": 3}', "bad_frame"),
        (
            '{"op": "send", "nonce": "a", "conversation": 3, "text": "x", "kind": "join"}',
            "bad_frame",
        ),
        ('{"op": "send", "nonce": "a", "conversation": 3, "text": "x", "kind": []}', "bad_frame"),
        (
            '{"op": "send", "nonce": "a", "conversation": 99999999999999999999, "text": "x"}',
            "bad_frame",
        ),
        ('{"op": "typing"}', "bad_frame"),
        ('{"op": "read", "conversation": 3}', "bad_frame"),
        ('{"op": "read", "conversation": 3, "seq": -1}', "bad_frame"),
        ('{"op": "resume", "positions": []}', "bad_frame"),
        ('{"op": "resume", "positions": {"x": 1}}', "bad_frame"),
        ('{"op": "resume", "positions": {"3": "1"}}', "bad_frame"),
        ('{"op": "resume", "positions": {"3": -1}}', "bad_frame"),
    ],
)
def test_bad_input_gets_its_code_and_the_session_lives_on(raw: str, code: str) -> None:
    d = Driver()
    d.start((3, 0))
    if '"resume"' not in raw:
        d.resume()
    [error] = d.text(raw)
    assert error["type"] == "error"
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert d.actions() == []
    assert d.text({"op": "ping"}) == [{"type": "pong"}]


def test_errors_carry_the_nonce_when_there_is_one() -> None:
    d = Driver()
    d.start((3, 0))
    d.resume()
    [error] = d.text({"op": "send", "nonce": "n9", "conversation": "x", "text": "hi"})
    assert error == {
        "type": "error",
        "code": "bad_frame",
        "message": "'conversation' must be an integer >= 1",
        "nonce": "n9",
    }


def test_too_large_frame() -> None:
    d = Driver(Limits(max_frame=1024))
    d.start((3, 0))
    d.resume()
    [error] = d.text('{"op": "ping", "pad": "' + "x" * 1024 + '"}')
    assert error["code"] == "too_large"
    # multi-byte characters count as bytes
    [error] = d.text('{"op":"ping","p":"' + "é" * 510 + '"}')
    assert error["code"] == "too_large"
    assert d.text({"op": "ping"}) == [{"type": "pong"}]


def test_binary_frames_are_refused() -> None:
    d = Driver(Limits(max_frame=1024))
    d.start((3, 0))
    d.session.receive_binary(10)
    assert [f["code"] for f in d.frames()] == ["bad_json"]
    d.session.receive_binary(2000)
    assert [f["code"] for f in d.frames()] == ["too_large"]


def test_flooding_frames_is_rate_limited() -> None:
    d = Driver(Limits(ops_per_second=10, ops_burst=3))
    d.start((3, 0))
    for _ in range(3):
        assert d.text({"op": "ping"}) == [{"type": "pong"}]
    [error] = d.text({"op": "ping"})
    assert error["code"] == "rate_limited" and error["retry_after"] == pytest.approx(0.1)
    d.clock.now += 0.11
    assert d.text({"op": "ping"}) == [{"type": "pong"}]


def test_send_becomes_a_call_and_is_acked_after_the_commit() -> None:
    d = Driver()
    d.start((3, 0))
    d.resume()
    assert d.text({"op": "send", "nonce": "n1", "conversation": 3, "text": "hi"}) == []
    [call] = d.actions()
    assert call == Call(Send("n1", 3, "hi"))
    assert isinstance(call.op, Send)
    d.session.op_done(call.op, message(3, 1))
    assert d.frames() == [
        {"type": "ack", "nonce": "n1", "id": "M3-1", "conversation": 3, "seq": 1, "ts": 1001}
    ]
    # sending to a conversation the session does not follow still asks the Hub (which decides)
    d.text({"op": "send", "nonce": "n2", "conversation": 9, "text": "hi", "kind": "action"})
    assert d.actions() == [Call(Send("n2", 9, "hi", kind="action"))]  # type: ignore[arg-type]


def test_failed_calls_become_error_frames() -> None:
    d = Driver()
    d.start((3, 0))
    d.resume()
    op = Send("n1", 3, "x" * 5000)
    d.session.op_failed(op, "too_long", "a message is at most 4000 characters")
    d.session.op_failed(op, "rate_limited", "slow down", retry_after=0.5)
    assert d.frames() == [
        {
            "type": "error",
            "code": "too_long",
            "message": "a message is at most 4000 characters",
            "nonce": "n1",
        },
        {
            "type": "error",
            "code": "rate_limited",
            "message": "slow down",
            "nonce": "n1",
            "retry_after": 0.5,
        },
    ]


def test_typing_and_read_need_membership() -> None:
    d = Driver()
    d.start((3, 0))
    d.resume()
    for frame in ({"op": "typing", "conversation": 4}, {"op": "read", "conversation": 4, "seq": 1}):
        [error] = d.text(frame)
        assert error["code"] == "not_member"
    assert d.actions() == []
    assert d.text({"op": "read", "conversation": 3, "seq": 0}) == []
    assert d.actions() == [Call(Read(3, 0))]


def test_typing_is_throttled_quietly() -> None:
    d = Driver()
    d.start((3, 0))
    d.resume()
    d.text({"op": "typing", "conversation": 3})
    assert d.actions() == [Call(Typing(3))]
    d.clock.now += 1
    assert d.text({"op": "typing", "conversation": 3}) == []
    assert d.actions() == []
    d.clock.now += 1.5
    d.text({"op": "typing", "conversation": 3})
    assert d.actions() == [Call(Typing(3))]


def test_closed_session_ignores_everything() -> None:
    d = Driver()
    d.start((3, 0))
    d.session.close(1000, "bye")
    assert [a.code for a in d.actions()] == [1000]  # type: ignore[union-attr]
    assert d.text({"op": "ping"}) == []
    assert d.session.closed


def test_frames_are_json_bytes() -> None:
    d = Driver()
    d.start((3, 0))
    d.session.receive_text('{"op":"ping"}')
    [payload] = d.session.data_to_send()
    assert isinstance(payload, bytes) and orjson.loads(payload) == {"type": "pong"}
