"""History paging, sending with a nonce, read markers and search over REST."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from apihelp import error_code

from hubbub.config import Settings
from hubbub.web.deps import Services


@pytest.fixture
async def room(alice: httpx.AsyncClient, bob: httpx.AsyncClient) -> int:
    """A room of alice's that bob joined: seq 1 and 2 are their joins."""
    cid: int = (await alice.post("/api/rooms", json={"name": "lobby"})).json()["id"]
    assert (await bob.post(f"/api/conversations/{cid}/join")).status_code == 200
    return cid


async def send(client: httpx.AsyncClient, cid: int, text: str, **extra: object) -> dict:
    r = await client.post(f"/api/conversations/{cid}/messages", json={"text": text, **extra})
    assert r.status_code in (200, 201), r.text
    body: dict = r.json()
    return body


async def test_send_and_history_paging(alice: httpx.AsyncClient, room: int) -> None:
    for i in range(10):
        sent = await send(alice, room, f"message {i}")
        assert sent["seq"] == i + 3
        assert sent["duplicate"] is False
    url = f"/api/conversations/{room}/messages"

    newest = (await alice.get(url, params={"limit": 4})).json()["messages"]
    assert [m["seq"] for m in newest] == [9, 10, 11, 12]
    assert newest[-1]["text"] == "message 9"
    assert newest[-1]["sender"] == "alice"
    assert newest[-1]["kind"] == "text"
    older = (await alice.get(url, params={"before": 9, "limit": 4})).json()["messages"]
    assert [m["seq"] for m in older] == [5, 6, 7, 8]
    oldest = (await alice.get(url, params={"before": 5, "limit": 4})).json()["messages"]
    assert [m["seq"] for m in oldest] == [1, 2, 3, 4]
    assert (await alice.get(url, params={"before": 1})).json()["messages"] == []
    forward = (await alice.get(url, params={"after": 10, "limit": 50})).json()["messages"]
    assert [m["seq"] for m in forward] == [11, 12]
    assert (await alice.get(url, params={"after": 12})).json()["messages"] == []
    # after wins over before
    both = (await alice.get(url, params={"after": 2, "before": 5, "limit": 2})).json()
    assert [m["seq"] for m in both["messages"]] == [3, 4]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"limit": "ten"},
        {"before": -1},
        {"after": -5},
        {"after": "x"},
        {"before": str(2**70)},
    ],
)
async def test_history_bad_paging(alice: httpx.AsyncClient, room: int, params: dict) -> None:
    r = await alice.get(f"/api/conversations/{room}/messages", params=params)
    assert r.status_code == 422
    assert error_code(r) == "invalid_request"
    assert r.json()["error"]["field"] == next(iter(params))


async def test_nonce_makes_send_idempotent(
    alice: httpx.AsyncClient, room: int, events: list
) -> None:
    first = await alice.post(
        f"/api/conversations/{room}/messages", json={"text": "once", "nonce": "n-1"}
    )
    assert first.status_code == 201
    before = len(events)
    again = await alice.post(
        f"/api/conversations/{room}/messages", json={"text": "once", "nonce": "n-1"}
    )
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert (again.json()["id"], again.json()["seq"]) == (first.json()["id"], first.json()["seq"])
    assert len(events) == before  # nothing published twice
    history = (await alice.get(f"/api/conversations/{room}/messages")).json()["messages"]
    assert [m["text"] for m in history if m["kind"] == "text"] == ["once"]


async def test_concurrent_sends_with_one_nonce(alice: httpx.AsyncClient, room: int) -> None:
    results = await asyncio.gather(
        *[
            alice.post(f"/api/conversations/{room}/messages", json={"text": "x", "nonce": "same"})
            for _ in range(5)
        ]
    )
    assert len({(r.json()["id"], r.json()["seq"]) for r in results}) == 1
    assert sorted(r.status_code for r in results) == [200, 200, 200, 200, 201]


