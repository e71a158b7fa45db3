#!/usr/bin/env python3
"""Hubbub's benchmark suite: fan-out, idle memory per connection, reconnect
storm, startup, durable sends, history and search.

    .venv/bin/python bench/run.py [--quick | --full]
                                  [--only fanout,memory,storm,startup,durable,history]
                                  [--target both|ceiling|hubbub]

Every Hubbub figure is set beside the C ceiling server (bench/c/ceiling.c)
measured in the same run, as a ratio, because absolute figures on a shared
2-core machine drift. The server runs on one core and the load generator
(bench/c/loadgen.c) on the other (taskset). Everything talks to 127.0.0.1 only,
and every step is bounded in count and time. Results: a table on stdout, JSON
in bench/out/, PNG plots when matplotlib is installed (bench/requirements.txt).
See docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = BENCH / "bin"
OUT = BENCH / "out"
VENV_PY = ROOT / ".venv" / "bin" / "python"
HUBBUB = ROOT / ".venv" / "bin" / "hubbub"

PROFILES: dict[str, dict[str, Any]] = {
    # about two minutes with all six scenarios: every case once (no second run
    # of a case disturbed by other work), short windows, a smaller history set
    "quick": {
        "duration": 1.5,
        "warmup": 0.5,
        "ns": [100, 1000, 5000],
        "rates": [(1000, 20_000), (5000, 100_000)],
        "attempts": 1,
        "quiet_wait": 1.0,  # at most this long waiting for a quiet machine before a run
        "idle_hold": 2.5,  # seconds the idle connections stay (RSS read after 2)
        "startup_runs": 3,
        "history_count": 200_000,
        "history_queries": 100,
        "storm_missed": 50,
        "budget_s": 240,
        "reserve_s": 60,  # budget left for the scenarios after fan-out: no re-runs below it
    },
    # under fifteen minutes
    "full": {
        "duration": 8.0,
        "warmup": 2.0,
        "ns": [100, 1000, 5000],
        "rates": [
            (1000, 20_000),
            (1000, 100_000),
            (1000, 500_000),
            (5000, 100_000),
            (5000, 500_000),
        ],
        "attempts": 2,
        "quiet_wait": 5.0,
        "idle_hold": 4.0,
        "startup_runs": 7,
        "history_count": 10_000_000,
        "history_queries": 300,
        "storm_missed": 200,
        "budget_s": 900,
        # storm, startup, durable and 10M messages of history (~120 s to load on a
        # quiet machine, over 200 s on a busy one) after fan-out
        "reserve_s": 420,
    },
}

# Saturation: many sender connections with a small window each. Hubbub handles
# one op per connection at a time (an op's ack comes after its commit), so its
# commit batches, and with them the frames coalesced per socket write, grow with
# the number of sending connections, not with the window: 8 senders x 32 in
# flight gave 0.28M deliveries/s at N=1000, 128 x 4 gave 1.0M (the C ceiling
# does not care). 512 messages in flight for both servers.
SENDERS = 128
WINDOW = 4
# Senders at a fixed rate: at least 4, and enough that none sends more than 8
# messages/s (Hubbub commits one op per connection at a time: 4 senders could
# not offer 500 messages/s).
RATE_SENDERS = 4
RATE_PER_SENDER = 8.0
USERS = 32  # Hubbub accounts the connections are spread over
DURABLE_CONCURRENCY = 512  # appends in flight (one task each) at saturation
DURABLE_RATE = 5000  # appends/s for the ack latency at a fixed rate
STORM_CONNS = 5000
IDLE_CONNS = 5000
CONTENDED = 0.3  # core time used by neither process above this: measure again
DRAIN = 15.0  # at most this long after sending stops for every delivery to arrive
PASSWORD = "bench-password-0123456789"

# Hubbub settings for the benchmark: cheap password hashing for the setup, no
# per-user send limit, no per-connection op limit, no access log. Everything else is Hubbub's default.
HUBBUB_ENV = {
    "HUBBUB_ARGON2_TIME_COST": "1",
    "HUBBUB_ARGON2_MEMORY_KIB": "8",
    "HUBBUB_ARGON2_PARALLELISM": "1",
    "HUBBUB_SEND_RATE": "1000000000",
    "HUBBUB_SEND_BURST": "1000000000",
    "HUBBUB_WS_OPS_RATE": "1000000000",
    "HUBBUB_WS_OPS_BURST": "1000000000",
    "HUBBUB_LOGIN_ATTEMPTS_PER_ADDRESS": "100000",
    "HUBBUB_ACCESS_LOG": "false",
    "HUBBUB_LOG_LEVEL": "warning",
}


SCENARIOS = ["fanout", "memory", "storm", "startup", "durable", "history"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- machine -----------------------------------------------------------------------


def cpu_times() -> list[tuple[int, int]]:
    """(busy, total) jiffies per CPU."""
    out = []
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                v = [int(x) for x in line.split()[1:9]]
                total = sum(v)
                out.append((total - v[3] - v[4], total))
    return out


def machine_busy(seconds: float = 0.5) -> list[float]:
    a = cpu_times()
    time.sleep(seconds)
    b = cpu_times()
    return [
        round((b1 - a1) / (t2 - t1), 3) if t2 > t1 else 0.0
        for (a1, t1), (b1, t2) in zip(a, b, strict=False)
    ]


def wait_quiet(max_wait: float, threshold: float = 0.25) -> list[float]:
    """Wait (bounded) until no CPU is busier than threshold; return the last reading."""
    deadline = time.monotonic() + max_wait
    busy = machine_busy()
    while max(busy) > threshold and time.monotonic() < deadline:
        busy = machine_busy()
    return busy


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "gcc": subprocess.run(
            ["gcc", "-dumpfullversion"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


# -- processes ---------------------------------------------------------------------


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    started: float
    data_dir: Path | None = None
    logfile: Any = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.logfile:
            self.logfile.close()

    def log_tail(self) -> str:
        if self.logfile is None:
            return ""
        self.logfile.flush()
        return Path(self.logfile.name).read_text(errors="replace")[-2000:]


def start(
    name: str, cmd: list[str], cpu: int, port: int, env: dict[str, str] | None = None
) -> Server:
    logfile = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        ["taskset", "-c", str(cpu), *cmd],
        stdout=logfile,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )
    return Server(name, proc, port, time.monotonic(), logfile=logfile)


def wait_listening(srv: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            raise RuntimeError(f"{srv.name} exited: {srv.log_tail()}")
        if port_open(srv.port):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{srv.name} did not listen within {timeout} s")


def loadgen(
    port: int,
    cpu: int,
    conns: int,
    senders: int,
    *,
    rate: float = 0.0,
    window: int = WINDOW,
    duration: float,
    warmup: float,
    server_pid: int,
    auth_file: Path | None = None,
    conversation: str = "1",
    extra: list[str] | None = None,
) -> dict[str, Any]:
    opts = {
        "port": port,
        "conns": conns,
        "senders": senders,
        "rate": rate,
        "window": window,
        "duration": duration,
        "warmup": warmup,
        "drain": DRAIN,
        "server-pid": server_pid,
        "conversation": conversation,
        "connect-timeout": 60,
    }
    if auth_file:
        opts["auth-file"] = auth_file
    cmd = ["taskset", "-c", str(cpu), str(BIN / "loadgen")]
    for k, v in opts.items():
        cmd += [f"--{k}", str(v)]
    cmd += extra or []
    timeout = 60 + duration + warmup + DRAIN + 30
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    try:
        out: dict[str, Any] = json.loads(r.stdout)
    except json.JSONDecodeError:
        return {"outcome": f"loadgen failed (exit {r.returncode}): {r.stderr.strip()[-300:]}"}
    return out


# -- Hubbub ------------------------------------------------------------------------


def hubbub_available() -> str | None:
    """None if `hubbub serve` can be benchmarked, else why not."""
    if not HUBBUB.exists():
        return "no .venv/bin/hubbub (run ./scripts/setup)"
    r = subprocess.run(
        [str(HUBBUB), "serve", "--help"], capture_output=True, text=True, check=False
    )
    if r.returncode != 0:
        return f"`hubbub serve --help` failed: {r.stderr.strip()[-200:]}"
    return None


def start_hubbub(data_dir: Path, cpu: int) -> Server:
    port = free_port()
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
    cmd = [str(HUBBUB), *args]
    srv = start("hubbub", cmd, cpu, port, env=HUBBUB_ENV)
    srv.data_dir = data_dir
    return srv


def api(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {
            "Content-Type": "application/json",
            "Origin": f"http://127.0.0.1:{port}",  # cookie requests need a same-origin Origin
            **(headers or {}),
        }
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        cookies = {}
        for k, v in resp.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                cookies[name.strip()] = rest.split(";", 1)[0]
        return resp.status, cookies, json.loads(raw) if raw else None
    finally:
        conn.close()


def hubbub_setup(port: int, users: int, workdir: Path) -> tuple[str, Path]:
    """Register users, give each an API token, put all in room 'bench'.

    Returns the room id (JSON) and a file of Authorization header lines, one per user.
    """
    tokens: list[str] = []
    for i in range(users):
        name = f"bench{i:03d}"
        # The first account is the admin; it registers the others (self-registration
        # is limited per address), and each logs in for a session to make its token.
        admin = {"Authorization": f"Bearer {tokens[0]}"} if tokens else {}
        st, cookies, body = api(
            port, "POST", "/api/register", {"name": name, "password": PASSWORD}, admin
        )
        if st >= 400 and st != 409:
            raise RuntimeError(f"register {name}: {st} {body}")
        if "hubbub_session" not in cookies:
            st, cookies, body = api(
                port, "POST", "/api/login", {"name": name, "password": PASSWORD}
            )
            if st >= 400 or "hubbub_session" not in cookies:
                raise RuntimeError(f"login {name}: {st} {body}")
        cookie = {"Cookie": f"hubbub_session={cookies['hubbub_session']}"}
        st, _, body = api(port, "POST", "/api/tokens", {"name": "bench"}, cookie)
        if st >= 400:
            raise RuntimeError(f"token for {name}: {st} {body}")
        tokens.append(body["token"])
    bearer = {"Authorization": f"Bearer {tokens[0]}"}
    st, _, body = api(port, "POST", "/api/rooms", {"name": "bench"}, bearer)
    if st >= 400:
        st, _, body = api(port, "POST", "/api/rooms/join", {"name": "bench"}, bearer)
    if st >= 400:
        raise RuntimeError(f"room: {st} {body}")
    room = body["id"]
    for tok in tokens[1:]:
        st, _, body = api(
            port, "POST", "/api/rooms/join", {"name": "bench"}, {"Authorization": f"Bearer {tok}"}
        )
        if st >= 400:
            raise RuntimeError(f"join: {st} {body}")
    auth = workdir / "auth.txt"
    auth.write_text("".join(f"Authorization: Bearer {t}\n" for t in tokens))
    return json.dumps(room), auth


def health_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            s.settimeout(2)
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


# -- scenarios ---------------------------------------------------------------------


@dataclass
class Run:
    profile: dict[str, Any]
    server_cpu: int
    loadgen_cpu: int
    targets: list[str]
    deadline: float
    results: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def time_left(self) -> float:
        return self.deadline - time.monotonic()


def annotate(r: dict[str, Any], run: Run, background: list[float]) -> dict[str, Any]:
    busy = r.get("cpu_busy") or []
    if len(busy) > max(run.server_cpu, run.loadgen_cpu):
        s, lg = busy[run.server_cpu]["busy"], busy[run.loadgen_cpu]["busy"]
        r["server_core_busy"], r["loadgen_core_busy"] = s, lg
        # The load generator limits a run if its core is full while the server's is not.
        r["loadgen_bound"] = lg > 0.92 and s < 0.9
        # Other tenants of the machine: core time that neither process used
        # (softirq of loopback traffic included, about 0.1-0.2 under load).
        if r.get("server_cpu", -1) >= 0:
            foreign = max(s - r["server_cpu"], lg - r.get("loadgen_cpu", 0))
            r["foreign_busy"] = round(foreign, 3)
            r["contended"] = foreign > CONTENDED
    r["background_busy_before"] = background
    return r


def fanout_cases(profile: dict[str, Any]) -> list[dict[str, Any]]:
    cases = [
        {"n": n, "mode": "saturate", "senders": min(SENDERS, n), "rate": 0.0} for n in profile["ns"]
    ]
    cases += [
        {
            "n": n,
            "mode": f"{d // 1000}k/s",
            "senders": min(n, SENDERS, max(RATE_SENDERS, math.ceil(d / n / RATE_PER_SENDER))),
            "rate": d / n,
            "target": d,
        }
        for n, d in profile["rates"]
    ]
    return cases


def measure_fanout(
    run: Run, srv: Server, case: dict[str, Any], auth: Path | None, conv: str
) -> dict[str, Any]:
    best: dict[str, Any] = {}
    attempts = run.profile["attempts"]
    for attempt in range(attempts):
        r = measure_fanout_once(run, srv, case, auth, conv)
        r["attempt"] = attempt + 1
        if not best or r.get("foreign_busy", 1) < best.get("foreign_busy", 1):
            best = r
        if (
            not r.get("contended")
            or run.time_left() < run.profile["reserve_s"]
            or attempt == attempts - 1
        ):
            break
        log("  the machine was busy with other work during that run: once more")
    return best


def measure_fanout_once(
    run: Run, srv: Server, case: dict[str, Any], auth: Path | None, conv: str
) -> dict[str, Any]:
    bg = wait_quiet(run.profile["quiet_wait"])
    r = loadgen(
        srv.port,
        run.loadgen_cpu,
        case["n"],
        case["senders"],
        rate=case["rate"],
        window=WINDOW if case["rate"] == 0 else 100_000,
        duration=run.profile["duration"],
        warmup=run.profile["warmup"],
        server_pid=srv.pid,
        auth_file=auth,
        conversation=conv,
        extra=["--src-addrs", "4"] if case["n"] > 2000 else None,
    )
    return annotate(r, run, bg)


def scenario_fanout(run: Run, hub: Server | None, auth: Path | None, conv: str) -> None:
    out: list[dict[str, Any]] = []
    ceiling = start(
        "ceiling", [str(BIN / "ceiling"), "--port", str(p := free_port())], run.server_cpu, p
    )
    try:
        wait_listening(ceiling, 5)
        for case in fanout_cases(run.profile):
            if run.time_left() < 20:
                run.notes.append(f"fan-out {case['n']} {case['mode']}: skipped, out of time")
                continue
            row: dict[str, Any] = {**case}
            log(f"fan-out N={case['n']} {case['mode']}: ceiling")
            row["ceiling"] = measure_fanout(run, ceiling, case, None, "1")
            if hub is not None and "hubbub" in run.targets:
                log(f"fan-out N={case['n']} {case['mode']}: hubbub")
                row["hubbub"] = measure_fanout(run, hub, case, auth, conv)
                c, h = row["ceiling"], row["hubbub"]
                if c.get("deliveries_per_s") and "deliveries_per_s" in h:
                    row["ratio_deliveries"] = round(
                        h["deliveries_per_s"] / c["deliveries_per_s"], 3
                    )
                cl, hl = c.get("latency_us", {}), h.get("latency_us", {})
                if cl.get("p99") and hl.get("p99"):
                    row["ratio_p99"] = round(hl["p99"] / cl["p99"], 2)
            out.append(row)
    finally:
        ceiling.stop()
    run.results["fanout"] = out


def idle_memory(run: Run, srv: Server, auth: Path | None, conv: str) -> dict[str, Any]:
    # Warm the server with a few connections and messages first, so what loads on
    # first use (imports, caches) is not counted per connection.
    loadgen(
        srv.port,
        run.loadgen_cpu,
        20,
        1,
        rate=50,
        duration=0.5,
        warmup=0,
        server_pid=srv.pid,
        auth_file=auth,
        conversation=conv,
    )
    time.sleep(0.5)
    before = rss_kib(srv.pid)
    cmd = [
        "taskset",
        "-c",
        str(run.loadgen_cpu),
        str(BIN / "loadgen"),
        "--port",
        str(srv.port),
        "--conns",
        str(IDLE_CONNS),
        "--senders",
        "0",
        "--settle",
        "0",
        "--warmup",
        "0",
        "--duration",
        str(run.profile["idle_hold"]),
        "--drain",
        "0",
        "--src-addrs",
        "4",
        "--connect-timeout",
        "60",
        "--conversation",
        conv,
        *(["--auth-file", str(auth)] if auth else []),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    after = None
    live_line = ""
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 90
        for line in proc.stderr:
            if "connections live" in line:
                live_line = line.strip()
                time.sleep(2.0)  # let the server settle
                after = rss_kib(srv.pid)
                break
            if time.monotonic() > deadline:
                break
        stdout, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    try:
        result = json.loads(stdout)
    except (json.JSONDecodeError, UnboundLocalError):
        result = {}
    live = int(result.get("live_at_start", 0))
    res: dict[str, Any] = {"conns": IDLE_CONNS, "live": live, "rss_before_kib": before}
    if after is not None and live:
        res["rss_after_kib"] = after
        res["kib_per_conn"] = round((after - before) / live, 2)
    res["loadgen"] = live_line or result.get("first_error", "no connections")
    return res


def scenario_memory(run: Run, hub: Server | None, auth: Path | None, conv: str) -> None:
    out: dict[str, Any] = {}
    ceiling = start(
        "ceiling", [str(BIN / "ceiling"), "--port", str(p := free_port())], run.server_cpu, p
    )
    try:
        wait_listening(ceiling, 5)
        log("idle memory: ceiling")
        out["ceiling"] = idle_memory(run, ceiling, None, "1")
    finally:
        ceiling.stop()
    if hub is not None and "hubbub" in run.targets:
        log("idle memory: hubbub")
        out["hubbub"] = idle_memory(run, hub, auth, conv)
        c, h = out["ceiling"].get("kib_per_conn"), out["hubbub"].get("kib_per_conn")
        if c and h:
            out["ratio"] = round(h / c, 2)
    run.results["memory"] = out


def store_bench(run: Run, args: list[str], timeout: float) -> dict[str, Any]:
    """Run bench/store_bench.py pinned to the server's core; its JSON, or why not."""
    cmd = ["taskset", "-c", str(run.server_cpu), str(VENV_PY), str(BENCH / "store_bench.py"), *args]
    background = machine_busy()
    try:
        r = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return {"outcome": f"timed out after {timeout:.0f} s"}
    try:
        out: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {"outcome": f"store_bench failed (exit {r.returncode}): {r.stderr.strip()[-300:]}"}
    out["background_busy_before"] = background
    return out


