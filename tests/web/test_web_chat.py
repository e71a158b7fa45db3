"""The web client in Chromium against a real Hubbub: live chat, reload, offline
queue, server restart, escaping, phone layout, keyboard."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
from playwright.sync_api import WebSocketRoute, expect

from conftest import Hub, Session, unique
from testenv import scaled


def room_with(owner: Session, *others: Session) -> str:
    """A new room made by ``owner`` through the composer, joined by ``others``."""
    room = unique("room")
    owner.type(f"/join #{room}")
    expect(owner.page.locator(".conv-title")).to_contain_text(room)
    for s in others:
        s.type(f"/join {room}")
        expect(s.page.locator(".conv-title")).to_contain_text(room)
    return room


def history(hub: Hub, name: str, room: str) -> list[str]:
    with hub.api(name) as api:
        conv = next(c for c in api.get("conversations").json() if c["name"] == room)
        return [
            m["text"]
            for m in api.get(f"conversations/{conv['id']}/messages?limit=200").json()["messages"]
        ]


def test_two_users_chat_live_in_a_room_and_a_dm(sessions: Any) -> None:
    alice, bob = sessions(unique("alice")), sessions(unique("bob"))
    room_with(alice, bob)

    alice.type(f"hello {bob.name}, see https://example.org/a?b=1.")
    message = bob.page.locator(".msg", has_text="hello").last
    expect(message).to_be_visible()
    expect(message.locator("mark.mention")).to_have_text(bob.name)  # mentions highlighted
    link = message.locator("a.link")
    expect(link).to_have_attribute("href", "https://example.org/a?b=1")
    expect(link).to_have_attribute("rel", re.compile(r"\bnoopener\b"))
    expect(link).to_have_attribute("target", "_blank")

    box = alice.page.locator("#composer")  # tab completes names at the start of a line
    box.fill(bob.name[:3])
    box.press("Tab")
    expect(box).to_have_value(f"{bob.name}: ")
    box.fill("")

    bob.page.locator("#composer").press_sequentially("hi there", delay=10)
    expect(alice.page.locator(".typing")).to_contain_text(f"{bob.name} is typing")
    bob.page.locator("#composer").press("Enter")
    expect(alice.page.locator(".msg .text", has_text="hi there")).to_have_count(1)
    bob.type("/me waves")
    expect(alice.page.locator(".msg.kind-action")).to_contain_text(f"{bob.name} waves")

    # a DM: alice writes with /msg; bob gets the conversation, unread, and answers
    alice.type(f"/msg {bob.name} psst, a secret")
    expect(alice.page.locator(".conv-title")).to_contain_text(bob.name)
    dm = bob.page.locator("nav .conv", has_text=alice.name)
    expect(dm.locator(".badge")).to_have_text("1")
    expect(bob.page).to_have_title(re.compile(r"^\(1\) "))  # unread count in the title
    dm.click()
    expect(bob.page.locator(".msg .text", has_text="psst, a secret")).to_have_count(1)
    expect(bob.page).to_have_title(re.compile(r"^[^(]"))
    expect(dm.locator(".badge")).to_have_count(0)
    bob.type("got it")
    expect(alice.page.locator(".msg .text", has_text="got it")).to_have_count(1)
    assert alice.texts().count("psst, a secret") == 1


def test_unknown_command_is_a_clear_error_and_help_lists_commands(sessions: Any) -> None:
    alice = sessions()
    room_with(alice)
    alice.type("/frobnicate now")
    expect(alice.page.locator("#composer-error")).to_have_text(
        "Unknown command /frobnicate. Type /help for the list."
    )
    expect(alice.page.locator("#composer")).to_have_value("/frobnicate now")  # kept to fix
    alice.type("/help")
    expect(alice.page.locator(".local-notice")).to_contain_text("/topic")
    alice.type("/topic All about testing")
    expect(alice.page.locator(".conv-head .topic")).to_have_text("All about testing")
    expect(alice.page.locator(".msg.kind-topic")).to_contain_text("All about testing")


def test_reload_shows_the_conversation_and_catches_up(sessions: Any, hub: Hub) -> None:
    alice = sessions()
    room = room_with(alice)
    for i in range(5):
        alice.type(f"before reload {i}")
    expect(alice.page.locator(".msg .text", has_text="before reload 4")).to_have_count(1)
    alice.page.wait_for_timeout(600)  # the cache is written within 0.4 s

    # while the page reloads, someone else writes: the page shows the cached
    # messages, then catches up from its position, with no duplicate
    with hub.api(unique("carol")) as carol:
        conv = carol.post("rooms/join", json={"name": room}).json()
        alice.page.reload()
        expect(alice.page.locator(".msg .text", has_text="before reload 4")).to_have_count(1)
        carol.post(f"conversations/{conv['id']}/messages", json={"text": "while you were away"})
    expect(alice.page.locator(".msg .text", has_text="while you were away")).to_have_count(1)
    texts = alice.texts()
    assert [t for t in texts if t.startswith("before reload")] == [
        f"before reload {i}" for i in range(5)
    ]


def test_offline_messages_are_queued_then_sent_once_in_order(sessions: Any, hub: Hub) -> None:
    alice, bob = sessions(), sessions()
    room = room_with(alice, bob)
    alice.type("online first")
    expect(bob.page.locator(".msg .text", has_text="online first")).to_have_count(1)

    alice.context.set_offline(True)
    expect(alice.page.locator(".conn")).to_have_attribute("data-state", "waiting")
    sent = [f"offline {i}" for i in range(3)]
    for text in sent:
        alice.type(text)
    expect(alice.page.locator(".msg.pending")).to_have_count(3)
    expect(alice.page.locator(".conn")).to_contain_text("3 messages waiting to send")
    bob.page.wait_for_timeout(300)
    assert not [t for t in bob.texts() if t.startswith("offline")]

    alice.context.set_offline(False)
    expect(alice.page.locator(".conn")).to_have_attribute("data-state", "online")
    expect(alice.page.locator(".msg.pending")).to_have_count(0)
    for s in (alice, bob):
        expect(s.page.locator(".msg .text", has_text="offline 2")).to_have_count(1)
        assert [t for t in s.texts() if t.startswith("offline")] == sent
    assert [t for t in history(hub, bob.name, room) if t.startswith("offline")] == sent


def test_logging_out_with_unsent_messages_asks_first(sessions: Any, hub: Hub) -> None:
    alice = sessions()
    room_with(alice)
    alice.context.set_offline(True)
    expect(alice.page.locator(".conn")).to_have_attribute("data-state", "waiting")
    alice.type("not out yet")
    expect(alice.page.locator(".msg.pending")).to_have_count(1)
    alice.page.get_by_role("button", name="Log out").click()
    dialog = alice.page.get_by_role("dialog", name="Log out?")
    expect(dialog).to_contain_text("1 message is not sent yet")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(alice.page.locator(".msg.pending")).to_have_count(1)  # still queued, still in

    alice.page.get_by_role("button", name="Log out").click()
    alice.page.get_by_role("dialog", name="Log out?").get_by_role(
        "button", name="Log out anyway"
    ).click()
    expect(alice.page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(alice.page.get_by_role("status")).to_contain_text("The server will be told")
    cookie = {c["name"]: c["value"] for c in alice.context.cookies()}

    def session_status() -> int:
        return httpx.get(hub.url + "api/me", cookies=cookie).status_code

    assert session_status() == 200  # offline: the server has not heard of the logout yet ...
    alice.context.set_offline(False)
    deadline = time.monotonic() + scaled(10)
    while session_status() != 401 and time.monotonic() < deadline:  # ... and ends it once back
        alice.page.wait_for_timeout(100)
    assert session_status() == 401
    alice.page.reload()
    expect(alice.page.get_by_role("heading", name="Log in")).to_be_visible()


def test_too_far_behind_pages_history_over_rest(sessions: Any, hub: Hub) -> None:
    """More missed messages than the server replays (8 here): the client pages
    them over REST; each shows once, in order."""
    alice = sessions()
    room = room_with(alice)
    alice.type("seen before")
    expect(alice.page.locator(".msg .text", has_text="seen before")).to_have_count(1)
    alice.context.set_offline(True)
    expect(alice.page.locator(".conn")).to_have_attribute("data-state", "waiting")
    missed = [f"missed {i:02}" for i in range(20)]
    with hub.api(unique("frank")) as frank:
        conv = frank.post("rooms/join", json={"name": room}).json()
        for text in missed:
            frank.post(f"conversations/{conv['id']}/messages", json={"text": text})
    alice.context.set_offline(False)
    expect(alice.page.locator(".msg .text", has_text="missed 19")).to_have_count(1)
    alice.page.wait_for_timeout(200)
    assert [t for t in alice.texts() if t.startswith("missed")] == missed
    alice.type("and back")
    expect(alice.page.locator(".msg .text", has_text="and back")).to_have_count(1)


def test_queued_messages_survive_a_reload(sessions: Any, hub: Hub) -> None:
    """The outbox is in localStorage: typed while the socket is down, the page
    reloaded, then the socket back: each message arrives once."""
    alice, bob = sessions(), sessions()
    room = room_with(alice, bob)
    blocked = {"on": True}

    def handler(ws: WebSocketRoute) -> None:
        if blocked["on"]:
            ws.close(code=1011)
        else:
            ws.connect_to_server()

    alice.page.route_web_socket(re.compile(r".*/api/ws$"), handler)
    alice.page.evaluate("window.hubbub.client.drop('test')")
    expect(alice.page.locator(".conn")).to_have_attribute("data-state", "waiting")
    alice.type("kept 1")
    alice.type("kept 2")
    expect(alice.page.locator(".msg.pending")).to_have_count(2)
    alice.page.reload()
    expect(alice.page.locator(".msg.pending")).to_have_count(2)
    blocked["on"] = False
    alice.page.locator(".conn button", has_text="Retry now").click()
    expect(alice.page.locator(".msg.pending")).to_have_count(0)
    expect(bob.page.locator(".msg .text", has_text="kept 2")).to_have_count(1)
    assert [t for t in history(hub, bob.name, room) if t.startswith("kept")] == ["kept 1", "kept 2"]


def test_server_restart_under_an_open_page(sessions: Any, hub: Hub) -> None:
    alice = sessions()
    room = room_with(alice)
    alice.type("before restart")
    expect(alice.page.locator(".msg .text", has_text="before restart")).to_have_count(1)
    hub.stop()
    expect(alice.page.locator(".conn")).to_have_attribute("data-state", "waiting")
    alice.type("typed while down")
    hub.start()
    with hub.api(unique("dave")) as dave:
        conv = dave.post("rooms/join", json={"name": room}).json()
        for i in range(3):
            dave.post(f"conversations/{conv['id']}/messages", json={"text": f"after restart {i}"})
    expect(alice.page.locator(".conn")).to_have_attribute(
        "data-state", "online", timeout=scaled(40_000)
    )
    expect(alice.page.locator(".msg .text", has_text="after restart 2")).to_have_count(1)
    texts = alice.texts()
    assert [t for t in texts if t.startswith("after restart")] == [
        f"after restart {i}" for i in range(3)
    ]
    assert texts.count("before restart") == 1
    assert texts.count("typed while down") == 1
    assert history(hub, alice.name, room).count("typed while down") == 1


def test_html_in_messages_is_text(sessions: Any, hub: Hub) -> None:
    alice = sessions()
    room = room_with(alice)
    evil = [
        '<img src=x onerror="window.__pwned=1">',
        "<script>window.__pwned=2</script>",
        '<a href="javascript:window.__pwned=3">click</a> javascript:alert(1)',
    ]
    with hub.api(unique("mallory")) as mallory:
        conv = mallory.post("rooms/join", json={"name": room}).json()
        for text in evil:
            mallory.post(f"conversations/{conv['id']}/messages", json={"text": text})
    expect(alice.page.locator(".msg .text", has_text="javascript:alert")).to_have_count(1)
    for text in evil:
        expect(alice.page.locator(".msg .text", has_text=text)).to_have_count(1)
    messages = alice.page.locator(".messages")
    expect(messages.locator("img")).to_have_count(0)
    expect(messages.locator("script")).to_have_count(0)
    expect(messages.locator("a[href^='javascript']")).to_have_count(0)
    alice.page.wait_for_timeout(200)
    assert alice.page.evaluate("window.__pwned") is None


def test_phone_layout(sessions: Any) -> None:
    phone = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
    alice = sessions(**phone)
    room = room_with(alice)
    page = alice.page
    sidebar = page.locator("nav.sidebar")
    expect(sidebar).not_to_be_in_viewport()
    menu = page.get_by_role("button", name="Open the conversation list")
    box = menu.bounding_box()
    assert box and box["width"] >= 44 and box["height"] >= 44  # touch targets
    menu.tap()
    expect(sidebar).to_be_in_viewport()
    item = page.locator("nav .conv", has_text=room)
    item_box = item.bounding_box()
    assert item_box and item_box["height"] >= 44
    item.tap()
    expect(sidebar).not_to_be_in_viewport()
    composer = page.locator("#composer")
    expect(composer).to_be_in_viewport()
    composer_box = composer.bounding_box()
    assert composer_box and composer_box["y"] + composer_box["height"] <= 844
    alice.type("from my phone")
    expect(page.locator(".msg .text", has_text="from my phone")).to_have_count(1)
    page.get_by_role("button", name="Members").tap()
    expect(page.locator("aside.members")).to_be_in_viewport()
    page.keyboard.press("Escape")
    expect(page.locator("aside.members")).not_to_be_in_viewport()


def test_keyboard_navigation(sessions: Any) -> None:
    alice = sessions()
    first = room_with(alice)
    second = room_with(alice)
    page = alice.page
    rooms = sorted([first, second])
    alice.open(rooms[0])
    page.locator("#composer").focus()
    page.keyboard.press("Alt+ArrowDown")
    expect(page.locator(".conv-title")).to_contain_text(rooms[1])
    expect(page.locator("nav .conv[aria-current=page]")).to_contain_text(rooms[1])
    page.keyboard.press("Alt+ArrowUp")
    expect(page.locator(".conv-title")).to_contain_text(rooms[0])
    expect(page.locator("#composer")).to_be_focused()

    # up-arrow recalls what was sent; tab completes commands
    alice.type("recall me")
    page.locator("#composer").press("ArrowUp")
    expect(page.locator("#composer")).to_have_value("recall me")
    page.locator("#composer").fill("/to")
    page.locator("#composer").press("Tab")
    expect(page.locator("#composer")).to_have_value("/topic ")

    # dialogs: Esc closes, focus returns; Ctrl+K opens search
    page.keyboard.press("Control+k")
    dialog = page.get_by_role("dialog", name="Search")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Words")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)

    # landmarks and labels for screen readers
    expect(page.get_by_role("navigation", name="Conversations")).to_be_visible()
    expect(page.get_by_role("log", name="Messages")).to_be_visible()
    expect(page.get_by_role("button", name="Settings")).to_be_visible()


def test_search_finds_a_message_and_jumps_to_it(sessions: Any) -> None:
    alice = sessions()
    room_with(alice)
    alice.type("the quick brown fox")
    alice.type("something else")
    page = alice.page
    page.keyboard.press("Control+k")
    dialog = page.get_by_role("dialog", name="Search")
    dialog.get_by_label("Words").fill("brown fox")
    result = dialog.locator(".result", has_text="quick")
    expect(result).to_have_count(1)
    result.click()
    expect(dialog).to_have_count(0)
    expect(page.locator(".msg.flash", has_text="quick brown fox")).to_have_count(1)


def test_settings_theme_and_sessions(sessions: Any) -> None:
    alice = sessions()
    page = alice.page
    page.get_by_role("button", name="Settings").click()
    dialog = page.get_by_role("dialog", name="Settings")
    dialog.get_by_text("Dark", exact=True).click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    dialog.get_by_role("tab", name="Sessions").click()
    expect(dialog.locator(".sessions li")).to_have_count(1)
    expect(dialog.locator(".sessions")).to_contain_text("this browser")
    dialog.get_by_role("tab", name="Notifications").click()
    dialog.get_by_label("Highlight words").fill("deploy, release")
    dialog.get_by_role("button", name="Save highlight words").click()
    page.keyboard.press("Escape")
    room_with(alice)
    alice.type("the deploy is done")
    expect(page.locator(".msg .text mark.mention")).to_have_count(0)  # not for your own
    with alice.hub.api(unique("kim")) as kim:
        conv = kim.post(
            "rooms/join", json={"name": page.locator(".conv-title").inner_text().strip("# ")}
        ).json()
        kim.post(f"conversations/{conv['id']}/messages", json={"text": "starting the release now"})
    expect(page.locator(".msg.highlight mark.mention")).to_have_text("release")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")


def test_login_errors(browser: Any, hub: Hub) -> None:
    name = unique("erin")
    with hub.api(name):
        pass
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(hub.url)
        page.get_by_label("Name").fill(name)
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong name or password.")
        for _ in range(3):  # the module's server allows 3 failures per account
            page.get_by_role("button", name="Log in").click()
            page.wait_for_timeout(100)
        expect(page.get_by_role("alert")).to_contain_text("Too many attempts. Try again in")
        expect(page.get_by_role("button", name="Log in")).to_be_disabled()
    finally:
        context.close()


def test_revoking_a_session_logs_that_browser_out(sessions: Any) -> None:
    name = unique("gina")
    laptop, phone = sessions(name), sessions(name)
    laptop.page.get_by_role("button", name="Settings").click()
    dialog = laptop.page.get_by_role("dialog", name="Settings")
    dialog.get_by_role("tab", name="Sessions").click()
    expect(dialog.locator(".sessions li")).to_have_count(2)
    dialog.locator(".sessions li", has_not_text="this browser").get_by_role("button").click()
    expect(dialog.locator(".sessions li")).to_have_count(1)
    expect(phone.page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(phone.page.get_by_role("status")).to_contain_text("Your session ended")


def test_new_messages_line_and_mention_badge(sessions: Any, hub: Hub) -> None:
    alice = sessions()
    room = room_with(alice)
    room_with(alice)  # alice now looks at another room
    with hub.api(unique("hank")) as hank:
        conv = hank.post("rooms/join", json={"name": room}).json()
        for text in ("one", f"two for {alice.name}", "three"):
            hank.post(f"conversations/{conv['id']}/messages", json={"text": text})
    item = alice.page.locator("nav .conv", has_text=room)
    expect(item.locator(".mention-badge")).to_be_visible()
    expect(item.locator(".badge:not(.mention-badge)")).to_have_text("4")  # hank's join too
    item.click()
    marker = alice.page.locator(".messages .marker")
    expect(marker).to_have_count(1)
    after = alice.page.locator(".marker ~ .msg .text").all_inner_texts()
    assert after[:3] == ["one", f"two for {alice.name}", "three"]
    expect(item.locator(".badge")).to_have_count(0)


def test_a_new_browser_counts_mentions_it_has_not_loaded(sessions: Any, hub: Hub) -> None:
    """The unread messages of a room are not loaded by a browser that never saw
    it: their mentions are counted on the server all the same."""
    name, room = unique("ivy"), unique("room")
    with hub.api(name) as ivy:
        ivy.post("rooms", json={"name": room}).raise_for_status()
        ivy.post("rooms", json={"name": "a" + room}).raise_for_status()  # first: shown at start
    with hub.api(unique("hank")) as hank:
        conv = hank.post("rooms/join", json={"name": room}).json()
        for text in (f"{name}: look", "filler", f"and again {name}", f"not{name}", "done"):
            hank.post(f"conversations/{conv['id']}/messages", json={"text": text})
    ivy_browser = sessions(name)  # a browser with nothing cached
    expect(ivy_browser.page.locator(".conv-title")).to_contain_text("a" + room)
    item = ivy_browser.page.locator("nav .conv", has_text=room).filter(has_not_text="a" + room)
    expect(item.locator(".mention-badge")).to_have_text("@2")
    item.click()
    expect(item.locator(".mention-badge")).to_have_count(0)


def test_join_dialog_create_then_leave(sessions: Any) -> None:
    alice, bob = sessions(), sessions()
    room = unique("den")
    page = alice.page
    page.get_by_role("button", name="Join or create a room").first.click()
    dialog = page.get_by_role("dialog", name="Join or create a room")
    dialog.get_by_label("Room name").fill(room)
    dialog.get_by_label("Topic (optional)").fill("a quiet place")
    dialog.get_by_role("button", name="Create room").click()
    expect(page.locator(".conv-title")).to_contain_text(room)
    expect(page.locator(".conv-head .topic")).to_have_text("a quiet place")

    bob.page.get_by_role("button", name="Join or create a room").first.click()
    dialog = bob.page.get_by_role("dialog", name="Join or create a room")
    dialog.get_by_label("Room name").fill(room)
    dialog.locator("li", has_text=room).get_by_role("button", name="Join").click()
    expect(bob.page.locator(".conv-title")).to_contain_text(room)
    expect(page.locator("aside.members .member-name", has_text=bob.name)).to_be_visible()

    bob.page.get_by_role("button", name=f"Leave #{room}").click()
    bob.page.get_by_role("dialog").get_by_role("button", name="Leave room").click()
    expect(bob.page.locator("nav .conv", has_text=room)).to_have_count(0)
    expect(page.locator(".fold", has_text=f"{bob.name} left")).to_be_visible()


NOTIFICATION_SPY = """
window.__notes = [];
window.Notification = class {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) { window.__notes.push([title, options.body]); }
  close() {}
};
Object.defineProperty(document, "hidden", { get: () => !!window.__hidden });
"""


def test_notifications_for_mentions_and_dms_while_hidden(sessions: Any, hub: Hub) -> None:
    alice = sessions()
    alice.context.add_init_script(NOTIFICATION_SPY)
    alice.page.reload()
    room = room_with(alice)
    alice.page.evaluate("window.__hidden = true")
    with hub.api(unique("ivy")) as ivy:
        conv = ivy.post("rooms/join", json={"name": room}).json()
        ivy.post(f"conversations/{conv['id']}/messages", json={"text": "nobody in particular"})
        ivy.post(f"conversations/{conv['id']}/messages", json={"text": f"{alice.name}: lunch?"})
        dm = ivy.post("dms", json={"name": alice.name}).json()
        ivy.post(f"conversations/{dm['id']}/messages", json={"text": "a private word"})
        expect(
            alice.page.locator("nav .conv", has_text=ivy.get("me").json()["user"]["name"])
        ).to_be_visible()
    alice.page.wait_for_function("window.__notes.length >= 2")
    notes = alice.page.evaluate("window.__notes")
    assert [body for _, body in notes] == [f"{alice.name}: lunch?", "a private word"]
    assert notes[0][0].endswith(f"in #{room}")


def test_history_loads_as_you_scroll_up(sessions: Any, hub: Hub) -> None:
    alice = sessions()
    room = room_with(alice)
    alice.page.goto("about:blank")  # away while the history is written
    texts = [f"history {i:03}" for i in range(130)]
    with hub.api(unique("jack")) as jack:
        conv = jack.post("rooms/join", json={"name": room}).json()
        for text in texts:
            jack.post(f"conversations/{conv['id']}/messages", json={"text": text})
    alice.page.goto(alice.hub.url)  # too far behind: the newest page over REST
    alice.open(room)
    page = alice.page
    expect(page.locator(".msg .text", has_text="history 129")).to_be_visible()
    expect(page.get_by_role("button", name="Jump to the latest messages")).to_have_count(0)
    assert len(alice.texts()) < 130
    for _ in range(20):
        page.locator("#messages").evaluate("el => { el.scrollTop = 0; }")
        page.wait_for_timeout(150)
        if page.locator(".beginning").count():
            break
    expect(page.locator(".beginning")).to_be_visible()
    assert [t for t in alice.texts() if t.startswith("history")] == texts
    jump = page.get_by_role("button", name="Jump to the latest messages")
    expect(jump).to_be_visible()
    jump.click()
    expect(page.locator(".msg .text", has_text="history 129")).to_be_in_viewport()


def test_reload_while_offline_keeps_everything(sessions: Any, hub: Hub) -> None:
    """The service worker serves the page from its cache, the messages come from
    IndexedDB, the queue from localStorage; back online, each is sent once."""
    alice = sessions()
    room = room_with(alice)
    alice.type("said while online")
    page = alice.page
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.reload()  # now through the service worker, which keeps a copy
    expect(page.locator(".conn")).to_have_attribute("data-state", "online")
    expect(page.locator(".msg .text", has_text="said while online")).to_have_count(1)
    assert page.evaluate("!!navigator.serviceWorker.controller")
    alice.context.set_offline(True)
    alice.type("offline reload 1")
    alice.type("offline reload 2")
    page.reload()
    expect(page.locator(".msg .text", has_text="said while online")).to_have_count(1)
    expect(page.locator(".msg.pending")).to_have_count(2)
    expect(page.locator(".offline-bar")).to_contain_text("2 messages will be sent")
    alice.context.set_offline(False)
    expect(page.locator(".msg.pending")).to_have_count(0)
    expect(page.locator(".msg .text", has_text="offline reload 2")).to_have_count(1)
    sent = [t for t in history(hub, alice.name, room) if t.startswith("offline reload")]
    assert sent == ["offline reload 1", "offline reload 2"]


def test_a_silently_dead_connection_is_noticed_and_resumed(sessions: Any, hub: Hub) -> None:
    """Laptop sleep, a Wi-Fi that drops without a word: the socket stays open but
    nothing passes. The client's ping goes unanswered, it reconnects and resumes."""
    alice = sessions()
    room = room_with(alice)
    connections: list[dict[str, bool]] = []

    def handler(ws: WebSocketRoute) -> None:
        state = {"mute": False}
        connections.append(state)
        server = ws.connect_to_server()
        ws.on_message(lambda m: None if state["mute"] else server.send(m))
        server.on_message(lambda m: None if state["mute"] else ws.send(m))

    page = alice.page
    page.evaluate("localStorage.setItem('hubbub:ping-ms', '700')")
    page.route_web_socket(re.compile(r".*/api/ws$"), handler)
    page.reload()
    expect(page.locator(".conn")).to_have_attribute("data-state", "online")
    for state in connections:  # every open socket goes silent, and stays so
        state["mute"] = True
    with hub.api(unique("lee")) as lee:
        conv = lee.post("rooms/join", json={"name": room}).json()
        lee.post(f"conversations/{conv['id']}/messages", json={"text": "while you slept"})
        expect(page.locator(".msg .text", has_text="while you slept")).to_have_count(1)
        assert len(connections) >= 2  # it came over a new connection
        lee.post(f"conversations/{conv['id']}/messages", json={"text": "good morning"})
    expect(page.locator(".msg .text", has_text="good morning")).to_have_count(1)
    assert alice.texts().count("while you slept") == 1
