"""Fixtures for the REST API: the app in process over the shared ``services``
(tests/conftest.py: a real SqlStore on SQLite in the test's tmp dir).

Each client is an ``httpx.AsyncClient`` on ``ASGITransport`` with its own
cookie jar, sending our own ``Origin`` like a browser on the site would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from apihelp import BASE, ORIGIN, PASSWORD, ClientFactory

from hubbub.app import create_app
from hubbub.config import Settings
from hubbub.core.events import Event
from hubbub.web.deps import Services


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """The shared test settings, with login limits low enough to reach in a test."""
    return make_settings(login_attempts_per_account=5, login_attempts_per_address=8)


@pytest.fixture
def events(services: Services) -> list[Event]:
    """Every event published on the bus, in order."""
    seen: list[Event] = []
    services.bus.add_listener(seen.append)
    return seen


@pytest.fixture
def app(services: Services) -> Any:
    """The whole ASGI stack, as served: proxy middleware, metrics, the API."""
    return create_app(services)


@pytest.fixture
async def client_factory(app: Any) -> AsyncIterator[ClientFactory]:
    clients: list[httpx.AsyncClient] = []

    async def make(
        name: str | None = None,
        password: str = PASSWORD,
        *,
        register: bool = True,
        headers: dict[str, str] | None = None,
        raise_app_exceptions: bool = True,
    ) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions),
            base_url=BASE,
            headers=ORIGIN if headers is None else headers,
        )
        clients.append(client)
        if name is not None:
            path = "/api/register" if register else "/api/login"
            r = await client.post(path, json={"name": name, "password": password}, headers=ORIGIN)
            assert r.status_code in (200, 201), r.text
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def anon(client_factory: ClientFactory) -> httpx.AsyncClient:
    return await client_factory()


@pytest.fixture
async def alice(client_factory: ClientFactory) -> httpx.AsyncClient:
    """The first user: the admin."""
    return await client_factory("alice")


@pytest.fixture
async def bob(client_factory: ClientFactory, alice: httpx.AsyncClient) -> httpx.AsyncClient:
    return await client_factory("bob")


@pytest.fixture
async def carol(client_factory: ClientFactory, bob: httpx.AsyncClient) -> httpx.AsyncClient:
    return await client_factory("carol")