def pg_url() -> str | None:
    return os.environ.get("HUBBUB_BENCH_PG_URL") or os.environ.get("HUBBUB_TEST_PG_URL")


def scenario_durable(run: Run, workdir: Path) -> None:
    """Scenario 3: acked (committed) appends per second and ack latency, SQLite and PostgreSQL."""
    p = run.profile
    engines: list[tuple[str, list[str]]] = [
        ("sqlite", ["--url", f"sqlite+aiosqlite:///{workdir}/durable-{{}}.db"])
    ]
    if url := pg_url():
        engines.append(("postgresql", ["--url", url, "--schema", "bench_{}", "--drop-schema"]))
    else:
        run.notes.append(
            "durable sends on PostgreSQL skipped: set HUBBUB_BENCH_PG_URL (or HUBBUB_TEST_PG_URL)"
        )
    out: list[dict[str, Any]] = []
    for engine, base in engines:
        for mode, extra in (
            ("saturating", ["--concurrency", str(DURABLE_CONCURRENCY)]),
            ("fixed-rate", ["--rate", str(DURABLE_RATE)]),
        ):
            if run.time_left() < 20:
                run.notes.append(f"durable {engine} {mode}: skipped, out of time")
                continue
            log(f"durable sends {engine} {mode}")
            tag = f"{os.getpid()}_{len(out)}"
            args = ["durable", *(a.replace("{}", tag) for a in base), *extra]
            args += ["--duration", str(p["duration"]), "--warmup", str(p["warmup"])]
            r = store_bench(run, args, 120 + p["duration"])
            r.setdefault("engine", engine)
            r.setdefault("mode", mode)
            out.append(r)
    run.results["durable"] = out