async def test_send_errors(
    alice: httpx.AsyncClient, carol: httpx.AsyncClient, room: int, services: Services
) -> None:
    url = f"/api/conversations/{room}/messages"
    r = await carol.post(url, json={"text": "let me in"})
    assert r.status_code == 403
    assert error_code(r) == "not_member"
    too_long = "x" * (services.settings.max_message_length + 1)
    r = await alice.post(url, json={"text": too_long})
    assert r.status_code == 400
    assert error_code(r) == "too_long"
    r = await alice.post(url, json={"text": "x" * 70_000})
    assert error_code(r) == "too_long"
    assert r.json()["error"]["field"] == "text"
    for body, code in [
        ({"text": "   "}, "bad_request"),
        ({"text": "nul\x00"}, "bad_request"),
        ({"text": "hi", "kind": "system"}, "invalid_request"),
        ({"text": "hi", "kind": "join"}, "invalid_request"),
        ({"text": 42}, "invalid_request"),
        ({"text": ["a"]}, "invalid_request"),
        ({"text": "hi", "nonce": 5}, "invalid_request"),
        ({"text": "hi", "nonce": "has space"}, "bad_request"),
        ({"text": "hi", "nonce": "n" * 65}, "too_long"),
        ({"text": "hi", "extra": True}, "invalid_request"),
        ({}, "invalid_request"),
        ([], "invalid_request"),
        ("text", "invalid_request"),
        (None, "invalid_request"),
    ]:
        r = await alice.post(url, json=body)
        assert error_code(r) == code, (body, r.text)
    r = await alice.post("/api/conversations/9999/messages", json={"text": "hi"})
    assert error_code(r) == "not_member"


async def test_unknown_keys_are_not_echoed_at_length(alice: httpx.AsyncClient, room: int) -> None:
    r = await alice.post(f"/api/conversations/{room}/messages", json={"text": "hi", "k" * 5000: 1})
    assert error_code(r) == "invalid_request"
    assert len(r.json()["error"]["field"]) <= 64
    assert len(r.text) < 500


