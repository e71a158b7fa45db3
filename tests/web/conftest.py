"""Browser tests of the web client: Playwright (sync API) driving Debian's Chromium
against a real ``hubbub serve`` on a loopback port.

- ``hub``: one ``hubbub serve`` subprocess per module (SQLite in a tmp dir), with
  ``.url``, ``.restart()`` and ``.stop()``; restarts keep port and data.
- ``browser``: one headless Chromium per module (``/usr/bin/chromium``, never a
  downloaded one); every test opens its own contexts, so tests stay independent.
- ``user(hub)``/``signed_in(browser, hub, name)``: an account over REST, then a
  browser context holding its session cookie, with the page open.

Tests that use ``browser`` are skipped, with the reason, when
``/usr/bin/chromium`` is absent (``./scripts/setup-web`` installs it); in CI
(``CI`` set) they fail instead, as for the other real peers.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from testenv import scaled, service_missing

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
PASSWORD = "correct horse battery"
ADMIN = "boss"  # the first account of a test server: it registers the others

from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright  # noqa: E402

expect.set_options(timeout=scaled(10_000))
_names = itertools.count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Hub:
    """``hubbub serve`` in a subprocess; ``restart()`` keeps port and data."""

    data_dir: Path
    port: int
    env: dict[str, str]
    base_path: str = ""
    process: subprocess.Popen[bytes] | None = None
    admin: httpx.Client | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.data_dir.parent / f"hubbub-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}/"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        hubbub = Path(sys.executable).with_name("hubbub")
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(hubbub), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=out,
            )
        deadline = time.monotonic() + scaled(20)
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"hubbub serve exited; see {self.log}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + "api/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise AssertionError("hubbub serve did not become healthy")

    def close(self) -> None:
        self.stop()
        if self.admin is not None:
            self.admin.close()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=scaled(15))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def cli(self, *args: str, stdin: str = "") -> None:
        hubbub = Path(sys.executable).with_name("hubbub")
        subprocess.run(
            [str(hubbub), *args, "--data-dir", str(self.data_dir)],
            env=self.env,
            input=stdin.encode(),
            check=True,
            capture_output=True,
            timeout=scaled(30),
        )

    def register(self, name: str) -> None:
        """An account for ``name`` (if new), made by the admin: no per-address limit."""
        if self.admin is None:
            self.admin = httpx.Client(base_url=self.url + "api/", headers={"Origin": self.origin})
            r = self.admin.post("register", json={"name": ADMIN, "password": PASSWORD})
            if r.status_code != 201:
                self.admin.post(
                    "login", json={"name": ADMIN, "password": PASSWORD}
                ).raise_for_status()
        r = self.admin.post("register", json={"name": name, "password": PASSWORD})
        assert r.status_code in (201, 409), r.text

    @contextlib.contextmanager
    def api(self, name: str | None = None) -> Iterator[httpx.Client]:
        """An HTTP client for the API, logged in as ``name`` (registered if new)."""
        with httpx.Client(base_url=self.url + "api/", headers={"Origin": self.origin}) as client:
            if name is not None:
                self.register(name)
                client.post("login", json={"name": name, "password": PASSWORD}).raise_for_status()
            yield client


def hub_env(**changes: str) -> dict[str, str]:
    env = {
        **os.environ,
        "HUBBUB_ARGON2_TIME_COST": "1",
        "HUBBUB_ARGON2_MEMORY_KIB": "8",
        "HUBBUB_ARGON2_PARALLELISM": "1",
        "HUBBUB_SEND_RATE": "1000",
        "HUBBUB_SEND_BURST": "1000",
        "HUBBUB_LOGIN_ATTEMPTS_PER_ADDRESS": "1000",
        "HUBBUB_SHUTDOWN_TIMEOUT": "2",
        "HUBBUB_LOG_LEVEL": "warning",
    }
    env.update(changes)
    for key in ("HUBBUB_CONFIG", "HUBBUB_DATABASE_URL", "HUBBUB_REDIS_URL"):
        if key not in changes:
            env.pop(key, None)
    return env


@contextlib.contextmanager
def running_hub(tmp: Path, base_path: str = "", **env: str) -> Iterator[Hub]:
    hub = Hub(data_dir=tmp / "data", port=free_port(), env=hub_env(**env), base_path=base_path)
    hub.start()
    try:
        yield hub
    finally:
        hub.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_hub(
        tmp_path_factory.mktemp("hub"),
        HUBBUB_LOGIN_ATTEMPTS_PER_ACCOUNT="3",
        HUBBUB_WS_REPLAY_LIMIT="8",  # so a test can fall too far behind cheaply
    ) as h:
        yield h


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():  # a skip locally, a failure in CI
        service_missing(f"{CHROMIUM} is absent: ./scripts/setup-web installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


class Session:
    """A browser context logged in as one user, with its page."""

    def __init__(self, browser: Browser, hub: Hub, name: str, **options: Any) -> None:
        self.hub = hub
        self.name = name
        self.context: BrowserContext = browser.new_context(
            viewport=options.pop("viewport", {"width": 1280, "height": 800}), **options
        )
        self.errors: list[str] = []
        hub.register(name)
        r = self.context.request.post(
            hub.url + "api/login", data={"name": name, "password": PASSWORD}
        )
        assert r.ok, r.text()
        self.page: Page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(hub.url)
        expect(self.page.locator(".conn")).to_have_attribute("data-state", "online")

    def close(self) -> None:
        self.context.close()

    # helpers ----------------------------------------------------------------------
    def type(self, text: str) -> None:
        box = self.page.locator("#composer")
        box.fill(text)
        box.press("Enter")

    def open(self, title: str) -> None:
        self.page.locator("nav .conv", has_text=title).first.click()
        expect(self.page.locator(".conv-title")).to_contain_text(title.lstrip("#"))

    def texts(self) -> list[str]:
        """The texts of the messages shown (not the pending ones)."""
        return self.page.locator(".messages .msg:not(.pending) .text").all_inner_texts()


@pytest.fixture
def sessions(browser: Browser, hub: Hub) -> Iterator[Any]:
    opened: list[Session] = []

    def open_session(name: str | None = None, **options: Any) -> Session:
        s = Session(browser, hub, name or unique("user"), **options)
        opened.append(s)
        return s

    yield open_session
    for s in opened:
        assert not s.errors, f"page errors for {s.name}: {s.errors}"
        s.close()
