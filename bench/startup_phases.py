#!/usr/bin/env python3
"""Where the startup of ``hubbub serve`` goes, phase by phase.

    .venv/bin/python bench/startup_phases.py [--python PY] [--runs 7] [--importtime]

Each run is a fresh process of ``PY`` (default: this venv's python) doing what
``hubbub serve`` does, on a data directory made (and migrated) by a first run
that is not counted, and timing each step from the ``exec``:

    interpreter      exec until the first line of the script runs
    import cli       hubbub.cli: click, the settings model (pydantic-settings)
    settings         the settings read and checked
    import app       everything else serve imports (SQLAlchemy, FastAPI, the API, IRC, uvicorn)
    services         store opened (schema checked), bus, Hub, IRC networks started
    create_app       the ASGI app
    listening        uvicorn's startup (lifespan, bind)
    /api/health      the first answer (what bench/run.py --only startup waits for)
    /api/me          the first answer from the rest of the API (401: routes built)

The garbage collector is paused from the heavy imports until the server
listens, as ``hubbub serve`` does (since e8679fb), so for older code compare
the real process (``bench/run.py --only startup``) instead.
``--importtime`` adds the modules that took longest to import (``python -X
importtime``, cumulative, the minimum over the runs). To compare two versions
of the code on a noisy machine, alternate them (``--pythonpath`` of a
``git archive`` copy's ``src``) and compare minima and medians, as
docs/performance/startup.md does. With ``PYTHONDONTWRITEBYTECODE`` set and an
editable install, every run compiles Hubbub's sources: run ``python -m
compileall -q src`` first, as an installed Hubbub has done at install time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASES = [
    "interpreter",
    "import cli",
    "settings",
    "import app",
    "services",
    "create_app",
    "listening",
    "/api/health",
    "/api/me",
]

CHILD = r"""
import time
T = [("start", time.time())]
import sys
import hubbub.cli as cli
T.append(("import cli", time.time()))
settings = cli.settings_from(host="127.0.0.1", port=0, data_dir=sys.argv[1])
T.append(("settings", time.time()))
import gc
gc.disable()  # as `hubbub serve` does; HubbubServer.startup resumes it
from hubbub import app, logs
T.append(("import app", time.time()))
import asyncio, json

async def get(port, path):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    data = await r.read()
    w.close()
    return data[:12].decode()

async def main():
    logs.configure(settings.log_level, settings.log_format)
    services = await app.build_services(settings)
    T.append(("services", time.time()))
    server = app.HubbubServer(
        app.uvicorn_config(app.create_app(services), settings), capture_signals=False
    )
    T.append(("create_app", time.time()))
    config = server.config
    config.load()
    server.lifespan = config.lifespan_class(config)
    await server.startup()
    T.append(("listening", time.time()))
    status = await get(server.bound_port, b"/api/health")
    T.append(("/api/health", time.time()))
    status2 = await get(server.bound_port, b"/api/me")
    T.append(("/api/me", time.time()))
    server.should_exit = True
    await server.shutdown()
    await app.close_services(services)
    assert status.endswith("200") and status2.endswith("401"), (status, status2)

try:
    import uvloop
    factory = uvloop.new_event_loop
except ImportError:
    factory = None
with asyncio.Runner(loop_factory=factory) as runner:
    runner.run(main())
print(json.dumps(T))
"""

ENV = {
    "HUBBUB_LOG_LEVEL": "warning",
    "HUBBUB_ACCESS_LOG": "false",
}


def one_run(python: str, data_dir: str, env: dict[str, str], importtime: bool) -> tuple:
    cmd = [python, *(["-X", "importtime"] if importtime else []), "-c", CHILD, data_dir]
    t0 = time.time()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    if r.returncode != 0:
        raise SystemExit(f"run failed ({r.returncode}):\n{r.stderr[-2000:]}")
    marks = json.loads(r.stdout.strip().splitlines()[-1])
    times: dict[str, float] = {}
    prev = t0
    for name, t in marks:
        times["interpreter" if name == "start" else name] = (t - prev) * 1000
        prev = t
    times["total"] = (prev - t0) * 1000 - times["/api/me"]
    return times, (r.stderr if importtime else "")


def import_costs(stderr: str) -> dict[str, int]:
    """Cumulative microseconds per top-level import (depth 0 and 1) of one run."""
    out: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if not cumulative.strip().isdigit():
            continue
        depth = (len(name) - len(name.lstrip())) // 2
        if depth <= 2:
            out[name.strip()] = int(cumulative)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"))
    ap.add_argument("--pythonpath", default=None, help="put this first on PYTHONPATH")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--importtime", action="store_true")
    args = ap.parse_args()
    env = {**os.environ, **ENV}
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    runs: list[dict[str, float]] = []
    imports: list[dict[str, int]] = []
    with tempfile.TemporaryDirectory(prefix="hubbub-startup-") as tmp:
        one_run(args.python, tmp, env, False)  # creates and migrates the database
        for _ in range(args.runs):
            times, stderr = one_run(args.python, tmp, env, args.importtime)
            runs.append(times)
            if stderr:
                imports.append(import_costs(stderr))
    print(f"{'phase':<14}{'median ms':>10}{'min ms':>9}   ({len(runs)} runs, {args.python})")
    for phase in [*PHASES, "total"]:
        values = [r[phase] for r in runs]
        print(f"{phase:<14}{statistics.median(values):>10.0f}{min(values):>9.0f}")
    print("total: exec to the first /api/health answer")
    if imports:
        names = set.intersection(*(set(i) for i in imports))
        best = sorted(((min(i[n] for i in imports), n) for n in names), reverse=True)
        print(
            "\nslowest imports (cumulative ms, minimum over the runs; -X importtime inflates them):"
        )
        for us, name in best[:25]:
            print(f"{us / 1000:8.1f}  {name}")


if __name__ == "__main__":
    main()
