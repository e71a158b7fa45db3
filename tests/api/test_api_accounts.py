"""Registration, login, logout, sessions, tokens and passwords over REST."""

from __future__ import annotations

import httpx
import pytest
from apihelp import BASE, ORIGIN, PASSWORD, ClientFactory, error_code

from hubbub.core.events import Control, Scope
from hubbub.web.deps import Services


async def test_register_logs_in_and_first_user_is_admin(anon: httpx.AsyncClient) -> None:
    r = await anon.post("/api/register", json={"name": "Alice", "password": PASSWORD})
    assert r.status_code == 201
    assert r.json()["name"] == "Alice"
    assert r.json()["role"] == "admin"
    cookie = r.headers["set-cookie"]
    assert "hubbub_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
    assert "Path=/" in cookie
    assert "Max-Age=2592000" in cookie
    assert "Secure" not in cookie  # plain http here
    me = await anon.get("/api/me")
    assert me.status_code == 200
    assert me.json()["user"]["name"] == "Alice"
    assert me.json()["via"] == "cookie"


async def test_second_user_is_member(alice: httpx.AsyncClient, bob: httpx.AsyncClient) -> None:
    assert (await bob.get("/api/me")).json()["user"]["role"] == "member"
    assert (await alice.get("/api/me")).json()["user"]["role"] == "admin"


