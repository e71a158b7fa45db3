"""The nginx example of docs/deploy.md, run for real (TLS left out) in front of Hubbub.

Skipped when nginx is not installed (Debian: ``apt-get install nginx-light``).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from hubbub.config import Settings
from testenv import scaled

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")

PASSWORD = "long enough pw"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


NGINX_PORT = free_port()


def site_config(upstream_port: int, listen_port: int) -> str:
    """The doc's nginx site, with plain HTTP on test ports instead of TLS on 443."""
    text = DEPLOY.read_text()
    block = re.search(r"```nginx\n(.*?)```", text, re.DOTALL)
    assert block is not None, "docs/deploy.md has no nginx example"
    site = block.group(1)
    site = site.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};")
    site = re.sub(r"\n\s*listen \[::\]:443 ssl http2;", "", site)
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{listen_port};")
    site = re.sub(r"\n\s*ssl_certificate\S*\s+[^;]+;", "", site)
    # the port-80 redirect server is the last block
    site = site[: site.rindex("server {")]
    # $host drops the port; the test's port is not 443 (see the doc's note)
    site = site.replace("$host;", "$http_host;")
    assert "proxy_set_header X-Request-Base /chat;" in site
    return site


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    # the doc's hubbub.toml, with the test's nginx address as public URL
    return make_settings(
        public_url=f"http://127.0.0.1:{NGINX_PORT}/chat/",
        trust_forwarded=True,
        trusted_proxies=["127.0.0.1", "::1"],
    )


@pytest.fixture
def nginx(server, tmp_path: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    prefix = tmp_path / "nginx"
    (prefix / "logs").mkdir(parents=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
daemon off;
user root;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{site_config(server.port, NGINX_PORT)}
}}
"""
    )
    assert NGINX is not None
    check = subprocess.run([NGINX, "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True)
    assert check.returncode == 0, check.stderr.decode()
    process = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(int(scaled(500))):
            try:
                socket.create_connection(("127.0.0.1", NGINX_PORT), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    raise AssertionError((prefix / "logs" / "error.log").read_text()) from None
                subprocess.run(["sleep", "0.01"], check=True)
        yield f"http://127.0.0.1:{NGINX_PORT}"
    finally:
        process.terminate()
        process.wait(timeout=scaled(10))


@pytest.fixture
async def client(nginx: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=nginx, headers={"Origin": nginx}) as c:
        yield c


async def test_http_through_nginx_under_chat(client: httpx.AsyncClient, nginx: str) -> None:
    health = await client.get("/chat/api/health")
    assert health.status_code == 200
    bare = await client.get("/chat", follow_redirects=False)
    assert bare.status_code == 301
    assert bare.headers["location"].endswith("/chat/")
    registered = await client.post(
        "/chat/api/register", json={"name": "alice", "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text
    assert "Path=/chat" in registered.headers["set-cookie"]
    me = await client.get("/chat/api/me")
    assert me.status_code == 200
    assert "alice" in me.text
    metrics = await client.get("/chat/metrics")  # allowed from loopback only
    assert metrics.status_code == 200
    assert 'route="/health",status="200"' in metrics.text


async def test_websocket_through_nginx(client: httpx.AsyncClient, nginx: str) -> None:
    registered = await client.post(
        "/chat/api/register", json={"name": "alice", "password": PASSWORD}
    )
    assert registered.status_code == 201
    cookie = registered.headers["set-cookie"].split(";", 1)[0]
    ws_url = nginx.replace("http://", "ws://") + "/chat/api/ws"
    async with connect(
        ws_url, additional_headers={"Cookie": cookie, "Origin": nginx}, open_timeout=scaled(10)
    ) as ws:
        ready = orjson.loads(await asyncio.wait_for(ws.recv(), scaled(10)))
        assert ready["type"] == "ready"
    # a foreign origin is refused, through nginx as directly
    with pytest.raises(Exception, match=r"403|rejected"):
        async with connect(
            ws_url,
            additional_headers={"Cookie": cookie, "Origin": "https://evil.example"},
            open_timeout=scaled(10),
        ):
            pass