def scenario_history(run: Run) -> None:
    """Scenario 4: latest 50, a deep page and full-text search with many messages stored."""
    count = run.profile["history_count"]
    if run.time_left() < 60:
        run.notes.append("history: skipped, out of time")
        return
    log(f"history and search: loading {count:,} messages into SQLite")
    args = ["history", "--count", str(count), "--queries", str(run.profile["history_queries"])]
    run.results["history"] = store_bench(run, args, max(120.0, run.time_left() - 10))


def scenario_storm(run: Run, hub: Server | None, auth: Path | None, conv: str) -> None:
    """Scenario 5: N clients drop, M messages are sent, all N resume at once."""
    n, m = STORM_CONNS, run.profile["storm_missed"]
    out: dict[str, Any] = {"conns": n, "missed_messages": m}
    base = [
        "--server-pid", "0", "--senders", "0", "--conns", str(n), "--src-addrs", "4",
        "--connect-timeout", "60", "--drain", "30", "--duration", "0", "--warmup", "0",
    ]  # fmt: skip
    ceiling = start(
        "ceiling", [str(BIN / "ceiling"), "--port", str(p := free_port())], run.server_cpu, p
    )
    try:
        wait_listening(ceiling, 5)
        log(f"storm: ceiling, {n} connections at once (no replay)")
        out["ceiling"] = storm_loadgen(run, ceiling, base, None, "1")
    finally:
        ceiling.stop()
    if hub is None or auth is None:
        run.results["storm"] = out
        return
    log(f"storm: hubbub, {n} clients connect, drop; {m} messages; all resume")
    first = storm_loadgen(run, hub, base, auth, conv)
    out["hubbub_first_connect_s"] = first.get("connect_s")
    token = auth.read_text().splitlines()[0].split(": ", 1)[1]
    seqs = []
    for i in range(m):
        st, _, body = api(
            hub.port,
            "POST",
            f"/api/conversations/{conv}/messages",
            {"text": f"while away {i}", "nonce": f"storm-{time.time_ns()}-{i}"},
            {"Authorization": token},
        )
        if st >= 400:
            out["hubbub"] = {"outcome": f"send while away: {st} {body}"}
            run.results["storm"] = out
            return
        seqs.append(body["seq"])
    frm, to = seqs[0] - 1, seqs[-1]
    r = storm_loadgen(
        run, hub, [*base, "--resume-from", str(frm), "--expect-seq", str(to)], auth, conv
    )
    out["hubbub"] = r
    run.results["storm"] = out


