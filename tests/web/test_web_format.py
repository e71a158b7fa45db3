"""The client's text formatting and message grouping, run in Chromium on the real
modules: links (rel=noopener, trailing punctuation, no javascript:), mentions as
whole words, HTML as text; day separators, folded joins, the new-messages line."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from conftest import Hub

RENDER = """async ([text, name, words]) => {
  const f = await import("./static/app/format.js");
  const { render } = await import("preact");
  const { html } = await import("htm/preact");
  const div = document.createElement("div");
  render(html`<p>${f.richText(text, f.highlighter(name, words))}</p>`, div);
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


def render(page: Page, text: str, name: str = "ann", words: list[str] | None = None) -> str:
    out: str = page.evaluate(RENDER, [text, name, words or []])
    return out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "see https://example.org/a?b=1.",
            'see <a href="https://example.org/a?b=1" target="_blank" rel="noopener noreferrer nofollow" class="link">https://example.org/a?b=1</a>.',
        ),
        (
            "(https://en.wikipedia.org/wiki/Foo_(bar))",
            '(<a href="https://en.wikipedia.org/wiki/Foo_(bar)" target="_blank" rel="noopener noreferrer nofollow" class="link">https://en.wikipedia.org/wiki/Foo_(bar)</a>)',
        ),
        (
            "www.example.org, ok",
            '<a href="https://www.example.org" target="_blank" rel="noopener noreferrer nofollow" class="link">www.example.org</a>, ok',
        ),
        ("javascript:alert(1) data:text/html,x", "javascript:alert(1) data:text/html,x"),
        ('<img src=x onerror="alert(1)">', '&lt;img src=x onerror="alert(1)"&gt;'),
        ("hi ann!", 'hi <mark class="mention">ann</mark>!'),
        ("Ann: hello", '<mark class="mention">Ann</mark>: hello'),
        ("annabel and joanne", "annabel and joanne"),
    ],
)
def test_rich_text(page: Page, text: str, expected: str) -> None:
    assert render(page, text) == expected


def test_highlight_words(page: Page) -> None:
    assert render(page, "the release is out", words=["release"]) == (
        'the <mark class="mention">release</mark> is out'
    )
    # taken literally, not as a regular expression
    assert render(page, "see a.b here, not axb", words=["a.b"]) == (
        'see <mark class="mention">a.b</mark> here, not axb'
    )


ROWS = """async () => {
  const { rows } = await import("./static/app/ui/messages.js");
  const day = Date.UTC(2026, 0, 10, 12);
  const m = (seq, kind, sender, ts) => ({ seq, kind, sender, sender_id: sender === "me" ? 1 : 2, text: "t", ts });
  const msgs = [
    m(1, "join", "a", day), m(2, "join", "b", day + 1000), m(3, "part", "c", day + 2000),
    m(4, "text", "a", day + 3000), m(5, "text", "a", day + 4000), m(6, "text", "b", day + 5000),
    m(7, "text", "a", day + 86400000),
  ];
  return rows(msgs, 5, 1).map((r) => r.type === "msg" ? `msg${r.m.seq}${r.grouped ? "+" : ""}` : r.type === "fold" ? `fold${r.seqs.join(",")}` : r.type);
}"""


def test_rows_fold_group_and_mark(page: Page) -> None:
    assert page.evaluate(ROWS) == [
        "day",
        "fold1,2,3",
        "msg4",
        "msg5+",
        "marker",
        "msg6",
        "day",
        "msg7",
    ]