async def test_duplicate_names_case_insensitive(
    alice: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    r = await anon.post("/api/register", json={"name": "ALICE", "password": PASSWORD})
    assert r.status_code == 409
    assert error_code(r) == "name_taken"


@pytest.mark.parametrize("name", ["admin", "Admin", "hubbub", "system", "Bot"])
async def test_reserved_names(anon: httpx.AsyncClient, name: str) -> None:
    r = await anon.post("/api/register", json={"name": name, "password": PASSWORD})
    assert r.status_code == 400
    assert error_code(r) == "invalid_name"


@pytest.mark.parametrize("name", ["1abc", "a b", "with,comma", "é", "x" * 33, ""])
async def test_invalid_names(anon: httpx.AsyncClient, name: str) -> None:
    r = await anon.post("/api/register", json={"name": name, "password": PASSWORD})
    assert r.status_code in (400, 422)
    assert error_code(r) in ("invalid_name", "invalid_request")


async def test_password_bounds(anon: httpx.AsyncClient) -> None:
    r = await anon.post("/api/register", json={"name": "dave", "password": "short"})
    assert r.status_code == 400
    assert error_code(r) == "bad_request"
    r = await anon.post("/api/register", json={"name": "dave", "password": "x" * 1025})
    assert r.status_code == 400
    assert error_code(r) == "too_long"
    assert r.json()["error"]["field"] == "password"
    assert "x" * 100 not in r.text  # the input is never echoed


async def test_registration_info_before_and_after_the_first_account(
    services: Services, anon: httpx.AsyncClient, client_factory: ClientFactory
) -> None:
    r = await anon.get("/api/registration")
    assert r.status_code == 200
    assert r.json() == {"open": True, "first_account": True}
    await anon.post("/api/register", json={"name": "alice", "password": PASSWORD})
    other = await client_factory()
    assert (await other.get("/api/registration")).json() == {"open": True, "first_account": False}
    services.settings.registration_open = False
    assert (await other.get("/api/registration")).json() == {"open": False, "first_account": False}


async def test_closed_registration(
    services: Services, alice: httpx.AsyncClient, client_factory: ClientFactory
) -> None:
    services.settings.registration_open = False
    anon = await client_factory()
    r = await anon.post("/api/register", json={"name": "eve", "password": PASSWORD})
    assert r.status_code == 403
    assert error_code(r) == "registration_closed"
    # an admin may still register someone, and stays logged in as themselves
    r = await alice.post("/api/register", json={"name": "eve", "password": PASSWORD})
    assert r.status_code == 201
    assert "set-cookie" not in r.headers
    assert (await alice.get("/api/me")).json()["user"]["name"] == "alice"
    # a member may not
    eve = await client_factory("eve", register=False)
    r = await eve.post("/api/register", json={"name": "frank", "password": PASSWORD})
    assert error_code(r) == "registration_closed"


async def test_login_and_logout(alice: httpx.AsyncClient, client_factory: ClientFactory) -> None:
    other = await client_factory()
    r = await other.post("/api/login", json={"name": "ALICE", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["user"]["name"] == "alice"
    assert body["session"]["current"] is True
    assert "hubbub_session" not in r.text  # the secret is in the cookie only
    assert (await other.get("/api/me")).status_code == 200
    r = await other.post("/api/logout")
    assert r.status_code == 204
    assert "hubbub_session=" in r.headers["set-cookie"]
    r = await other.get("/api/me")
    assert r.status_code == 401
    assert error_code(r) == "unauthorized"
    assert r.headers["www-authenticate"] == 'Bearer realm="hubbub"'
    # the first session is untouched
    assert (await alice.get("/api/me")).status_code == 200


async def test_logout_without_session_is_harmless(anon: httpx.AsyncClient) -> None:
    assert (await anon.post("/api/logout")).status_code == 204


async def test_revoked_cookie_stops_working(
    alice: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    cookie = alice.cookies["hubbub_session"]
    await alice.post("/api/logout")
    anon.cookies.set("hubbub_session", cookie)
    assert (await anon.get("/api/me")).status_code == 401


async def test_wrong_password_same_as_unknown_user(
    alice: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    wrong = await anon.post("/api/login", json={"name": "alice", "password": "not it at all"})
    unknown = await anon.post("/api/login", json={"name": "nobody1", "password": "not it at all"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["message"] == "wrong name or password"
    assert "set-cookie" not in wrong.headers


async def test_login_rate_limited_per_account(
    alice: httpx.AsyncClient, client_factory: ClientFactory, services: Services
) -> None:
    limit = services.settings.login_attempts_per_account
    attacker = await client_factory()
    for _ in range(limit):
        r = await attacker.post("/api/login", json={"name": "alice", "password": "guess guess"})
        assert r.status_code == 401
    r = await attacker.post("/api/login", json={"name": "alice", "password": "guess guess"})
    assert r.status_code == 429
    assert error_code(r) == "rate_limited"
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 15 * 60
    assert r.json()["error"]["retry_after"] == retry
    # even the right password waits now
    r = await attacker.post("/api/login", json={"name": "alice", "password": PASSWORD})
    assert r.status_code == 429
    # another account from the same address is still fine
    r = await attacker.post("/api/login", json={"name": "nobody", "password": "guess guess"})
    assert r.status_code == 401


async def test_login_rate_limited_per_address(
    alice: httpx.AsyncClient, client_factory: ClientFactory, services: Services
) -> None:
    limit = services.settings.login_attempts_per_address
    attacker = await client_factory()
    for i in range(limit):
        r = await attacker.post("/api/login", json={"name": f"user{i}", "password": "guess guess"})
        assert r.status_code == 401
    r = await attacker.post("/api/login", json={"name": "alice", "password": PASSWORD})
    assert r.status_code == 429
    assert "retry-after" in r.headers


async def test_successful_logins_do_not_count(
    alice: httpx.AsyncClient, client_factory: ClientFactory, services: Services
) -> None:
    for _ in range(services.settings.login_attempts_per_address + 2):
        c = await client_factory()
        r = await c.post("/api/login", json={"name": "alice", "password": PASSWORD})
        assert r.status_code == 200


async def test_sessions_list_and_revoke(
    alice: httpx.AsyncClient, client_factory: ClientFactory, events: list
) -> None:
    second = await client_factory("alice", register=False)
    listed = (await alice.get("/api/sessions")).json()
    assert len(listed) == 2
    mine = [s for s in listed if s["current"]]
    assert len(mine) == 1
    other = next(s for s in listed if not s["current"])
    r = await alice.delete(f"/api/sessions/{other['id']}")
    assert r.status_code == 204
    assert (await second.get("/api/me")).status_code == 401
    revoked = [e for e in events if e.control is Control.REVOKE]
    assert len(revoked) == 1
    assert revoked[0].scope is Scope.USER
    assert revoked[0].payload == b'{"type":"revoked","session":"%s"}' % other["id"].encode()
    r = await alice.delete(f"/api/sessions/{other['id']}")
    assert r.status_code == 404
    assert error_code(r) == "not_found"


async def test_cannot_revoke_someone_elses_session(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient
) -> None:
    bobs = (await bob.get("/api/sessions")).json()[0]["id"]
    r = await alice.delete(f"/api/sessions/{bobs}")
    assert r.status_code == 404
    assert (await bob.get("/api/me")).status_code == 200


async def test_tokens(
    alice: httpx.AsyncClient, client_factory: ClientFactory, events: list
) -> None:
    r = await alice.post("/api/tokens", json={"name": "my bot"})
    assert r.status_code == 201
    created = r.json()
    secret = created["token"]
    assert secret.startswith("hb_")
    listed = (await alice.get("/api/tokens")).json()
    assert [t["name"] for t in listed] == ["my bot"]
    assert secret not in (await alice.get("/api/tokens")).text

    bot = await client_factory(headers={"Authorization": f"Bearer {secret}"})
    me = (await bot.get("/api/me")).json()
    assert me["via"] == "token"
    assert me["token"] == created["id"]
    # a token needs no Origin even to change things
    r = await bot.post("/api/rooms", json={"name": "botroom"})
    assert r.status_code == 201

    r = await alice.delete(f"/api/tokens/{created['id']}")
    assert r.status_code == 204
    assert (await bot.get("/api/me")).status_code == 401
    assert any(e.control is Control.REVOKE and b'"token"' in e.payload for e in events)
    assert (await alice.delete(f"/api/tokens/{created['id']}")).status_code == 404


async def test_bad_bearer_tokens(client_factory: ClientFactory, alice: httpx.AsyncClient) -> None:
    for value in ["Bearer nope", "Bearer hb_" + "x" * 43, "Bearer " + "hb_" * 1000, "Basic abc"]:
        c = await client_factory(headers={"Authorization": value})
        r = await c.get("/api/me")
        assert r.status_code == 401, value
        assert error_code(r) == "unauthorized"


async def test_token_names_bounded(alice: httpx.AsyncClient) -> None:
    r = await alice.post("/api/tokens", json={"name": "x" * 65})
    assert error_code(r) == "too_long"
    r = await alice.post("/api/tokens", json={"name": "   "})
    assert error_code(r) == "bad_request"
    r = await alice.post("/api/tokens", json={"name": "a\x00b"})
    assert error_code(r) == "bad_request"


async def test_change_password(alice: httpx.AsyncClient, client_factory: ClientFactory) -> None:
    other = await client_factory("alice", register=False)
    r = await alice.put(
        "/api/me/password", json={"old_password": "wrong password", "new_password": "new secret!"}
    )
    assert r.status_code == 403
    assert error_code(r) == "wrong_password"
    r = await alice.put(
        "/api/me/password", json={"old_password": PASSWORD, "new_password": "new secret!"}
    )
    assert r.status_code == 204
    assert (await alice.get("/api/me")).status_code == 200  # this session stays
    assert (await other.get("/api/me")).status_code == 401  # the others end
    fresh = await client_factory()
    r = await fresh.post("/api/login", json={"name": "alice", "password": PASSWORD})
    assert r.status_code == 401
    r = await fresh.post("/api/login", json={"name": "alice", "password": "new secret!"})
    assert r.status_code == 200


async def test_users(alice: httpx.AsyncClient, bob: httpx.AsyncClient) -> None:
    users = (await bob.get("/api/users")).json()
    assert [u["name"] for u in users] == ["alice", "bob"]
    assert all(u["online"] is False for u in users)
    page = (await bob.get("/api/users", params={"after": users[0]["id"], "limit": 1})).json()
    assert [u["name"] for u in page] == ["bob"]
    assert (await bob.get("/api/users/ALICE")).json()["name"] == "alice"
    r = await bob.get("/api/users/nobody")
    assert r.status_code == 404
    assert error_code(r) == "not_found"
    r = await bob.get("/api/users", params={"limit": 0})
    assert r.status_code == 422
    assert error_code(r) == "invalid_request"


async def test_anonymous_is_refused(anon: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/me"),
        ("GET", "/api/sessions"),
        ("GET", "/api/tokens"),
        ("GET", "/api/users"),
        ("GET", "/api/rooms"),
        ("GET", "/api/conversations"),
        ("POST", "/api/rooms"),
    ]:
        r = await anon.request(method, path, json={"name": "x"})
        assert r.status_code == 401, path
        assert error_code(r) == "unauthorized"


async def test_cookie_secure_over_https(services: Services, app: object) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://chat.example",
        headers={"Origin": "https://chat.example"},
    ) as c:
        r = await c.post("/api/register", json={"name": "sam", "password": PASSWORD})
        assert r.status_code == 201
        assert "Secure" in r.headers["set-cookie"]
    assert BASE and ORIGIN  # the defaults are plain http
