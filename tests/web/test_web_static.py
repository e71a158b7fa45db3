"""web/static.py in process: the page's <base href> follows the base path (configured
or from a trusted proxy's X-Request-Base), its CSP allows the import map by hash,
assets (vendored ones too) are revalidated by ETag."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from hubbub.app import build_services, close_services, create_app
from hubbub.web.static import STATIC_DIR


@pytest.fixture
async def make_client(make_settings: Callable[..., Any]) -> AsyncIterator[Any]:
    built: list[Any] = []

    async def make(**changes: Any) -> httpx.AsyncClient:
        services = await build_services(make_settings(**changes))
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(services)), base_url="http://testserver"
        )
        built.append((services, client))
        return client

    yield make
    for services, client in built:
        await client.aclose()
        await close_services(services)


async def test_page_at_root_with_csp(make_client: Any) -> None:
    client = await make_client()
    page = await client.get("/")
    assert page.status_code == 200
    assert '<base href="/">' in page.text
    importmap = re.search(r'<script type="importmap">(.*?)</script>', page.text, re.S)
    assert importmap is not None
    digest = base64.b64encode(hashlib.sha256(importmap.group(1).encode()).digest()).decode()
    csp = page.headers["content-security-policy"]
    assert f"script-src 'self' 'sha256-{digest}'" in csp
    assert "object-src 'none'" in csp and "frame-ancestors 'self'" in csp
    assert "'unsafe-inline'" not in csp
    redirect = await client.get("/index.html")
    assert redirect.status_code == 308 and redirect.headers["location"] == "/"


async def test_assets_cache_policy(make_client: Any) -> None:
    client = await make_client()
    app = await client.get("/static/app/main.js")
    assert app.status_code == 200
    assert app.headers["cache-control"] == "no-cache"
    assert "javascript" in app.headers["content-type"]
    if (STATIC_DIR / "vendor" / "preact.mjs").is_file():  # after ./scripts/setup-web
        vendor = await client.get("/static/vendor/preact.mjs")
        assert vendor.headers["cache-control"] == "no-cache"
        again = await client.get(
            "/static/vendor/preact.mjs", headers={"If-None-Match": vendor.headers["etag"]}
        )
        assert again.status_code == 304
    worker = await client.get("/sw.js")
    assert worker.status_code == 200
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["cache-control"] == "no-cache"
    manifest = await client.get("/static/manifest.webmanifest")
    assert manifest.json()["start_url"] == "../"


async def test_base_path_from_a_trusted_proxy(make_client: Any) -> None:
    client = await make_client(trust_forwarded=True)  # httpx's ASGI transport is 127.0.0.1
    page = await client.get("/", headers={"X-Request-Base": "/chat/"})
    assert '<base href="/chat/">' in page.text
    ignored = await client.get("/", headers={"X-Request-Base": '/a"><script>'})
    assert '<base href="/">' in ignored.text  # a bad value is ignored, never echoed


async def test_base_path_from_settings(make_client: Any) -> None:
    client = await make_client(base_path="/chat")
    page = await client.get("/chat/")
    assert '<base href="/chat/">' in page.text
    assert (await client.get("/chat/static/app/main.js")).status_code == 200
