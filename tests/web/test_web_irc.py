"""The web client's IRC parts, in Chromium on the real modules: mIRC formatting
(app/mirc.js) rendered as styled spans from a fixed palette, text only as text."""

from __future__ import annotations

import asyncio
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from conftest import Hub, Session, running_hub, unique

sys.path.insert(0, str(Path(__file__).parents[1] / "irc"))
from ircservers import IrcServer, require
from rawirc import RawIrc

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
        # hex colours (\x04), with a background; a bad one resets the colours
        ("\x04FF8800orange", '<span style="color: rgb(255, 136, 0);">orange</span>'),
        (
            "\x04ff8800,000000x\x04 y",
            '<span style="color: rgb(255, 136, 0); background-color: rgb(0, 0, 0);">x</span> y',
        ),
        ("\x034r\x04zzz", '<span style="color: rgb(255, 0, 0);">r</span>zzz'),
        # unbalanced codes: left open to the end of the line, or closed with nothing open
        ("\x02\x1dopen", '<span class="mirc-b mirc-i">open</span>'),
        ("close\x02\x1f", "close"),
        ("\x0f\x03\x0fplain", "plain"),
        (
            "\x11mono\x11 \x1estrike",
            '<span class="mirc-m">mono</span> <span class="mirc-s">strike</span>',
        ),
        # colours survive a toggle, reset ends everything at once
        (
            "\x0303\x02g\x0fn",
            '<span class="mirc-b" style="color: rgb(0, 147, 0);">g</span>n',
        ),
        (
            "\x16\x0304,12both",
            '<span style="color: rgb(0, 0, 252); background-color: rgb(255, 0, 0);">both</span>',
        ),
        ("<b>&amp;</b>\x02", "&lt;b&gt;&amp;amp;&lt;/b&gt;"),
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


@pytest.mark.parametrize(
    ("numeric", "text", "expected"),
    [
        (
            "311",
            "bob ~b host.example * Bob the Builder",
            ["bob is ~b@host.example (Bob the Builder)", "reply", "whois"],
        ),
        (
            "312",
            "bob irc.example Example server",
            ["bob is connected to irc.example (Example server)", "reply", "whois"],
        ),
        ("317", "bob 3725 0", ["bob has been idle 1 h 2 min", "reply", "whois"]),
        ("319", "bob @#a +#b ", ["bob is on @#a +#b", "reply", "whois"]),
        ("330", "bob bobacct is logged in as", ["bob is logged in as bobacct", "reply", "whois"]),
        (
            "671",
            "bob is using a secure connection",
            ["bob is using a secure connection", "reply", "whois"],
        ),
        ("318", "bob End of /WHOIS list.", ["End of WHOIS for bob", "end", "whois"]),
        ("322", "#hub 12 [+nt] the \x02topic", ["#hub (12) [+nt] the \x02topic", "reply", "list"]),
        ("323", "End of channel list.", ["End of the channel list", "end", "list"]),
        ("401", "nobody No such nick/channel", ["nobody: No such nick/channel", "error", None]),
        (
            "441",
            "bob #hub They aren't on that channel",
            ["bob #hub: They aren't on that channel", "error", None],
        ),
        ("451", "You have not registered", ["You have not registered", "error", None]),
        (
            "005",
            "CHANTYPES=# are supported by this server",
            ["CHANTYPES=# are supported by this server", "info", None],
        ),
    ],
)
def test_server_replies_in_words(page: Page, numeric: str, text: str, expected: list[Any]) -> None:
    got = page.evaluate(
        """async ([numeric, text]) => { const r = await import("./static/app/ircreplies.js");
        const line = r.replyLine({ kind: "system", text, meta: { numeric } });
        return [line.text, line.level, line.group]; }""",
        [numeric, text],
    )
    assert got == expected


