"""The client under a base path (/chat/), on a server with registration closed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from conftest import PASSWORD, Hub, running_hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_hub(
        tmp_path_factory.mktemp("chat"),
        base_path="/chat",
        HUBBUB_BASE_PATH="/chat",
        HUBBUB_REGISTRATION_OPEN="false",
    ) as h:
        h.cli("user", "add", "carol", "--password-stdin", stdin=PASSWORD + "\n")
        yield h


def test_page_and_assets_under_the_base_path(hub: Hub) -> None:
    page = httpx.get(hub.url)
    assert page.status_code == 200
    assert '<base href="/chat/">' in page.text
    assert "script-src 'self' 'sha256-" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-cache"
    for asset in ("static/app/main.js", "static/vendor/preact.mjs", "static/manifest.webmanifest"):
        assert httpx.get(hub.url + asset).status_code == 200, asset
    assert httpx.get(hub.url + "static/nope.js").status_code == 404
    assert httpx.get(hub.url + "static/../../pyproject.toml").status_code == 404


def test_sign_up_closed_then_log_in_and_chat_under_chat(browser: Browser, hub: Hub) -> None:
    context = browser.new_context()
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(hub.url)
        # GET /api/registration under the prefix: sign-up is not offered at all
        expect(page.locator("#registration-closed")).to_contain_text(
            "Registration is closed on this server"
        )
        expect(page.get_by_role("button", name="Create an account")).to_have_count(0)

        page.get_by_label("Name").fill("carol")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.locator(".conn")).to_have_attribute("data-state", "online")
        page.locator("#composer").fill("/join under-a-prefix")
        page.locator("#composer").press("Enter")
        expect(page.locator(".conv-title")).to_contain_text("under-a-prefix")
        page.locator("#composer").fill("hello from /chat/")
        page.locator("#composer").press("Enter")
        expect(page.locator(".msg .text", has_text="hello from /chat/")).to_have_count(1)
        cookies = context.cookies()
        assert [c["path"] for c in cookies if c["name"] == "hubbub_session"] == ["/chat"]

        page.reload()
        expect(page.locator(".msg .text", has_text="hello from /chat/")).to_have_count(1)
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()
        assert not errors, errors
    finally:
        context.close()


def test_static_routes_absent_without_a_client(tmp_path: Path) -> None:
    from hubbub.web.static import static_routes

    assert static_routes(tmp_path) == []
