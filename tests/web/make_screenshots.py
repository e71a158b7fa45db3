"""Screenshots of the web client for the README, and the PNG icons.

    .venv/bin/python tests/web/make_screenshots.py

Starts a Hubbub on a free port with a few people talking, then saves
docs/screenshots/{desktop,phone}-{light,dark}.png; starts Debian's InspIRCd
(as the IRC tests do) and saves docs/screenshots/desktop-irc.png, an IRC
channel of a network alice added; renders src/hubbub/static/icons/icon.svg to
the PNG icons of the web app manifest.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests" / "web"), str(ROOT / "tests" / "irc"), str(ROOT / "tests")]

import httpx  # noqa: E402
from ircservers import IrcServer, require  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORD, Hub, running_hub  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
ICONS = ROOT / "src" / "hubbub" / "static" / "icons"

ROOM_TALK = [
    (
        "maya",
        "text",
        "Morning! The 0.3 release notes are up: https://hubbub.example.org/releases/0.3",
    ),
    ("jonas", "text", "Nice. Did the reconnect fix make it in?"),
    (
        "maya",
        "text",
        "It did: a dropped connection now resumes from the last message it saw, so nothing shows twice.",
    ),
    ("ren", "action", "is testing it on the train with the flakiest Wi-Fi in Europe"),
    ("jonas", "text", "ha, the perfect test bench"),
    ("alice", "text", "I'll write the upgrade notes for the Debian package today."),
    (
        "ren",
        "text",
        "alice: can you mention the new base path option too? We run it under /chat/ behind nginx.",
    ),
    ("alice", "text", "Will do!"),
    ("maya", "text", "Standup in 10 minutes, same room as always."),
]


def seed(hub: Hub) -> None:
    # alice is the first account, so the admin who registers the others
    hub.admin = httpx.Client(base_url=hub.url + "api/", headers={"Origin": hub.origin})
    hub.admin.post("register", json={"name": "alice", "password": PASSWORD}).raise_for_status()
    with contextlib.ExitStack() as stack:
        clients = {
            n: stack.enter_context(hub.api(n)) for n in ("alice", "maya", "jonas", "ren", "sam")
        }
        talk(clients)


def talk(clients: dict[str, httpx.Client]) -> None:
    a = clients["alice"]
    a.post("rooms", json={"name": "general", "topic": "Everything Hubbub: releases, help, chatter"})
    a.post("rooms", json={"name": "ops", "topic": "Deploys and alerts"})
    a.post("rooms", json={"name": "random"})
    rooms = {c["name"]: c["id"] for c in a.get("conversations").json()}
    for name in ("maya", "jonas", "ren", "sam"):
        for room in ("general", "ops", "random"):
            clients[name].post("rooms/join", json={"name": room})
    for sender, kind, text in ROOM_TALK:
        clients[sender].post(
            f"conversations/{rooms['general']}/messages", json={"text": text, "kind": kind}
        )
    a.put(f"conversations/{rooms['general']}/read", json={"seq": 100})
    for i, text in enumerate(["deploy of 0.3 to staging finished", "all health checks green"]):
        clients["sam"].post(
            f"conversations/{rooms['ops']}/messages", json={"text": text, "nonce": f"o{i}"}
        )
    for i in range(4):
        clients["jonas"].post(
            f"conversations/{rooms['random']}/messages", json={"text": f"photo dump {i}"}
        )
    dm = clients["maya"].post("dms", json={"name": "alice"}).json()
    clients["maya"].post(
        f"conversations/{dm['id']}/messages", json={"text": "got a minute after standup?"}
    )
    dm2 = clients["ren"].post("dms", json={"name": "alice"}).json()
    clients["ren"].post(
        f"conversations/{dm2['id']}/messages", json={"text": "thanks for the review!"}
    )
    a.put(f"conversations/{dm2['id']}/read", json={"seq": 100})


IRC_TALK = [
    ("grace", "morning all, \x02release day\x02 for 2.4 \x0303\u2714\x03"),
    ("linus", "\x01ACTION rebases the release branch one last time\x01"),
    ("grace", "alice: are the packaging notes in the wiki up to date?"),
    ("linus", "CI is \x0303,01green\x03 on every target, \x1dfinally\x1d"),
    ("grace", "changelog: https://example.org/changes/2.4"),
]


class IrcUser:
    """A plain IRC client on a blocking socket: just enough to talk in a channel."""

    def __init__(self, port: int, nick: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""
        self.send(f"NICK {nick}", f"USER {nick} 0 * :{nick.title()}")
        self.wait(b" 001 ")

    def send(self, *lines: str) -> None:
        self.sock.sendall(b"".join(line.encode() + b"\r\n" for line in lines))

    def wait(self, needle: bytes) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            while b"\r\n" in self.buf:
                line, self.buf = self.buf.split(b"\r\n", 1)
                if line.startswith(b"PING"):
                    self.send("PONG" + line[4:].decode())
                if needle in line:
                    return
            self.buf += self.sock.recv(4096)
        raise TimeoutError(needle)


def irc_screenshot(browser: Any, hub: Hub, ircd: IrcServer) -> None:
    with hub.api("alice") as a:
        a.post(
            "networks",
            json={
                "name": "libre",
                "host": "127.0.0.1",
                "port": ircd.port,
                "tls": False,
                "nick": "alice",
                "autojoin": ["#hubbub"],
                "connect": True,
            },
        ).raise_for_status()
        deadline = time.monotonic() + 30
        while not any(c["name"] == "#hubbub" for c in a.get("conversations").json()):
            if time.monotonic() > deadline:
                raise TimeoutError("alice's IRC network did not join #hubbub")
            time.sleep(0.2)
        people = [IrcUser(ircd.port, n) for n in ("grace", "linus")]
        for person in people:
            person.send("JOIN #hubbub")
            person.wait(b" 366 ")
        channel = next(c for c in a.get("conversations").json() if c["name"] == "#hubbub")
        (network,) = a.get("networks").json()
        a.post(  # alice joined first, so she is the channel's operator
            f"networks/{network['id']}/command",
            json={
                "command": "/topic #hubbub Hubbub \x02development\x02 | release 2.4 today",
                "conversation": channel["id"],
            },
        ).raise_for_status()
        for nick, text in IRC_TALK:
            people[0 if nick == "grace" else 1].send(f"PRIVMSG #hubbub :{text}")
            time.sleep(0.15)
        a.post(
            f"conversations/{channel['id']}/messages", json={"text": "yes, updated them last night"}
        )
        time.sleep(0.5)
        context = browser.new_context(
            color_scheme="dark", viewport={"width": 1280, "height": 760}, device_scale_factor=1
        )
        context.request.post(hub.url + "api/login", data={"name": "alice", "password": PASSWORD})
        context.add_init_script(
            "localStorage.setItem('hubbub:settings', JSON.stringify({notifyAsked: true}))"
        )
        page = context.new_page()
        page.goto(hub.url)
        page.wait_for_selector(".conn[data-state=online]", state="attached")
        page.locator("nav section.irc .conv", has_text="hubbub").click()
        page.wait_for_selector(".conv-title:has-text('#hubbub')")
        page.wait_for_selector("#members [data-nick=linus]")
        page.wait_for_timeout(400)
        page.wait_for_timeout(400)
        page.screenshot(path=str(OUT / "desktop-irc.png"))
        context.close()
        for person in people:
            person.send("QUIT :bye")
            person.sock.close()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_hub(Path(tmp), HUBBUB_IRC_ALLOW_PRIVATE_ADDRESSES="true") as hub,
        sync_playwright() as p,
    ):
        seed(hub)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        icon = browser.new_page(viewport={"width": 512, "height": 512})
        svg = (ICONS / "icon.svg").read_text()
        for size, name, pad in (
            (192, "icon-192.png", 0),
            (512, "icon-512.png", 0),
            (512, "maskable-512.png", 1),
        ):
            icon.set_viewport_size({"width": size, "height": size})
            inner = svg if not pad else svg.replace('rx="15"', 'rx="0"')
            icon.set_content(
                f"<style>html,body{{margin:0;background:transparent}}svg{{width:{size}px;height:{size}px;display:block}}</style>{inner}"
            )
            icon.screenshot(path=str(ICONS / name), omit_background=True)
        others = []
        for name in ("maya", "jonas"):  # online, so the member list shows presence
            ctx = browser.new_context()
            ctx.request.post(hub.url + "api/login", data={"name": name, "password": PASSWORD})
            page = ctx.new_page()
            page.goto(hub.url + "#/c/1")
            page.wait_for_selector(".conn[data-state=online]", state="attached")
            others.append(page)
        for device, options in (
            ("desktop", {"viewport": {"width": 1280, "height": 760}, "device_scale_factor": 1}),
            (
                "phone",
                {
                    "viewport": {"width": 390, "height": 760},
                    "device_scale_factor": 2,
                    "is_mobile": True,
                    "has_touch": True,
                },
            ),
        ):
            for theme in ("light", "dark"):
                context = browser.new_context(color_scheme=theme, **options)
                context.request.post(
                    hub.url + "api/login", data={"name": "alice", "password": PASSWORD}
                )
                context.add_init_script(
                    "localStorage.setItem('hubbub:settings', JSON.stringify({notifyAsked: true}))"
                )
                page = context.new_page()
                page.goto(hub.url)
                page.wait_for_selector(".conn[data-state=online]", state="attached")
                page.goto(hub.url + "#/c/1")
                page.wait_for_selector(".conn[data-state=online]", state="attached")
                page.wait_for_timeout(300)
                others[0].evaluate("window.hubbub.client.lastTyping.clear()")
                others[0].locator("#composer").press_sequentially("on my way", delay=5)
                page.locator("#composer").fill("Sounds good, see you there")
                page.wait_for_timeout(400)
                page.screenshot(path=str(OUT / f"{device}-{theme}.png"))
                if device == "phone" and theme == "light":
                    page.get_by_role("button", name="Open the conversation list").tap()
                    page.wait_for_timeout(400)
                    page.screenshot(path=str(OUT / "phone-drawer.png"))
                context.close()
        ircd = IrcServer("inspircd", require("inspircd"), Path(tmp) / "inspircd")
        ircd.start()
        try:
            irc_screenshot(browser, hub, ircd)
        finally:
            ircd.stop()
        browser.close()
    print("saved", *sorted(p.name for p in OUT.iterdir()))


if __name__ == "__main__":
    main()
