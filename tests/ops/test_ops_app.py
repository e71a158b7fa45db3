"""The composition root: services, the app on real uvicorn, metrics, shutdown."""

from __future__ import annotations

import logging

import httpx
import pytest

from hubbub.app import build_services, close_services
from hubbub.bus import LocalBus
from hubbub.config import Settings
from hubbub.core.model import MessageKind
from hubbub.web.deps import Services
from hubbub.web.metrics import CountingBus


async def test_build_services_creates_the_data_dir_and_a_working_store(settings: Settings) -> None:
    assert not settings.data_dir.exists()
    services = await build_services(settings)
    try:
        assert settings.sqlite_path().is_file()
        assert isinstance(services.bus, CountingBus)
        assert isinstance(services.bus.inner, LocalBus)
        alice = await services.accounts.register("alice", "password one", trusted=True)
        assert alice.is_admin  # the first user
        room = await services.hub.create_room(alice, "lobby")
        await services.hub.post(alice, room.conversation.id, "hello", nonce="n1")
    finally:
        await close_services(services)
    # everything acknowledged is there after a restart
    again = await build_services(settings)
    try:
        user = await again.store.get_user_by_name("alice")
        assert user is not None
        view = (await again.hub.conversations(user))[0]
        history = await again.hub.history(user, view.conversation.id)
        assert [m.text for m in history if m.kind is MessageKind.TEXT] == ["hello"]
    finally:
        await close_services(again)


async def test_server_answers_health_and_metrics(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url) as client:
        health = await client.get("/api/health")
        assert health.status_code == 200
        metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "hubbub_http_requests_total" in metrics.text
    assert 'status="200"' in metrics.text
    assert "hubbub_ws_connections 0.0" in metrics.text


async def test_messages_posted_are_counted(services: Services) -> None:
    alice = await services.accounts.register("alice", "password one", trusted=True)
    room = await services.hub.create_room(alice, "lobby")
    for i in range(3):
        await services.hub.post(alice, room.conversation.id, f"m{i}")
    assert services.metrics is not None
    text = services.metrics.render().decode()
    # the room's join message and three texts
    assert "hubbub_messages_posted_total 4.0" in text
    # each append committed alone here: four group-commit batches of one
    assert "hubbub_store_commit_batch_size_count 4.0" in text
    assert "hubbub_store_commit_batch_size_sum 4.0" in text


async def test_access_log_has_no_query_string_and_no_secret(
    make_settings, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    from testenv import start_server

    settings = make_settings(access_log=True)
    services = await build_services(settings)
    running = await start_server(services)
    try:
        with caplog.at_level(logging.INFO, logger="hubbub.access"):
            async with httpx.AsyncClient(base_url=running.url) as client:
                await client.get(
                    "/api/health?token=hb_SECRETSECRETSECRET&password=hunter2",
                    headers={
                        "Authorization": "Bearer hb_SECRETSECRETSECRET",
                        "Cookie": "hubbub_session=SESSIONSECRET",
                    },
                )
    finally:
        await running.stop()
        await close_services(services)
    lines = [r.getMessage() for r in caplog.records if r.name == "hubbub.access"]
    assert len(lines) == 1
    assert '"GET /api/health" 200' in lines[0]
    for secret in ("SECRETSECRET", "hunter2", "SESSIONSECRET", "token="):
        assert secret not in caplog.text


def test_metrics_registries_are_separate_and_hooks_count() -> None:
    from hubbub.web.metrics import Metrics

    one, two = Metrics(), Metrics()
    one.message_posted()
    one.observe_batch(7)
    one.ws_opened()
    one.ws_opened()
    one.ws_closed()
    text = one.render().decode()
    assert "hubbub_messages_posted_total 1.0" in text
    assert "hubbub_store_commit_batch_size_count 1.0" in text
    assert 'hubbub_store_commit_batch_size_bucket{le="8.0"} 1.0' in text
    assert "hubbub_ws_connections 1.0" in text
    assert "hubbub_ws_connections_opened_total 2.0" in text
    assert "hubbub_messages_posted_total 0.0" in two.render().decode()
    two.count_ws_connections(lambda: 5)
    two.ws_opened()
    assert "hubbub_ws_connections 5.0" in two.render().decode()


async def test_build_services_with_unreachable_redis_fails_and_cleans_up(
    make_settings,  # type: ignore[no-untyped-def]
) -> None:
    from hubbub.bus.redis import BusUnavailable

    settings = make_settings(redis_url="redis://127.0.0.1:1/0")
    with pytest.raises(BusUnavailable, match="cannot subscribe to Redis"):
        await build_services(settings)
