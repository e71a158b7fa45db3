"""The web client's IRC parts, in Chromium on the real modules: mIRC formatting
(app/mirc.js) rendered as styled spans from a fixed palette, text only as text."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from conftest import Hub

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