def storm_loadgen(
    run: Run, srv: Server, base: list[str], auth: Path | None, conv: str
) -> dict[str, Any]:
    cmd = ["taskset", "-c", str(run.loadgen_cpu), str(BIN / "loadgen"), "--port", str(srv.port)]
    cmd += [*base, "--conversation", conv]
    if auth:
        cmd += ["--auth-file", str(auth)]
    background = machine_busy()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=150, check=False)
    try:
        out: dict[str, Any] = json.loads(r.stdout)
    except json.JSONDecodeError:
        return {"outcome": f"loadgen failed (exit {r.returncode}): {r.stderr.strip()[-300:]}"}
    out["background_busy_before"] = background
    out["server_rss_kib"] = rss_kib(srv.pid)
    return out


def scenario_startup(run: Run) -> None:
    """From launching the plain `hubbub serve` to the first answered /api/health."""
    runs = run.profile["startup_runs"]
    times: list[float] = []
    first = None
    # An installed Hubbub starts from compiled modules (pip compiles at install);
    # this editable checkout may not have them (PYTHONDONTWRITEBYTECODE is set on
    # some machines), and compiling ~17k lines on every start is not startup.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "hubbub")],
        check=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )
    with tempfile.TemporaryDirectory(prefix="hubbub-bench-start-") as tmp:
        for i in range(runs):
            if run.time_left() < 15:
                run.notes.append("startup: stopped early, out of time")
                break
            wait_quiet(min(3.0, run.profile["quiet_wait"]))
            srv = start_hubbub(Path(tmp), run.server_cpu)
            try:
                deadline = srv.started + 30
                while time.monotonic() < deadline and srv.proc.poll() is None:
                    if health_ok(srv.port):
                        break
                    time.sleep(0.005)
                else:
                    raise RuntimeError(f"hubbub did not answer /api/health: {srv.log_tail()}")
                took = time.monotonic() - srv.started
            finally:
                srv.stop()
            if i == 0:
                first = took  # empty data directory: creates and migrates the database
            else:
                times.append(took)
            log(f"startup {i}: {took:.3f} s")
    # The ceiling for comparison: exec to listening socket.
    p = free_port()
    t0 = time.monotonic()
    c = start("ceiling", [str(BIN / "ceiling"), "--port", str(p)], run.server_cpu, p)
    try:
        wait_listening(c, 5)
        ceil_s = time.monotonic() - t0
    finally:
        c.stop()
    run.results["startup"] = {
        "first_start_empty_dir_s": round(first, 3) if first is not None else None,
        "restart_median_s": round(statistics.median(times), 3) if times else None,
        "restart_all_s": [round(t, 3) for t in times],
        "ceiling_s": round(ceil_s, 4),
    }


