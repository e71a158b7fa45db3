"""Startup: what ``hubbub serve`` imports, and the garbage collector while it starts
(docs/performance/startup.md). Each check runs in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from testenv import scaled

IRC_CLIENT = ("hubbub.irc.client", "irctokens", "ircstates", "pendulum")


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("HUBBUB_")}
    env["HUBBUB_LOG_LEVEL"] = "warning"
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )


def test_the_irc_package_loads_the_client_only_when_asked() -> None:
    result = run_python(
        f"""
        import sys
        import hubbub.irc
        import hubbub.irc.policy
        print(sorted(m for m in {IRC_CLIENT!r} if m in sys.modules))
        from hubbub.irc import Client, ClientConfig
        print(Client.__module__, ClientConfig.__module__, "hubbub.irc.client" in sys.modules)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "hubbub.irc.client hubbub.irc.config True"]


def test_serve_imports_no_irc_client() -> None:
    """With no IRC network to connect, the modules ``hubbub serve`` imports leave the
    IRC client (irctokens, ircstates, pendulum) unloaded until a network starts."""
    result = run_python(
        f"""
        import sys
        import hubbub.cli, hubbub.app, hubbub.logs
        print(sorted(m for m in {IRC_CLIENT!r} if m in sys.modules))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]"]


def test_the_collector_is_paused_while_starting_and_runs_once_serving(tmp_path: Path) -> None:
    result = run_python(
        """
        import gc, os, signal, sys
        from hubbub import app
        from hubbub.config import load_settings

        settings = load_settings({"port": 0, "data_dir": sys.argv[1]})
        startup = app.HubbubServer.startup

        async def checked_startup(self, sockets=None):
            print("starting, collector on:", gc.isenabled(), flush=True)
            await startup(self, sockets)
            print("listening, collector on:", gc.isenabled(), flush=True)
            os.kill(os.getpid(), signal.SIGTERM)  # a graceful stop

        app.HubbubServer.startup = checked_startup
        app.run(settings)
        print("stopped, collector on:", gc.isenabled())
        """,
        str(tmp_path / "data"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "starting, collector on: False",
        "listening, collector on: True",
        "stopped, collector on: True",
    ]
