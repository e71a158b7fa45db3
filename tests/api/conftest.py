"""Fixtures for the REST API: a real SqlStore on SQLite, the app in process.

Each client is an ``httpx.AsyncClient`` on ``ASGITransport`` with its own
cookie jar, sending our own ``Origin`` like a browser on the site would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from apihelp import BASE, ORIGIN, PASSWORD

from hubbub.auth.passwords import PasswordHasher
from hubbub.bus import LocalBus
from hubbub.config import Settings
from hubbub.core.accounts import Accounts
from hubbub.core.events import Event
from hubbub.core.hub import Hub
from hubbub.store import open_store
from hubbub.web.deps import Services
from hubbub.web.http import create_web_app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        login_attempts_per_account=5,
        login_attempts_per_address=8,
    )


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    store = open_store(settings.effective_database_url())
    await store.start()
    bus = LocalBus()
    hub = Hub(
        store,
        bus,
        max_message_length=settings.max_message_length,
        max_topic_length=settings.max_topic_length,
    )
    accounts = Accounts(store, settings, PasswordHasher.fast(), bus)
    services = Services(
        settings=settings,
        store=store,
        bus=bus,
        hub=hub,
        accounts=accounts,
        fanout=None,  # type: ignore[arg-type]  # the REST API never touches it
    )
    try:
        yield services
    finally:
        await store.close()


@pytest.fixture
def events(services: Services) -> list[Event]:
    """Every event published on the bus, in order."""
    seen: list[Event] = []
    services.bus.add_listener(seen.append)
    return seen


@pytest.fixture
def app(services: Services) -> Any:
    return create_web_app(services)


ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


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