# -- report ------------------------------------------------------------------------


def fmt_rate(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.0f}k"


def fmt_ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:.1f}"


def per_write(r: dict[str, Any]) -> str:
    """Deliveries per write syscall of the server: how much each socket write coalesces."""
    w = r.get("server_writes_per_s") or 0
    return f"{r['deliveries_per_s'] / w:.1f}" if w > 0 and r.get("deliveries_per_s") else "-"


def table(results: dict[str, Any]) -> str:
    lines = []
    if "fanout" in results:
        lines.append(
            "Fan-out (one room; deliveries/s; latency ms from send to receipt; "
            "d/w = deliveries per server write syscall)"
        )
        hdr = (
            f"{'N':>5} {'mode':>9} | {'ceiling':>8} {'p50':>6} {'p99':>7} {'d/w':>5} | "
            f"{'hubbub':>8} {'p50':>6} {'p99':>7} {'d/w':>5} | {'ratio':>6} notes"
        )
        lines += [hdr, "-" * len(hdr)]
        for row in results["fanout"]:
            c, h = row.get("ceiling", {}), row.get("hubbub", {})
            notes = []
            for who, r in (("ceiling", c), ("hubbub", h)):
                if not r:
                    continue
                if r.get("outcome") != "ok":
                    notes.append(f"{who}: {r.get('outcome')}")
                if r.get("contended"):
                    notes.append(f"{who}: machine busy ({r['foreign_busy']:.0%} of a core)")
                if r.get("loadgen_bound"):
                    notes.append(f"{who}: loadgen-bound")
                errs = {k: v for k, v in (r.get("errors") or {}).items() if v}
                if errs:
                    notes.append(f"{who}: {errs}")
                if r.get("gaps") or r.get("duplicates") or r.get("missing"):
                    notes.append(
                        f"{who}: missing {r.get('missing')} gaps {r.get('gaps')} dups {r.get('duplicates')}"
                    )
                if r.get("connect_s", 0) > 3:
                    notes.append(f"{who}: {r['conns']} connects took {r['connect_s']:.1f} s")
                if r.get("first_error"):
                    notes.append(f"{who}: {r['first_error'][:80]}")
            cl, hl = c.get("latency_us", {}), h.get("latency_us", {})
            ratio = row.get("ratio_deliveries")
            lines.append(
                f"{row['n']:>5} {row['mode']:>9} | {fmt_rate(c.get('deliveries_per_s')):>8} "
                f"{fmt_ms(cl.get('p50')):>6} {fmt_ms(cl.get('p99')):>7} {per_write(c):>5} | "
                f"{fmt_rate(h.get('deliveries_per_s')) if h else '-':>8} "
                f"{fmt_ms(hl.get('p50')):>6} {fmt_ms(hl.get('p99')):>7} {per_write(h):>5} | "
                f"{f'{ratio:.0%}' if ratio else '-':>6} {'; '.join(notes)}"
            )
        lines.append("")
    if "memory" in results:
        m = results["memory"]
        lines.append(f"Idle memory per WebSocket connection ({IDLE_CONNS} connections, RSS delta)")
        for who in ("ceiling", "hubbub"):
            if who in m:
                r = m[who]
                lines.append(
                    f"  {who:8} {r.get('kib_per_conn', '-')} KiB/conn "
                    f"({r.get('live')} live; {r.get('rss_before_kib')} -> {r.get('rss_after_kib')} KiB)"
                )
        if "ratio" in m:
            lines.append(f"  ratio    {m['ratio']}x the ceiling")
        lines.append("")
    if "startup" in results:
        s = results["startup"]
        lines.append("Startup (launch `hubbub serve` -> first answered /api/health)")
        lines.append(f"  empty data dir: {s['first_start_empty_dir_s']} s")
        lines.append(f"  restart median: {s['restart_median_s']} s  {s['restart_all_s']}")
        lines.append(f"  ceiling (exec -> listening): {s['ceiling_s']} s")
        lines.append("")
    if "storm" in results:
        st = results["storm"]
        lines.append(
            f"Reconnect storm ({st['conns']} clients resume at once, "
            f"{st['missed_messages']} messages missed each)"
        )
        c = st.get("ceiling", {})
        lines.append(f"  ceiling  {c.get('connect_s')} s to connect all (no replay)")
        h = st.get("hubbub")
        if h:
            sm = h.get("storm", {})
            lines.append(
                f"  hubbub   all caught up after {sm.get('all_caught_s')} s "
                f"(connected {h.get('connect_s')} s; {sm.get('caught_up')} caught up; "
                f"missing {sm.get('missing')} gaps {sm.get('gaps')} dups {sm.get('duplicates')}; "
                f"outcome {h.get('outcome')}; first connect {st.get('hubbub_first_connect_s')} s)"
            )
        lines.append("")
    if "durable" in results:
        lines.append("Durable sends (Store.append with concurrent callers; ack = commit)")
        for r in results["durable"]:
            lat = r.get("ack_latency", {})
            lines.append(
                f"  {r.get('engine', '?'):10} {r.get('mode', '?'):10} "
                f"{r.get('acked_per_s', '-'):>9} acked/s  p50 {lat.get('p50_ms', '-')} ms  "
                f"p99 {lat.get('p99_ms', '-')} ms  mean batch {r.get('mean_batch', '-')}  "
                f"stored once: {r.get('dense', '-')}  {'' if r.get('outcome') == 'ok' else r.get('outcome')}"
            )
        lines.append("")
    if "history" in results:
        h = results["history"]
        ld = h.get("load", {})
        lines.append(
            f"History and search (SQLite, {ld.get('count', 0):,} messages, "
            f"{ld.get('room_messages', 0):,} in the room; loaded in {ld.get('load_s')} s; "
            f"{ld.get('db_mib')} MiB)"
        )
        if h.get("outcome") != "ok":
            lines.append(f"  {h.get('outcome')}")
        for k in (
            "latest_50",
            "deep_page_50",
            "search_common_50",
            "search_rare",
            "search_two_words_50",
        ):
            if k in h:
                r = h[k]
                lines.append(
                    f"  {k:20} p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  ({r['results']} results)"
                )
    return "\n".join(lines)