async def test_bad_json_body(alice: httpx.AsyncClient, room: int) -> None:
    url = f"/api/conversations/{room}/messages"
    for content in [b"{", b'{"text": "a",}', b"\xff\xfe", b"{'text': 'a'}"]:
        r = await alice.post(url, content=content, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, content
        assert error_code(r) == "invalid_json"
    r = await alice.post(url, content=b"", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert error_code(r) == "invalid_request"


async def test_body_too_large(alice: httpx.AsyncClient, room: int) -> None:
    r = await alice.post(
        f"/api/conversations/{room}/messages",
        content=b'{"text": "' + b"x" * (2 << 20) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert error_code(r) == "too_large"


async def test_read_markers_and_unread(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient, room: int, events: list
) -> None:
    for i in range(3):
        await send(alice, room, f"m{i}")
    view = (await bob.get(f"/api/conversations/{room}")).json()
    assert view["last_seq"] == 5
    # bob's marker starts at his own join (seq 2): what he sends himself is read
    assert view["read_seq"] == 2
    assert view["unread"] == 3
    r = await bob.put(f"/api/conversations/{room}/read", json={"seq": 4})
    assert r.json() == {"conversation": room, "seq": 4}
    listed = (await bob.get("/api/conversations")).json()
    assert [(c["read_seq"], c["unread"]) for c in listed] == [(4, 1)]
    # never backwards, never past the end
    assert (await bob.put(f"/api/conversations/{room}/read", json={"seq": 1})).json()["seq"] == 4
    assert (await bob.put(f"/api/conversations/{room}/read", json={"seq": 99})).json()["seq"] == 5
    assert events[-1].payload == b'{"type":"read","conversation":%d,"seq":5}' % room
    for body in [{"seq": -1}, {"seq": "4"}, {"seq": 1.5}, {"seq": True}, {}]:
        r = await bob.put(f"/api/conversations/{room}/read", json=body)
        assert r.status_code == 422, body
        assert error_code(r) == "invalid_request"


async def test_search(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient, carol: httpx.AsyncClient, room: int
) -> None:
    await send(alice, room, "the quick brown fox")
    await send(bob, room, "a lazy dog")
    other = (await alice.post("/api/rooms", json={"name": "other"})).json()["id"]
    await send(alice, other, "another fox appears")

    found = (await alice.get("/api/search", params={"q": "fox"})).json()["messages"]
    assert [m["text"] for m in found] == ["another fox appears", "the quick brown fox"]
    only = (await alice.get("/api/search", params={"q": "fox", "conversation": room})).json()
    assert [m["text"] for m in only["messages"]] == ["the quick brown fox"]
    # bob is not in "other": he finds only what he can read
    bobs = (await bob.get("/api/search", params={"q": "fox"})).json()["messages"]
    assert [m["text"] for m in bobs] == ["the quick brown fox"]
    r = await bob.get("/api/search", params={"q": "fox", "conversation": other})
    assert error_code(r) == "not_member"
    assert (await carol.get("/api/search", params={"q": "fox"})).json()["messages"] == []


@pytest.mark.parametrize(
    "q",
    [
        '"',
        "fox AND",
        "NEAR(",
        "*",
        "fox OR OR",
        "'; DROP TABLE messages; --",
        "text:fox",
        "^fox",
        "(((",
        "fox -dog",
        "\u202e\u0000",
        "ü" * 200,
    ],
)
async def test_search_hostile_input(alice: httpx.AsyncClient, room: int, q: str) -> None:
    await send(alice, room, "the quick brown fox")
    r = await alice.get("/api/search", params={"q": q})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert isinstance(r.json()["messages"], list)
    else:
        assert error_code(r) == "bad_request"
    # the store still answers
    assert (await alice.get("/api/search", params={"q": "fox"})).status_code == 200


async def test_search_bounds(alice: httpx.AsyncClient) -> None:
    r = await alice.get("/api/search", params={"q": "x" * 201})
    assert error_code(r) == "too_long"
    r = await alice.get("/api/search", params={"q": ""})
    assert r.status_code == 422
    r = await alice.get("/api/search", params={"q": "   "})
    assert error_code(r) == "bad_request"
    r = await alice.get("/api/search")
    assert error_code(r) == "invalid_request"
    assert r.json()["error"]["field"] == "q"
    r = await alice.get("/api/search", params={"q": "a", "limit": 1000})
    assert error_code(r) == "invalid_request"


async def test_chunked_body_too_large(alice: httpx.AsyncClient, room: int) -> None:
    async def chunks():  # no Content-Length: the limit counts as it reads
        yield b'{"text": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    r = await alice.post(
        f"/api/conversations/{room}/messages",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert error_code(r) == "too_large"


async def test_body_must_be_a_json_object(alice: httpx.AsyncClient, room: int) -> None:
    url = f"/api/conversations/{room}/messages"
    for kwargs in [
        {"content": b'{"text": "hi"}', "headers": {"Content-Type": "text/plain"}},
        {"json": ["text", "hi"]},
        {},
    ]:
        r = await alice.post(url, **kwargs)
        assert r.status_code == 422
        assert error_code(r) == "invalid_request"
        assert r.json()["error"]["field"] == "body"
        assert "JSON object" in r.json()["error"]["message"]


class TestSendRate:
    @pytest.fixture
    def settings(self, make_settings: Callable[..., Settings]) -> Settings:
        return make_settings(send_rate=0.01, send_burst=3)

    async def test_sending_too_fast(self, alice: httpx.AsyncClient, room: int) -> None:
        url = f"/api/conversations/{room}/messages"
        for i in range(3):
            assert (await alice.post(url, json={"text": f"m{i}"})).status_code == 201
        r = await alice.post(url, json={"text": "one too many"})
        assert r.status_code == 429
        assert error_code(r) == "rate_limited"
        assert int(r.headers["retry-after"]) >= 1
