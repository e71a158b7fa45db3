"""The ``hubbub`` command, in process with click's CliRunner."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hubbub import __version__
from hubbub.auth.passwords import PasswordHasher
from hubbub.cli import main
from hubbub.core.model import Role
from hubbub.store import open_store

FAST = {
    "HUBBUB_ARGON2_TIME_COST": "1",
    "HUBBUB_ARGON2_MEMORY_KIB": "8",
    "HUBBUB_ARGON2_PARALLELISM": "1",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.upper().startswith("HUBBUB_"):
            monkeypatch.delenv(name)
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_hubbub", False):
            root.removeHandler(handler)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, env=env)


def add(data: Path, name: str, *extra: str, password: str = "long enough pw") -> Result:
    return run(
        "user",
        "add",
        name,
        "--password-stdin",
        "--data-dir",
        str(data),
        *extra,
        input=password + "\n",
    )


def users(data: Path) -> dict[str, Role]:
    async def read() -> dict[str, Role]:
        store = open_store(f"sqlite+aiosqlite:///{data / 'hubbub.db'}")
        await store.start()
        try:
            return {u.name: u.role for u in await store.list_users()}
        finally:
            await store.close()

    return asyncio.run(read())


def password_ok(data: Path, name: str, password: str) -> bool:
    async def check() -> bool:
        store = open_store(f"sqlite+aiosqlite:///{data / 'hubbub.db'}")
        await store.start()
        try:
            user = await store.get_user_by_name(name)
            assert user is not None
            stored = await store.get_password_hash(user.id)
            assert stored is not None
            return await PasswordHasher.fast().verify(stored, password)
        finally:
            await store.close()

    return asyncio.run(check())


def test_version() -> None:
    result = run("version")
    assert result.exit_code == 0
    assert result.output == f"hubbub {__version__}\n"


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("serve", "user", "version"):
        assert command in result.output
    result = run("user", "--help")
    for command in ("add", "list", "passwd", "remove", "make-admin"):
        assert command in result.output


def test_user_add_first_is_admin_then_members(data: Path) -> None:
    first = add(data, "alice")
    assert first.exit_code == 0, first.output
    assert first.stdout == "created user alice (admin)\n"
    second = add(data, "bob")
    assert second.stdout == "created user bob\n"
    third = add(data, "carol", "--admin")
    assert third.stdout == "created user carol (admin)\n"
    assert users(data) == {"alice": Role.ADMIN, "bob": Role.MEMBER, "carol": Role.ADMIN}
    assert password_ok(data, "alice", "long enough pw")


def test_user_add_works_when_registration_is_closed(data: Path) -> None:
    result = run(
        "user",
        "add",
        "alice",
        "--password-stdin",
        "--data-dir",
        str(data),
        input="long enough pw\n",
        env={"HUBBUB_REGISTRATION_OPEN": "false"},
    )
    assert result.exit_code == 0, result.output


def test_user_add_prompts_for_the_password_twice(data: Path) -> None:
    result = run(
        "user", "add", "alice", "--data-dir", str(data), input="typed at a tty\ntyped at a tty\n"
    )
    assert result.exit_code == 0, result.output
    assert "Password" in result.output and "Repeat" in result.output
    assert "typed at a tty" not in result.output  # hidden input
    assert password_ok(data, "alice", "typed at a tty")


def test_name_taken_is_a_failure(data: Path) -> None:
    add(data, "alice")
    result = add(data, "ALICE")
    assert result.exit_code == 1
    assert result.stderr.startswith("hubbub: ")
    assert "taken" in result.stderr


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [
        ("admin", "long enough pw", "reserved"),
        ("no spaces", "long enough pw", "user name"),
        ("dave", "short", "password"),
    ],
)
def test_bad_name_or_password_is_a_failure(
    data: Path, name: str, password: str, message: str
) -> None:
    result = add(data, name, password=password)
    assert result.exit_code == 1, result.output
    assert message in result.stderr


def test_empty_password_on_stdin_is_a_usage_error(data: Path) -> None:
    result = run("user", "add", "alice", "--password-stdin", "--data-dir", str(data), input="")
    assert result.exit_code == 2
    assert "no password on standard input" in result.stderr


def test_user_list(data: Path) -> None:
    result = run("user", "list", "--data-dir", str(data))
    assert result.exit_code == 0
    assert "no users yet" in result.stderr
    add(data, "alice")
    add(data, "bob")
    result = run("user", "list", "--data-dir", str(data))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split()[:3] == ["1", "alice", "admin"]
    assert lines[1].split()[:3] == ["2", "bob", "member"]


def test_user_passwd(data: Path) -> None:
    add(data, "alice")
    result = run(
        "user",
        "passwd",
        "alice",
        "--password-stdin",
        "--data-dir",
        str(data),
        input="a brand new one\n",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "password of alice changed\n"
    assert password_ok(data, "alice", "a brand new one")
    assert not password_ok(data, "alice", "long enough pw")


def test_make_admin_and_revoke(data: Path) -> None:
    add(data, "alice")
    add(data, "bob")
    result = run("user", "make-admin", "bob", "--data-dir", str(data))
    assert result.exit_code == 0
    assert result.stdout == "bob is an admin\n"
    assert users(data)["bob"] is Role.ADMIN
    result = run("user", "make-admin", "bob", "--revoke", "--data-dir", str(data))
    assert result.stdout == "bob is not an admin\n"
    assert users(data)["bob"] is Role.MEMBER


def test_remove_keeps_the_name_taken(data: Path) -> None:
    add(data, "alice")
    add(data, "bob")
    result = run("user", "remove", "bob", "--data-dir", str(data))
    assert result.exit_code == 0
    assert result.stdout == "removed user bob\n"
    assert "bob" not in users(data)
    again = add(data, "bob")
    assert again.exit_code == 1
    assert "taken" in again.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("user", "remove", "nobody"),
        ("user", "passwd", "nobody", "--password-stdin"),
        ("user", "make-admin", "nobody"),
    ],
)
def test_unknown_user_is_a_failure(data: Path, args: tuple[str, ...]) -> None:
    add(data, "alice")
    result = run(*args, "--data-dir", str(data), input="long enough pw\n")
    assert result.exit_code == 1
    assert result.stderr == "hubbub: no user named 'nobody'\n"


def test_usage_errors_exit_2(data: Path) -> None:
    assert run("user", "add").exit_code == 2
    assert run("serve", "--port", "99999").exit_code == 2
    assert run("nonsense").exit_code == 2


def test_bad_configuration_exits_2_with_one_line_per_problem(data: Path) -> None:
    result = run(
        "user",
        "list",
        "--data-dir",
        str(data),
        env={"HUBBUB_MAX_MESSAGE_LENGTH": "0", "HUBBUB_LOG_FORMAT": "xml"},
    )
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("hubbub: setting ") for line in lines)
    result = run("serve", "--data-dir", str(data), env={"HUBBUB_TRUSTED_PROXIES": "everyone"})
    assert result.exit_code == 2
    assert "HUBBUB_TRUSTED_PROXIES" in result.stderr


def test_unreachable_database_is_a_failure(data: Path) -> None:
    result = run(
        "user",
        "list",
        env={"HUBBUB_DATABASE_URL": "postgresql+asyncpg://u:hunter22@127.0.0.1:1/x"},
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("hubbub: ")
    assert "hunter22" not in result.stderr