def plot(results: dict[str, Any], stamp: str) -> list[Path]:
    try:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log(
            "plots skipped: matplotlib is not installed; "
            "`.venv/bin/pip install -r bench/requirements.txt` adds it"
        )
        return []
    rows = results.get("fanout") or []
    sat = [r for r in rows if r["mode"] == "saturate"]
    paths = []
    if sat:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
        for who, style in (("ceiling", "o-"), ("hubbub", "s-")):
            pts = [(r["n"], r[who]) for r in sat if r.get(who, {}).get("deliveries_per_s")]
            if not pts:
                continue
            ns = [n for n, _ in pts]
            ax1.plot(ns, [r["deliveries_per_s"] / 1e6 for _, r in pts], style, label=who)
            ax2.plot(ns, [r["latency_us"]["p50"] / 1e3 for _, r in pts], style, label=f"{who} p50")
            ax2.plot(
                ns,
                [r["latency_us"]["p99"] / 1e3 for _, r in pts],
                style.replace("-", "--"),
                label=f"{who} p99",
            )
        for ax in (ax1, ax2):
            ax.set_xscale("log")
            ax.set_xlabel("clients in the room (N)")
            ax.grid(True, alpha=0.3)
            ax.legend()
        ax1.set_ylabel("deliveries/s (millions), saturating")
        ax1.set_yscale("log")
        for ax in (ax1, ax2):
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax1.set_title("Fan-out throughput")
        ax2.set_ylabel("latency (ms), saturating")
        ax2.set_yscale("log")
        ax2.set_title("Fan-out latency")
        fig.tight_layout()
        p = OUT / f"fanout-{stamp}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    fixed = [r for r in rows if r["mode"] != "saturate"]
    if fixed:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        labels = [f"N={r['n']}\n{r['mode']}" for r in fixed]
        x = range(len(fixed))
        for k, who in enumerate(("ceiling", "hubbub")):
            vals = [r.get(who, {}).get("latency_us", {}).get("p99") for r in fixed]
            if any(vals):
                ax.bar(
                    [i + k * 0.4 for i in x],
                    [(v or 0) / 1e3 for v in vals],
                    0.4,
                    label=f"{who} p99",
                )
        ax.set_xticks([i + 0.2 for i in x], labels)
        ax.set_ylabel("p99 latency (ms) at a fixed rate")
        ax.legend()
        ax.grid(True, axis="y", alpha=0.3)
        fig.tight_layout()
        p = OUT / f"latency-fixed-{stamp}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths


