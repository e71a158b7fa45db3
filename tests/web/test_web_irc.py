"""The web client's IRC parts, in Chromium on the real modules: mIRC formatting
(app/mirc.js) rendered as styled spans from a fixed palette, text only as text."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from conftest import Hub, Session, running_hub, unique

sys.path.insert(0, str(Path(__file__).parents[1] / "irc"))
from ircservers import IrcServer, require

RENDER = """async (text) => {
  const f = await import("./static/app/format.js");
  const { render } = await import("preact");
  const { html } = await import("htm/preact");
  const div = document.createElement("div");
  render(html`<p>${f.ircText(text, null)}</p>`, div);
  return div.firstChild.innerHTML;
}"""


@pytest.fixture(scope="module")
def page(browser: Browser, hub: Hub) -> Any:
    context = browser.new_context()
    p = context.new_page()
    p.goto(hub.url)
    p.wait_for_selector(".auth")
    yield p
    context.close()


def render(page: Page, text: str) -> str:
    out: str = page.evaluate(RENDER, text)
    return out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("a \x02bold\x02 b", 'a <span class="mirc-b">bold</span> b'),
        ("\x1di\x1fu\x0f x", '<span class="mirc-i">i</span><span class="mirc-i mirc-u">u</span> x'),
        ("\x1es\x1e \x11m", '<span class="mirc-s">s</span> <span class="mirc-m">m</span>'),
        ("\x034red\x03 no", '<span style="color: rgb(255, 0, 0);">red</span> no'),
        (
            "\x0304,12x",
            '<span style="color: rgb(255, 0, 0); background-color: rgb(0, 0, 252);">x</span>',
        ),
        ("\x0399,99d", "d"),
        ("\x0352x", '<span style="color: rgb(255, 0, 0);">x</span>'),
        ("\x03,5x", ",5x"),
        ("\x0312,x", '<span style="color: rgb(0, 0, 252);">,x</span>'),
        ("\x16rev", '<span class="mirc-rev">rev</span>'),
        (
            "\x034,1\x16r",
            '<span style="color: rgb(0, 0, 0); background-color: rgb(255, 0, 0);">r</span>',
        ),
        (
            "\x02<script>alert(1)</script>",
            '<span class="mirc-b">&lt;script&gt;alert(1)&lt;/script&gt;</span>',
        ),
        (
            '\x034"><img src=x onerror=alert(1)>',
            '<span style="color: rgb(255, 0, 0);">"&gt;&lt;img src=x onerror=alert(1)&gt;</span>',
        ),
        ("a\x07b\x01c", "abc"),
    ],
)
def test_mirc_formatting(page: Page, text: str, expected: str) -> None:
    assert render(page, text) == expected


def test_mirc_links_and_scripts_stay_text(page: Page) -> None:
    out = render(page, "\x02see https://example.org\x02 \x0303<script>x()</script>")
    assert '<a href="https://example.org"' in out
    assert "<script>" not in out
    assert "&lt;script&gt;x()&lt;/script&gt;" in out
    # nothing ran and no script element exists
    assert page.evaluate("document.querySelectorAll('p script, div script').length") == 0


def test_strip_and_has(page: Page) -> None:
    got = page.evaluate(
        """async () => { const m = await import("./static/app/mirc.js");
        return [m.stripMirc("\\x02a\\x0304,05b\\x0fc"), m.hasMirc("x\\x1fy"), m.hasMirc("xy")]; }"""
    )
    assert got == ["abc", True, False]


# --- the Networks dialog --------------------------------------------------------------


def open_networks(s: Session) -> Locator:
    s.page.get_by_role("button", name="Networks").click()
    dialog = s.page.get_by_role("dialog", name="IRC networks")
    expect(dialog).to_be_visible()
    return dialog


def fill_network(dialog: Locator, name: str, port: int, nick: str, **more: str) -> None:
    dialog.get_by_role("button", name="Add a network").click()
    form = dialog.locator("form.network-form")
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=host]").fill("127.0.0.1")
    form.locator("input[name=port]").fill(str(port))
    form.locator("input[name=tls]").uncheck()
    form.locator("input[name=nick]").fill(nick)
    for key, value in more.items():
        form.locator(f"[name={key}]").fill(value)
    form.get_by_role("button", name="Add and connect").click()


def test_networks_private_server_refused_clearly(sessions: Any) -> None:
    s = sessions()
    dialog = open_networks(s)
    expect(dialog.locator(".network-list")).to_contain_text("No networks yet")
    fill_network(dialog, "home", 6667, "ada")
    expect(dialog.get_by_role("alert")).to_contain_text("may not connect to that IRC server")
    # the form stays, with what was typed
    expect(dialog.locator("input[name=name]")).to_have_value("home")


@pytest.fixture(scope="module")
def irc_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub that may connect to IRC servers on loopback (the tests' InspIRCd)."""
    with running_hub(
        tmp_path_factory.mktemp("irchub"), HUBBUB_IRC_ALLOW_PRIVATE_ADDRESSES="true"
    ) as h:
        yield h


@pytest.fixture(scope="module")
def inspircd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IrcServer]:
    server = IrcServer("inspircd", require("inspircd"), tmp_path_factory.mktemp("inspircd"))
    server.start()
    yield server
    server.stop()


def test_networks_add_edit_disconnect_remove(
    browser: Browser, irc_hub: Hub, inspircd: IrcServer
) -> None:
    s = Session(browser, irc_hub, unique("netuser"))
    try:
        nick = unique("ada")
        dialog = open_networks(s)
        fill_network(dialog, "testnet", inspircd.port, nick, autojoin="#webnet")
        row = dialog.locator(".network-row", has_text="testnet")
        expect(row.locator(".state-text")).to_have_text("connected", timeout=20_000)
        expect(row.locator(".net-nick")).to_have_text(nick)
        # the sidebar groups the network's channel under it, with its state
        section = s.page.locator("nav section.irc", has_text="testnet")
        expect(section.locator(".net-state-label")).to_contain_text("connected")
        expect(section.locator(".conv", has_text="webnet")).to_be_visible(timeout=20_000)

        row.get_by_role("button", name="Edit").click()
        form = dialog.locator("form.network-form")
        expect(form.locator("input[name=nick]")).to_have_value(nick)
        form.locator("input[name=realname]").fill("Ada L.")
        form.get_by_role("button", name="Save").click()
        expect(row).to_be_visible()

        row.get_by_role("button", name="Disconnect").click()
        expect(row.locator(".state-text")).to_have_text("disconnected", timeout=20_000)
        expect(row.get_by_role("button", name="Connect")).to_be_visible()

        row.get_by_role("button", name="Remove").click()
        row.get_by_role("group", name="Confirm removal").get_by_role(
            "button", name="Remove"
        ).click()
        expect(dialog.locator(".network-row")).to_have_count(0)
        expect(s.page.locator("nav section.irc")).to_have_count(0)
        assert not s.errors, s.errors
    finally:
        s.close()
