"""Rooms, DMs, members and topics over REST."""

from __future__ import annotations

import httpx
from apihelp import error_code

from hubbub.web.deps import Services


async def create(client: httpx.AsyncClient, name: str, **extra: object) -> dict:
    r = await client.post("/api/rooms", json={"name": name, **extra})
    assert r.status_code == 201, r.text
    body: dict = r.json()
    return body


async def test_create_list_join_leave(alice: httpx.AsyncClient, bob: httpx.AsyncClient) -> None:
    lobby = await create(alice, "#lobby", topic="hello")
    assert lobby["name"] == "lobby"
    assert lobby["role"] == "owner"
    assert lobby["kind"] == "room"
    assert lobby["visibility"] == "public"
    assert lobby["topic"] == "hello"
    await create(alice, "secret", visibility="private")
    await create(alice, "games")

    rooms = (await bob.get("/api/rooms")).json()
    assert [(r["name"], r["members"]) for r in rooms] == [("games", 1), ("lobby", 1)]
    assert [r["name"] for r in (await bob.get("/api/rooms", params={"q": "gam"})).json()] == [
        "games"
    ]

    # a public room can be read before joining; role is null then
    seen = (await bob.get(f"/api/conversations/{lobby['id']}")).json()
    assert seen["role"] is None
    joined = await bob.post(f"/api/conversations/{lobby['id']}/join")
    assert joined.status_code == 200
    assert joined.json()["role"] == "member"
    again = await bob.post("/api/rooms/join", json={"name": "#LOBBY"})
    assert again.json()["id"] == lobby["id"]
    rooms = (await bob.get("/api/rooms")).json()
    assert ("lobby", 2) in [(r["name"], r["members"]) for r in rooms]

    mine = (await bob.get("/api/conversations")).json()
    assert [c["name"] for c in mine] == ["lobby"]

    members = (await bob.get(f"/api/conversations/{lobby['id']}/members")).json()
    assert {(m["name"], m["role"], m["online"]) for m in members} == {
        ("alice", "owner", False),
        ("bob", "member", False),
    }

    r = await bob.post(f"/api/conversations/{lobby['id']}/leave")
    assert r.status_code == 204
    assert (await bob.get("/api/conversations")).json() == []
    r = await bob.post(f"/api/conversations/{lobby['id']}/leave")
    assert r.status_code == 403
    assert error_code(r) == "not_member"

    history = (await alice.get(f"/api/conversations/{lobby['id']}/messages")).json()["messages"]
    assert [(m["kind"], m["sender"]) for m in history] == [
        ("join", "alice"),
        ("join", "bob"),
        ("part", "bob"),
    ]


async def test_room_name_taken(alice: httpx.AsyncClient, bob: httpx.AsyncClient) -> None:
    await create(alice, "Lobby")
    r = await bob.post("/api/rooms", json={"name": "lobby"})
    assert r.status_code == 409
    assert error_code(r) == "name_taken"


async def test_bad_room_names(alice: httpx.AsyncClient) -> None:
    for name in ["", "a b", "a,b", "#", "x" * 65, "a:b", "tab\there"]:
        r = await alice.post("/api/rooms", json={"name": name})
        assert r.status_code in (400, 422), name
        assert error_code(r) in ("invalid_name", "invalid_request"), name
    r = await alice.post("/api/rooms", json={"name": "x" * 81})
    assert error_code(r) == "too_long"
    r = await alice.post("/api/rooms", json={"name": "ok", "visibility": "hidden"})
    assert r.status_code == 422
    assert error_code(r) == "invalid_request"
    assert r.json()["error"]["field"] == "visibility"


