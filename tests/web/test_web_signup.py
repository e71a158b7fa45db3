"""The sign-up form follows what the server allows, before anyone types:
a new server offers to create its admin, a closed one says how to get in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from conftest import PASSWORD, running_hub


def test_a_new_server_offers_its_first_account_as_admin(browser: Any, tmp_path: Path) -> None:
    with running_hub(tmp_path) as hub:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(hub.url)
            expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
            expect(page.locator(".hint")).to_contain_text("becomes its admin")
            page.get_by_label("Name").fill("founder")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Create account").click()
            expect(page.locator("#auth-title")).to_have_count(0)  # in the app now
            with hub.api() as anon:
                assert anon.get("registration").json() == {"open": True, "first_account": False}
            # the next visitor gets the login form, with sign-up offered
            other = browser.new_context()
            try:
                page = other.new_page()
                page.goto(hub.url)
                expect(page.get_by_role("heading", name="Log in")).to_be_visible()
                expect(page.get_by_role("button", name="Create an account")).to_be_visible()
            finally:
                other.close()
        finally:
            context.close()


def test_closed_registration_is_said_before_anyone_types(browser: Any, tmp_path: Path) -> None:
    with running_hub(tmp_path, HUBBUB_REGISTRATION_OPEN="false") as hub:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(hub.url)
            expect(page.locator("#registration-closed")).to_contain_text("hubbub user add")
            hub.cli("user", "add", "founder", "--password-stdin", stdin=f"{PASSWORD}\n")
            page.reload()
            expect(page.get_by_role("heading", name="Log in")).to_be_visible()
            expect(page.locator("#registration-closed")).to_contain_text("Ask an admin")
            expect(page.get_by_role("button", name="Create an account")).to_have_count(0)
        finally:
            context.close()