@pytest.mark.parametrize(
    ("numeric", "params", "expected"),
    [
        # the last parameter keeps its boundary: "0" is not read as a signon time
        (
            "317",
            ["bob", "3725", "0 seconds idle"],
            ["bob has been idle 1 h 2 min", "reply", "whois"],
        ),
        (
            "311",
            ["bob", "~b", "host.example", "*", "Bob  the Builder"],
            ["bob is ~b@host.example (Bob  the Builder)", "reply", "whois"],
        ),
        ("322", ["#hub", "3", ""], ["#hub (3)", "reply", "list"]),
        ("353", ["=", "#other", "@bob carol"], ["Names in #other: @bob carol", "reply", "names"]),
        ("366", ["#other", "End of /NAMES list."], ["End of NAMES for #other", "end", "names"]),
        ("401", ["no body", "No such nick"], ["no body: No such nick", "error", None]),
    ],
)
def test_server_replies_from_their_parameters(
    page: Page, numeric: str, params: list[str], expected: list[Any]
) -> None:
    """meta.params (a list) is read when present; the text is then only a fallback."""
    got = page.evaluate(
        """async ([numeric, params]) => { const r = await import("./static/app/ircreplies.js");
        const line = r.replyLine({ kind: "system", text: "x y z w v u", meta: { numeric, params } });
        return [line.text, line.level, line.group]; }""",
        [numeric, params],
    )
    assert got == expected


UNSENT = """async () => {
  const { MessageList } = await import("./static/app/ui/messages.js");
  const { render } = await import("preact");
  const { html } = await import("htm/preact");
  const ts = Date.now();
  const msg = (seq, kind, text, meta = null, sender = "ada", sender_id = 1) =>
    ({ id: "m" + seq, conversation: 9, seq, ts, sender, sender_id, kind, text, meta });
  const c = { id: 9, kind: "channel", network: 2, name: "#hub", read_seq: 4, markerSeq: 4, hi: 4, msgs: [
    msg(1, "text", "went out"),
    msg(2, "text", "lost?"),
    msg(3, "system", "not sent to IRC: the network is not connected (message 2)",
        { not_sent: 2, reason: "irc_not_connected" }, "", null),
    msg(4, "action", "waves", null),
    msg(5, "system", "maybe not sent to IRC: the process connected to this network did not answer (message 4)",
        { not_sent: 4, reason: "irc_unavailable", maybe: true }, "", null),
  ] };
  const sent = [];
  const chat = { me: { id: 1, name: "ada" }, pending: () => [], notices: new Map(), atBottom: true,
    matcher: null, conn: { state: "online" }, hasOlder: () => false, markRead() {}, loadOlder() {},
    send(conv, text, kind) { sent.push([conv.id, text, kind]); } };
  const div = document.createElement("div");
  document.body.append(div);
  render(html`<${MessageList} chat=${chat} c=${c} />`, div);
  const row = (seq) => div.querySelector(`[data-seq="${seq}"]`);
  const out = [1, 2, 3, 4, 5].map((s) => [row(s).className, row(s).querySelector(".irc-not-sent")?.textContent ?? null]);
  const again = [1, 2, 4].map((s) => row(s).querySelector(".irc-resend")?.textContent ?? null);
  row(2).querySelector(".irc-resend").click();
  row(4).querySelector(".irc-resend").click();
  div.remove();
  return { rows: out, again, sent };
}"""


def test_a_message_not_sent_to_irc_is_marked(page: Page) -> None:
    """The note the server stores (meta.not_sent = the message's seq) marks that
    message, and reads as an error itself."""
    got = page.evaluate(UNSENT)
    rows = got["rows"]
    assert "not-sent" not in rows[0][0] and rows[0][1] is None
    assert "not-sent" in rows[1][0] and rows[1][1] == "not sent to IRC"
    assert "irc-error" in rows[2][0]
    assert "not-sent" in rows[3][0] and rows[3][1] == "maybe not sent to IRC"
    assert "irc-error" in rows[4][0]
    # your own unsent messages offer "Send again": a new send of the same text and kind
    assert got["again"] == [None, "Send again", "Send again"]
    assert got["sent"] == [[9, "lost?", "text"], [9, "waves", "action"]]


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
        expect(form.locator("input[name=auto_away]")).to_be_checked()  # on by default
        form.locator("input[name=away_message]").fill("back soon")
        form.get_by_role("button", name="Save").click()
        expect(dialog.locator("form.network-form")).to_have_count(0)  # saved
        (saved,) = api_json(s, "networks")
        assert saved["auto_away"] is True and saved["away_message"] == "back soon"
        row.get_by_role("button", name="Edit").click()
        form = dialog.locator("form.network-form")
        expect(form.locator("input[name=away_message]")).to_have_value("back soon")
        form.locator("input[name=auto_away]").uncheck()
        expect(form.locator("input[name=away_message]")).to_have_count(0)
        form.get_by_role("button", name="Save").click()
        expect(dialog.locator("form.network-form")).to_have_count(0)
        assert api_json(s, "networks")[0]["auto_away"] is False

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