async def test_private_room_needs_invitation(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient, carol: httpx.AsyncClient
) -> None:
    secret = await create(alice, "secret", visibility="private")
    cid = secret["id"]
    assert "secret" not in [r["name"] for r in (await bob.get("/api/rooms")).json()]
    for r in [
        await bob.post(f"/api/conversations/{cid}/join"),
        await bob.post("/api/rooms/join", json={"name": "secret"}),
        await bob.get(f"/api/conversations/{cid}"),
    ]:
        assert r.status_code == 404
        assert error_code(r) == "not_found"
    r = await bob.get(f"/api/conversations/{cid}/messages")
    assert error_code(r) == "not_member"
    r = await bob.post(f"/api/conversations/{cid}/members", json={"name": "carol"})
    assert error_code(r) == "not_member"

    r = await alice.post(f"/api/conversations/{cid}/members", json={"name": "BOB"})
    assert r.status_code == 201
    assert r.json()["name"] == "bob"
    assert r.json()["role"] == "member"
    view = (await bob.get(f"/api/conversations/{cid}")).json()
    assert view["role"] == "member"
    r = await alice.post(f"/api/conversations/{cid}/members", json={"name": "nobody"})
    assert r.status_code == 404


async def test_topic(alice: httpx.AsyncClient, bob: httpx.AsyncClient, services: Services) -> None:
    room = await create(alice, "lobby")
    cid = room["id"]
    r = await alice.put(f"/api/conversations/{cid}/topic", json={"topic": "new topic"})
    assert r.status_code == 200
    assert r.json()["kind"] == "topic"
    assert r.json()["text"] == "new topic"
    assert (await alice.get(f"/api/conversations/{cid}")).json()["topic"] == "new topic"
    r = await bob.put(f"/api/conversations/{cid}/topic", json={"topic": "mine"})
    assert error_code(r) == "not_member"
    too_long = "t" * (services.settings.max_topic_length + 1)
    r = await alice.put(f"/api/conversations/{cid}/topic", json={"topic": too_long})
    assert r.status_code == 400
    assert error_code(r) == "too_long"
    r = await alice.put(f"/api/conversations/{cid}/topic", json={"topic": "two\nlines"})
    assert error_code(r) == "bad_request"
    r = await alice.put(f"/api/conversations/{cid}/topic", json={"topic": 5})
    assert r.status_code == 422
    assert error_code(r) == "invalid_request"


async def test_dms(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient, carol: httpx.AsyncClient
) -> None:
    r = await alice.post("/api/dms", json={"name": "bob"})
    assert r.status_code == 200
    dm = r.json()
    assert dm["kind"] == "dm"
    assert dm["peer"] == "bob"
    again = (await bob.post("/api/dms", json={"name": "Alice"})).json()
    assert again["id"] == dm["id"]
    assert again["peer"] == "alice"
    r = await bob.post(f"/api/conversations/{dm['id']}/messages", json={"text": "hi alice"})
    assert r.status_code == 201
    convs = (await alice.get("/api/conversations")).json()
    assert [(c["kind"], c["unread"]) for c in convs] == [("dm", 1)]
    # a third user sees nothing of it
    r = await carol.get(f"/api/conversations/{dm['id']}")
    assert r.status_code == 404
    r = await carol.get(f"/api/conversations/{dm['id']}/messages")
    assert error_code(r) == "not_member"
    r = await carol.post(f"/api/conversations/{dm['id']}/join")
    assert r.status_code == 403
    r = await alice.post("/api/dms", json={"name": "alice"})
    assert error_code(r) == "bad_request"
    r = await alice.post("/api/dms", json={"name": "nobody"})
    assert error_code(r) == "not_found"
    r = await alice.post(f"/api/conversations/{dm['id']}/leave")
    assert r.status_code == 403


async def test_unknown_conversation(alice: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/conversations/9999"),
        ("POST", "/api/conversations/9999/join"),
        ("POST", "/api/conversations/9999/leave"),
    ]:
        r = await alice.request(method, path)
        assert r.status_code == 404, path
        assert error_code(r) == "not_found"
    for bad in ["0", "-1", "abc", str(2**40)]:
        r = await alice.get(f"/api/conversations/{bad}")
        assert r.status_code == 422, bad
        assert error_code(r) == "invalid_request"
        assert r.json()["error"]["field"] == "conversation_id"
