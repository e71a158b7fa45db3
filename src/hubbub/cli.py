"""The ``hubbub`` command.

Exit codes: 0 done; 1 failed (no such user, name taken, the database is not
reachable, ...); 2 bad usage or bad configuration. Messages go to stderr, one
line each; results to stdout.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__
from .config import ConfigError, Settings, load_settings


def _process_age() -> float:
    """Seconds since this process started (Linux), else since this module loaded."""
    try:
        with open("/proc/self/stat") as f:
            started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


_STARTED = time.perf_counter() - _process_age()
T = TypeVar("T")

EXIT_FAILURE = 1
EXIT_USAGE = 2


class Failure(click.ClickException):
    """A command that could not be done: message on stderr, exit code 1."""

    exit_code = EXIT_FAILURE

    def show(self, file: Any = None) -> None:
        click.echo(f"hubbub: {self.format_message()}", err=True)


class BadConfig(click.ClickException):
    exit_code = EXIT_USAGE

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines

    def show(self, file: Any = None) -> None:
        for line in self.lines:
            click.echo(f"hubbub: {line}", err=True)


def settings_from(**overrides: Any) -> Settings:
    try:
        return load_settings(overrides)
    except ConfigError as exc:
        raise BadConfig(exc.lines) from None


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory holding the SQLite database (default: ./data, or HUBBUB_DATA_DIR).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Hubbub, a self-hosted chat server. Settings: docs/configuration.md."""


@main.command()
def version() -> None:
    """Print Hubbub's version."""
    click.echo(f"hubbub {__version__}")


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Port to listen on (default 8080)."
)
@data_dir_option
def serve(host: str | None, port: int | None, data_dir: Path | None) -> None:
    """Run the server until SIGTERM or Ctrl-C (then shut down gracefully)."""
    settings = settings_from(host=host, port=port, data_dir=data_dir)
    # A stop asked for while the heavy modules load is remembered, not fatal;
    # app.serve takes over the handlers from here.
    early: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: early.append(signum))
    # No cyclic GC until the server listens (app.serve): the imports and the
    # app are ~120k objects that live as long as the process.
    gc.disable()
    from . import app, logs  # the heavy imports, only for serve

    logs.configure(settings.log_level, settings.log_format)
    try:
        app.run(settings, started=_STARTED, stop_requested=bool(early))
    except KeyboardInterrupt:  # a second Ctrl-C while starting
        sys.exit(130)
    except SystemExit as exc:
        # uvicorn exits 1 or 3 when it cannot listen (the reason is in the log above)
        if exc.code not in (0, None):
            raise Failure(
                f"could not serve on {settings.host}:{settings.port} (see the log above)"
            ) from None
        raise
    except Exception as exc:
        raise Failure(f"cannot start: {_describe(exc)}") from exc


# users -------------------------------------------------------------------------


@main.group()
def user() -> None:
    """Manage accounts (the server may be running)."""


@asynccontextmanager
async def _accounts(settings: Settings) -> AsyncIterator[Any]:
    """Accounts over the configured store (migrated first) and bus.

    With Redis configured, the bus is Redis: a running server then hears of
    revoked sessions and closes their WebSockets.
    """
    import logging

    from .app import make_bus, make_hasher
    from .bus import LocalBus
    from .core.accounts import Accounts
    from .core.ports import Bus
    from .logs import configure

    configure("warning", settings.log_format)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if settings.uses_sqlite():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    from .store import open_store

    store = open_store(settings.effective_database_url())
    await store.start()
    bus: Bus = make_bus(settings)
    try:
        try:
            await bus.start()
        except Exception as exc:
            click.echo(f"hubbub: warning: {_describe(exc)}; running servers are not told", err=True)
            bus = LocalBus()
        try:
            yield Accounts(store, settings, make_hasher(settings), bus)
        finally:
            await bus.close()
    finally:
        await store.close()


def _run_accounts(settings: Settings, action: Callable[[Any], Awaitable[T]]) -> T:
    from .core.errors import HubbubError

    async def go() -> T:
        async with _accounts(settings) as accounts:
            return await action(accounts)

    try:
        return _run(go())
    except HubbubError as exc:
        raise Failure(exc.message) from None
    except click.ClickException:
        raise
    except Exception as exc:
        raise Failure(_describe(exc)) from exc


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _describe(exc: BaseException) -> str:
    from .logs import redact

    text = str(exc) or type(exc).__name__
    return redact(text.splitlines()[0] if text else text)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        entered = str(line).rstrip("\r\n")
        if not entered:
            raise click.UsageError("no password on standard input")
        return entered
    prompted = click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")
    return str(prompted)


password_stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (for scripts).",
)


@user.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the account an admin.")
@password_stdin_option
@data_dir_option
def user_add(name: str, admin: bool, password_stdin: bool, data_dir: Path | None) -> None:
    """Create an account named NAME (registration need not be open).

    The first account on a server is always an admin.
    """
    settings = settings_from(data_dir=data_dir)
    password = _read_password(password_stdin)

    async def action(accounts: Any) -> Any:
        created = await accounts.register(name, password, trusted=True)
        if admin and not created.is_admin:
            created = await accounts.set_admin(created.name, True)
        return created

    created = _run_accounts(settings, action)
    click.echo(f"created user {created.name}" + (" (admin)" if created.is_admin else ""))


@user.command("list")
@data_dir_option
def user_list(data_dir: Path | None) -> None:
    """List the accounts: id, name, role, creation date."""
    settings = settings_from(data_dir=data_dir)

    async def action(accounts: Any) -> list[Any]:
        everyone: list[Any] = []
        after = 0
        while True:
            page = await accounts.users(after_id=after, limit=500)
            everyone.extend(page)
            if len(page) < 500:
                return everyone
            after = page[-1].id

    users = _run_accounts(settings, action)
    if not users:
        click.echo("no users yet", err=True)
        return
    width = max(len(u.name) for u in users)
    for u in users:
        created = datetime.fromtimestamp(u.created_at / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{u.id:>6}  {u.name:<{width}}  {u.role.value:<6}  {created}")


@user.command("passwd")
@click.argument("name")
@password_stdin_option
@data_dir_option
def user_passwd(name: str, password_stdin: bool, data_dir: Path | None) -> None:
    """Set NAME's password; their sessions are logged out."""
    settings = settings_from(data_dir=data_dir)
    password = _read_password(password_stdin)
    changed = _run_accounts(settings, lambda accounts: accounts.set_password(name, password))
    click.echo(f"password of {changed.name} changed")


@user.command("remove")
@click.argument("name")
@data_dir_option
def user_remove(name: str, data_dir: Path | None) -> None:
    """Remove NAME's account. The name stays taken: a name is an identity."""
    settings = settings_from(data_dir=data_dir)
    removed = _run_accounts(settings, lambda accounts: accounts.remove_user(name))
    click.echo(f"removed user {removed.name}")


@user.command("make-admin")
@click.argument("name")
@click.option("--revoke", is_flag=True, help="Take admin rights away instead.")
@data_dir_option
def user_make_admin(name: str, revoke: bool, data_dir: Path | None) -> None:
    """Give NAME admin rights (or take them away with --revoke)."""
    settings = settings_from(data_dir=data_dir)
    changed = _run_accounts(settings, lambda accounts: accounts.set_admin(name, not revoke))
    click.echo(f"{changed.name} is {'an admin' if changed.is_admin else 'not an admin'}")
