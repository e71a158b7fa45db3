"""The one JSON shape of errors, OpenAPI, health, and no secret in the logs."""

from __future__ import annotations

import logging

import httpx
import pytest
from apihelp import PASSWORD, ClientFactory, error_code

from hubbub.web.deps import Services


async def test_unknown_endpoint_and_method(alice: httpx.AsyncClient) -> None:
    r = await alice.get("/api/nothing-here")
    assert r.status_code == 404
    assert error_code(r) == "not_found"
    r = await alice.delete("/api/me")
    assert r.status_code == 405
    assert error_code(r) == "method_not_allowed"
    r = await alice.put("/api/conversations")
    assert error_code(r) == "method_not_allowed"


async def test_internal_errors_do_not_leak(
    services: Services, client_factory: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await client_factory("alice", raise_app_exceptions=False)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals: /etc/hubbub/db password=hunter2")

    monkeypatch.setattr(services.hub, "conversations", broken)
    r = await alice.get("/api/conversations")
    assert r.status_code == 500
    assert error_code(r) == "internal"
    assert "hunter2" not in r.text
    assert "RuntimeError" not in r.text


async def test_openapi_and_docs(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/api/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["info"]["title"] == "Hubbub"
    paths = spec["paths"]
    for path in [
        "/api/register",
        "/api/login",
        "/api/logout",
        "/api/me",
        "/api/me/password",
        "/api/sessions",
        "/api/sessions/{session_id}",
        "/api/tokens",
        "/api/tokens/{token_id}",
        "/api/users",
        "/api/users/{name}",
        "/api/rooms",
        "/api/rooms/join",
        "/api/dms",
        "/api/conversations",
        "/api/conversations/{conversation_id}",
        "/api/conversations/{conversation_id}/join",
        "/api/conversations/{conversation_id}/leave",
        "/api/conversations/{conversation_id}/members",
        "/api/conversations/{conversation_id}/topic",
        "/api/conversations/{conversation_id}/messages",
        "/api/conversations/{conversation_id}/read",
        "/api/search",
        "/api/health",
    ]:
        assert path in paths, path
    schemas = spec["components"]["schemas"]
    assert schemas["SendIn"]["properties"]["text"]["maxLength"] == 65536
    assert "ErrorOut" in schemas
    docs = await anon.get("/api/docs")
    assert docs.status_code == 200
    assert "/api/openapi.json" in docs.text


async def test_health(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/api/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_health_when_store_fails(
    anon: httpx.AsyncClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down() -> int:
        raise OSError("connection refused")

    monkeypatch.setattr(services.store, "count_users", down)
    r = await anon.get("/api/health")
    assert r.status_code == 503
    assert error_code(r) == "unavailable"


async def test_no_secret_in_logs(
    client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = await client_factory("alice")
    cookie = alice.cookies["hubbub_session"]
    anon = await client_factory()
    await anon.post("/api/login", json={"name": "alice", "password": "wrong password!"})
    r = await anon.post("/api/login", json={"name": "alice", "password": PASSWORD})
    second_cookie = anon.cookies["hubbub_session"]
    token = (await alice.post("/api/tokens", json={"name": "bot"})).json()["token"]
    bot = await client_factory(headers={"Authorization": f"Bearer {token}"})
    assert (await bot.get("/api/me")).status_code == 200
    r = await alice.put(
        "/api/me/password", json={"old_password": PASSWORD, "new_password": "the new one!"}
    )
    assert r.status_code == 204
    r = await anon.post("/api/register", json={"name": "bob", "password": 12345678})
    assert r.status_code == 422
    logged = "\n".join(
        f"{rec.getMessage()} {rec.args!r} {rec.exc_text or ''}" for rec in caplog.records
    )
    # the audit trail is there, without the secrets
    assert "login failed: wrong password for alice" in logged
    assert "login: alice" in logged
    assert "API token created: alice" in logged
    assert "password changed: alice" in logged
    for secret in [PASSWORD, "wrong password!", "the new one!", "12345678", cookie, token]:
        assert secret not in logged
    assert second_cookie not in logged


async def test_unknown_login_names_are_not_logged(
    anon: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # people type their password into the name field
    r = await anon.post("/api/login", json={"name": "MyS3cretPass", "password": "whatever!"})
    assert r.status_code == 401
    assert "login failed: unknown name" in caplog.text
    assert "MyS3cretPass" not in caplog.text