class RawClient:
    """tests/irc/rawirc.py's RawIrc on its own event loop thread, for sync tests."""

    def __init__(self, port: int, nick: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.irc_nick = nick
        self.irc: RawIrc = self.run(RawIrc.connect(port, nick))

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def send(self, *lines: str) -> None:
        self.run(self.irc.send(*lines))

    def expect(self, needle: bytes) -> bytes:
        line: bytes = self.run(self.irc.expect(lambda line: needle in line, timeout=20))
        return line

    def close(self) -> None:
        self.run(self.irc.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def test_irc_conversation_end_to_end(browser: Browser, irc_hub: Hub, inspircd: IrcServer) -> None:
    """The user adds a network in the dialog, /joins a channel from the server
    buffer, sees a raw client's coloured line formatted, answers; the raw client
    receives the answer (sent once) and the /me; composer commands go to the network."""
    s = Session(browser, irc_hub, unique("ircuser"))
    raw = RawClient(inspircd.port, unique("bob"))
    try:
        nick = unique("ada")
        dialog = open_networks(s)
        fill_network(dialog, "realnet", inspircd.port, nick)
        row = dialog.locator(".network-row", has_text="realnet")
        expect(row.locator(".state-text")).to_have_text("connected", timeout=20_000)
        dialog.get_by_role("button", name="Close").click()

        # the server buffer, then /join from its composer
        section = s.page.locator("nav section.irc", has_text="realnet")
        section.locator(".conv", has_text="server messages").click(timeout=20_000)
        s.type("/join #webchat")
        expect(s.page.locator(".conv-title")).to_have_text("#webchat", timeout=20_000)
        expect(section.locator(".conv", has_text="webchat")).to_be_visible()

        raw.send("JOIN #webchat")
        raw.expect(b"366")  # end of NAMES
        raw.send(
            "PRIVMSG #webchat :\x02bold\x02 and \x0304,01red on black\x03 <script>x()</script>"
        )
        msg = s.page.locator(".messages .msg", has_text="red on black")
        expect(msg.locator(".mirc-b")).to_have_text("bold")
        coloured = msg.locator("span[style]", has_text="red on black")
        expect(coloured).to_have_css("color", "rgb(255, 0, 0)")
        expect(coloured).to_have_css("background-color", "rgb(0, 0, 0)")
        expect(msg.locator(".text")).to_contain_text("<script>x()</script>")
        assert msg.locator("script").count() == 0

        # a line naming the user's nick is a mention (the server's meta.mention)
        raw.send(f"PRIVMSG #webchat :{nick}: ping")
        expect(s.page.locator(".messages .msg.highlight", has_text="ping")).to_be_visible()

        # members from irc_members, with the op prefix of the channel's creator
        members = s.page.locator("#members")
        expect(members.locator(f"[data-nick={nick}] .member-prefix")).to_have_text("@")
        expect(members.locator(f"[data-nick={raw.irc_nick}] .member-prefix")).to_have_text("")
        expect(s.page.get_by_role("button", name="Members")).to_contain_text("2")

        # plain text through the normal send: once, and the raw client gets it
        s.type("hello \x02back\x02")
        raw.expect(b"PRIVMSG #webchat :hello \x02back\x02")
        expect(s.page.locator(".messages .msg:not(.pending)", has_text="hello back")).to_have_count(
            1
        )
        expect(s.page.locator(".messages .msg.pending")).to_have_count(0)
        s.type("/me waves")
        raw.expect(b"PRIVMSG #webchat :\x01ACTION waves\x01")
        expect(s.page.locator(".messages .msg.kind-action", has_text="waves")).to_have_count(1)

        # a command through the network: /topic, rendered formatted in the header
        s.type("/topic the \x1dnew\x1d topic")
        raw.expect(b"TOPIC #webchat")
        expect(s.page.locator(".conv-head .irc-topic .mirc-i")).to_have_text("new")
        expect(s.page.locator("#composer")).to_have_value("")
        s.type("/notice #webchat heads up")
        raw.expect(b"NOTICE #webchat :heads up")
        expect(s.page.locator("#composer")).to_have_value("")  # the /notice is done
        s.type("/frobnicate now")
        expect(s.page.locator("#composer-error")).to_contain_text("Unknown command")
        assert not s.errors, s.errors
    finally:
        raw.close()
        s.close()


# --- client certificate, server replies ---------------------------------------------


def test_a_query_is_renamed_when_its_peer_changes_nick(
    browser: Browser, irc_hub: Hub, inspircd: IrcServer
) -> None:
    """A raw client writes to the user, then changes nick: the open query is
    renamed in the sidebar and its title, with the nick change in it."""
    s = Session(browser, irc_hub, unique("renameuser"))
    old, new = unique("peer"), unique("renamed")
    raw = RawClient(inspircd.port, old)
    try:
        nick = unique("ada")
        dialog = open_networks(s)
        fill_network(dialog, "renamenet", inspircd.port, nick, autojoin="#renameroom")
        row = dialog.locator(".network-row", has_text="renamenet")
        expect(row.locator(".state-text")).to_have_text("connected", timeout=20_000)
        dialog.get_by_role("button", name="Close").click()
        section = s.page.locator("nav section.irc", has_text="renamenet")
        expect(section.locator(".conv", has_text="renameroom")).to_be_visible(timeout=20_000)
        raw.send("JOIN #renameroom")
        raw.expect(b"366")
        raw.send(f"PRIVMSG {nick} :hello from {old}")
        section.locator(".conv", has_text=old).click(timeout=20_000)
        expect(s.page.locator(".conv-title")).to_have_text(old)
        expect(s.page.locator(".messages")).to_contain_text(f"hello from {old}")

        raw.send(f"NICK {new}")
        expect(s.page.locator(".conv-title")).to_have_text(new, timeout=20_000)
        expect(section.locator(".conv", has_text=new)).to_have_count(1)
        expect(section.locator(".conv", has_text=old)).to_have_count(0)
        expect(s.page.locator(".messages")).to_contain_text(f"hello from {old}")  # same history
        expect(s.page.locator(".messages .kind-event")).to_contain_text(new)
        assert not s.errors, s.errors
    finally:
        raw.close()
        s.close()


def api_json(s: Session, path: str) -> Any:
    r = s.context.request.get(s.hub.url + "api/" + path)
    assert r.ok, r.text()
    return r.json()


def test_networks_dialog_shows_the_client_certificate(
    browser: Browser, irc_hub: Hub, inspircd: IrcServer
) -> None:
    """SASL EXTERNAL chosen in the form: Hubbub makes the certificate, the row and
    the edit form show its fingerprint (the API's) with the NickServ hint; a new
    certificate replaces it once confirmed."""
    s = Session(browser, irc_hub, unique("certuser"))
    try:
        dialog = open_networks(s)
        dialog.get_by_role("button", name="Add a network").click()
        form = dialog.locator("form.network-form")
        form.locator("input[name=name]").fill("certnet")
        form.locator("input[name=host]").fill("127.0.0.1")
        form.locator("input[name=port]").fill(str(inspircd.port))
        form.locator("input[name=tls]").uncheck()
        form.locator("input[name=nick]").fill(unique("cert"))
        form.locator("select[name=sasl_mechanism]").select_option("EXTERNAL")
        expect(form.locator("input[name=sasl_password]")).to_have_count(0)
        expect(form).to_contain_text("Hubbub makes a client certificate")
        expect(form.get_by_role("alert")).to_contain_text("only sent over TLS")  # TLS is off here
        form.get_by_role("button", name="Add and connect").click()

        row = dialog.locator(".network-row", has_text="certnet")
        cert = row.get_by_role("group", name="Client certificate")
        expect(cert).to_be_visible()
        (network,) = api_json(s, "networks")
        fp = network["cert_fingerprint"]
        assert len(fp) == 64
        expect(cert.locator("code.fp")).to_have_text(fp)
        expect(cert).to_contain_text(f"/msg NickServ CERT ADD {fp}")
        assert "PRIVATE" not in dialog.inner_text()

        row.get_by_role("button", name="Edit").click()
        form = dialog.locator("form.network-form")
        expect(form.locator("select[name=sasl_mechanism]")).to_have_value("EXTERNAL")
        block = form.get_by_role("group", name="Client certificate")
        expect(block.locator("code[data-fp=sha256]")).to_have_text(fp)
        expect(block.locator("code[data-fp=sha512]")).to_have_text(
            network["cert_fingerprint_sha512"]
        )
        block.get_by_role("button", name="New certificate").click()
        block.get_by_role("group", name="Confirm new certificate").get_by_role(
            "button", name="Make a new one"
        ).click()
        expect(block.get_by_role("status")).to_contain_text("New certificate made")
        expect(block.locator("code[data-fp=sha256]")).not_to_have_text(fp)
        new_fp = api_json(s, "networks")[0]["cert_fingerprint"]
        assert new_fp != fp
        expect(block.locator("code[data-fp=sha256]")).to_have_text(new_fp)
        assert not s.errors, s.errors
    finally:
        s.close()


def test_whois_list_and_errors_are_shown_readably(
    browser: Browser, irc_hub: Hub, inspircd: IrcServer
) -> None:
    """/whois of a raw client's nick typed in a channel: its details in words in
    the channel (mirrored) and in the server buffer; /list; a server error."""
    s = Session(browser, irc_hub, unique("whoisuser"))
    raw = RawClient(inspircd.port, unique("bob"))
    try:
        nick = unique("ada")
        dialog = open_networks(s)
        fill_network(dialog, "whoisnet", inspircd.port, nick, autojoin="#whoisroom")
        row = dialog.locator(".network-row", has_text="whoisnet")
        expect(row.locator(".state-text")).to_have_text("connected", timeout=20_000)
        dialog.get_by_role("button", name="Close").click()
        section = s.page.locator("nav section.irc", has_text="whoisnet")
        section.locator(".conv", has_text="whoisroom").click(timeout=20_000)
        expect(s.page.locator(".conv-title")).to_have_text("#whoisroom")
        raw.send("JOIN #whoisroom")
        raw.expect(b"366")

        # the member list is there after a reload too (read over REST)
        members = s.page.locator("#members")
        expect(members.locator(f"[data-nick={raw.irc_nick}]")).to_have_count(1)
        s.page.reload()
        expect(s.page.locator(".conv-title")).to_have_text("#whoisroom")
        expect(members.locator(f"[data-nick={raw.irc_nick}]")).to_have_count(1)

        s.type(f"/whois {raw.irc_nick}")
        notice = s.page.locator(".local-notice.irc-replies", has_text="WHOIS")
        expect(notice).to_contain_text(
            re.compile(rf"{raw.irc_nick} is ~?{raw.irc_nick}@127\.0\.0\.1")
        )
        expect(notice).to_contain_text(f"{raw.irc_nick} is connected to ")
        expect(notice).to_contain_text(f"{raw.irc_nick} is on #whoisroom")
        expect(notice).to_contain_text(f"{raw.irc_nick} has been idle ")

        s.type("/whois nosuchnick42")
        err = s.page.locator(".local-notice", has_text="nosuchnick42")
        expect(err).to_contain_text("nosuchnick42: No such nick")
        expect(err).to_have_class(re.compile(r"\berror\b"))

        s.type("/list")
        expect(
            s.page.locator(".local-notice.irc-replies", has_text="Channel list")
        ).to_contain_text("#whoisroom (2)")
        s.type("/names")
        expect(s.page.locator(".local-notice", has_text="Names in #whoisroom")).to_contain_text(
            f"@{nick}"
        )

        # the server buffer: the same replies as lines in words, grouped, errors marked
        section.locator(".conv", has_text="server messages").click()
        whois = s.page.locator(".messages .irc-note.irc-whois")
        expect(
            whois.filter(has_text=re.compile(rf"{raw.irc_nick} is ~?{raw.irc_nick}@"))
        ).to_have_count(1)
        expect(
            s.page.locator(
                ".messages .irc-note.irc-end", has_text=f"End of WHOIS for {raw.irc_nick}"
            )
        ).to_have_count(1)
        error = s.page.locator(".messages .irc-note.irc-error", has_text="nosuchnick42")
        expect(error.first.locator(".irc-err-tag")).to_have_text("error")
        expect(error.first).to_have_attribute("data-numeric", "401")
        expect(
            s.page.locator(".messages .irc-note.irc-list", has_text="#whoisroom (2)")
        ).to_have_count(1)
        assert not s.errors, s.errors
    finally:
        raw.close()
        s.close()