# -- main --------------------------------------------------------------------------


def build() -> None:
    srcs = list((BENCH / "c").glob("*.[ch]"))
    bins = [BIN / "ceiling", BIN / "loadgen"]
    newest = max(s.stat().st_mtime for s in srcs)
    if all(b.exists() and b.stat().st_mtime >= newest for b in bins):
        return
    log("building bench/bin/ (bench/build.sh)")
    subprocess.run([str(BENCH / "build.sh")], check=True, timeout=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_const", dest="profile", const="quick")
    g.add_argument("--full", action="store_const", dest="profile", const="full")
    ap.add_argument("--only", default=",".join(SCENARIOS), help="scenarios, comma-separated")
    ap.add_argument("--target", choices=["both", "ceiling", "hubbub"], default="both")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--loadgen-cpu", type=int, default=1)
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    profile_name = args.profile or "quick"
    profile = PROFILES[profile_name]
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if (os.cpu_count() or 1) < 2:
        ap.error("needs two CPUs: one for the server, one for the load generator")
    for tool in ("taskset", "gcc"):
        if not shutil.which(tool):
            ap.error(f"{tool} is not installed")

    build()
    OUT.mkdir(parents=True, exist_ok=True)
    targets = ["ceiling", "hubbub"] if args.target == "both" else [args.target]
    run = Run(
        profile, args.server_cpu, args.loadgen_cpu, targets, time.monotonic() + profile["budget_s"]
    )
    if "hubbub" in targets and (why := hubbub_available()):
        run.notes.append(f"Hubbub not measured: {why}")
        targets.remove("hubbub")
    if "hubbub" not in targets:
        only.discard("startup")

    t0 = time.monotonic()
    took: dict[str, float] = {}  # seconds per scenario (and the setup)

    def timed(name: str, fn: Any, *fn_args: Any) -> None:
        started = time.monotonic()
        try:
            fn(*fn_args)
        finally:
            took[name] = round(time.monotonic() - started, 1)

    hub: Server | None = None
    auth: Path | None = None
    conv = "1"
    workdir = Path(tempfile.mkdtemp(prefix="hubbub-bench-"))
    try:
        if "hubbub" in targets and only & {"fanout", "memory", "storm"}:
            log("starting hubbub and creating users, tokens and a room")
            started = time.monotonic()
            hub = start_hubbub(workdir / "data", run.server_cpu)
            try:
                wait_listening(hub, 30)
                conv, auth = hubbub_setup(hub.port, USERS, workdir)
                took["setup"] = round(time.monotonic() - started, 1)
            except Exception as exc:
                run.notes.append(f"Hubbub not measured: {exc}")
                hub.stop()
                hub = None
        if "memory" in only:  # first, on a fresh server process
            timed("memory", scenario_memory, run, hub, auth, conv)
        if "fanout" in only:
            timed("fanout", scenario_fanout, run, hub, auth, conv)
        if "storm" in only:
            timed("storm", scenario_storm, run, hub, auth, conv)
        if hub is not None:
            hub.stop()
            hub = None
        if "startup" in only:
            timed("startup", scenario_startup, run)
        if "hubbub" in targets and "durable" in only:
            timed("durable", scenario_durable, run, workdir)
        if "hubbub" in targets and "history" in only:
            timed("history", scenario_history, run)
    finally:
        if hub is not None:
            hub.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    doc = {
        "suite": "hubbub bench",
        "profile": profile_name,
        "started": stamp,
        "elapsed_s": round(time.monotonic() - t0, 1),
        "machine": machine_info(),
        "pinning": {"server_cpu": args.server_cpu, "loadgen_cpu": args.loadgen_cpu},
        "settings": {
            "senders": SENDERS,
            "window": WINDOW,
            "rate_senders": f"max({RATE_SENDERS}, msgs/s / {RATE_PER_SENDER})",
            "users": USERS,
            "hubbub_env": HUBBUB_ENV,
        },
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        ).stdout.strip(),
        "results": run.results,
        "scenario_s": took,
        "notes": run.notes,
    }
    path = OUT / f"results-{stamp}.json"
    path.write_text(json.dumps(doc, indent=1))
    (OUT / "latest.json").write_text(json.dumps(doc, indent=1))
    print(table(run.results))
    print(
        f"took {doc['elapsed_s']} s ({profile_name}): "
        + ", ".join(f"{k} {v} s" for k, v in took.items())
    )
    for n in run.notes:
        print(f"note: {n}")
    print(f"JSON: {path.relative_to(ROOT)}")
    if not args.no_plot:
        for p in plot(run.results, stamp):
            print(f"plot: {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
