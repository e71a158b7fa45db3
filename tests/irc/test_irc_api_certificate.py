"""A network's client certificate for SASL EXTERNAL over REST: made by Hubbub,
its fingerprints shown, its key sealed at rest and never answered, and the
certificate the fingerprint names is the one a TLS server sees in the handshake
(the scripted server of fakeserver.py reads the peer certificate)."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakeserver import FakeServer, Peer
from ircservers import IrcServer, require
from rawirc import RawIrc

from hubbub.core.model import Network
from hubbub.irc import certs
from hubbub.irc.config import ClientConfig
from hubbub.irc.connection import Connection
from hubbub.irc.events import Registered, SaslResult
from testenv import RunningServer, scaled

sys.path.insert(0, str(Path(__file__).parent.parent / "ws"))
from wshelp import make_account

CAPS = "server-time message-tags sasl=PLAIN,EXTERNAL"


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    account = await make_account(server.services, "ada")
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {account.token}"}, timeout=10
    ) as client:
        yield client


async def add_network(http: httpx.AsyncClient, port: int = 6697, **more: Any) -> dict[str, Any]:
    body = {"name": "certnet", "host": "127.0.0.1", "port": port, "nick": "ada", "connect": False}
    r = await http.post("/api/networks", json={**body, **more})
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


def server_context(tmp_path: Path, client_cert_pem: str) -> ssl.SSLContext:
    """A TLS server that asks for a client certificate (and trusts this one)."""
    pair = certs.self_signed("fake.test", ("127.0.0.1",))
    cert, key = pair.write(tmp_path, "server")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(cadata=client_cert_pem)
    return ctx


def external_script(seen: list[str]) -> Any:
    """Record the peer certificate's fingerprint, then a SASL EXTERNAL success."""

    async def script(peer: Peer) -> None:
        der = peer.writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        seen.append(certs.der_fingerprint(der) if der else "")
        await peer.expect("CAP LS")
        await peer.send(f":fake CAP * LS :{CAPS}")
        req = await peer.expect("CAP REQ")
        await peer.send(f":fake CAP * ACK :{req.split(' ', 2)[2].lstrip(':')}")
        assert await peer.expect("AUTHENTICATE") == "AUTHENTICATE EXTERNAL"
        await peer.send("AUTHENTICATE +")
        assert await peer.expect("AUTHENTICATE") == "AUTHENTICATE +"
        await peer.send(":fake 903 ada :SASL authentication successful")
        await peer.expect("CAP END")
        await peer.welcome("ada")
        await asyncio.sleep(5)

    return script


async def stored(server: RunningServer, network_id: int) -> Network:
    network = await server.services.store.get_network(network_id)
    assert network is not None
    return network


async def test_external_network_gets_a_certificate_whose_key_stays_sealed(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    network = await add_network(http, sasl_mechanism="EXTERNAL")
    fp = network["cert_fingerprint"]
    assert isinstance(fp, str) and len(fp) == 64 and int(fp, 16) >= 0
    assert len(network["cert_fingerprint_sha512"]) == 128

    r = await http.get(f"/api/networks/{network['id']}/certificate")
    assert r.status_code == 200, r.text
    cert = r.json()
    assert cert["fingerprint"] == fp
    assert cert["hint"] == f"/msg NickServ CERT ADD {fp}"
    assert certs.fingerprint(cert["certificate"].encode()) == fp
    assert "PRIVATE KEY" not in r.text

    # the key: sealed in the secrets (AES-GCM), in no answer and nowhere in the database file
    row = await stored(server, network["id"])
    assert "PRIVATE KEY" not in str(row.config)
    key_pem = server.services.irc.box.open(row.config["secrets"], row.id)[certs.SECRET_KEY]  # type: ignore[union-attr]
    assert key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    key_body = key_pem.splitlines()[1]
    for path in server.settings.data_dir.glob("hubbub.db*"):
        data = path.read_bytes()
        assert b"PRIVATE KEY" not in data and key_body.encode() not in data, path
    for url in ("/api/networks", f"/api/networks/{network['id']}"):
        body = (await http.get(url)).text
        assert "PRIVATE KEY" not in body and key_body not in body
        assert fp in body

    # regenerate: a new certificate and key; delete: none
    r = await http.post(f"/api/networks/{network['id']}/certificate")
    assert r.status_code == 200, r.text
    assert r.json()["fingerprint"] != fp
    assert (await http.get(f"/api/networks/{network['id']}")).json()[
        "cert_fingerprint"
    ] == r.json()["fingerprint"]
    r = await http.delete(f"/api/networks/{network['id']}/certificate")
    assert r.status_code == 204, r.text
    answer = (await http.get(f"/api/networks/{network['id']}")).json()
    assert answer["cert_fingerprint"] is None and answer["cert_fingerprint_sha512"] is None
    assert (await http.get(f"/api/networks/{network['id']}/certificate")).status_code == 404
    row = await stored(server, network["id"])
    assert certs.SECRET_KEY not in server.services.irc.box.open(
        str(row.config.get("secrets", "")), row.id
    )

    # switching an existing network to EXTERNAL makes one; another user's network: not_found
    r = await http.patch(f"/api/networks/{network['id']}", json={"sasl_mechanism": "EXTERNAL"})
    assert r.status_code == 200 and r.json()["cert_fingerprint"], r.text
    plain = await add_network(http, name="plainnet")
    assert plain["cert_fingerprint"] is None
    other = await make_account(server.services, "bob")
    r = await http.post(
        f"/api/networks/{network['id']}/certificate",
        headers={"Authorization": f"Bearer {other.token}"},
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_fingerprint_is_the_certificate_of_the_tls_handshake(
    server: RunningServer, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The pair stored for the network, loaded the way a connection loads it
    (``certs.network_files``: memory files, no key on disk), is what the TLS
    server sees, and the fingerprint the API shows is that certificate's."""
    network = await add_network(http)
    r = await http.post(f"/api/networks/{network['id']}/certificate")
    assert r.status_code == 200, r.text
    shown = r.json()
    seen: list[str] = []
    async with FakeServer(
        [external_script(seen)], ssl_context=server_context(tmp_path, shown["certificate"])
    ) as fake:
        r = await http.patch(
            f"/api/networks/{network['id']}",
            json={"port": fake.port, "sasl_mechanism": "EXTERNAL", "accept_self_signed": True},
        )
        assert r.status_code == 200, r.text
        row = await stored(server, network["id"])
        irc = server.services.irc
        assert irc is not None
        secrets = irc.box.open(str(row.config.get("secrets", "")), row.id)
        cert_path, key_path = certs.network_files(row.config, secrets)
        assert cert_path is not None and key_path is not None
        assert not str(key_path).startswith(str(server.settings.data_dir))
        cfg = irc.network_config(row)
        cfg = dataclasses.replace(
            cfg,
            client_cert=cert_path,
            client_key=key_path,
            client=dataclasses.replace(cfg.client, throttle_interval=0.01),
        )
        assert isinstance(cfg.client, ClientConfig)
        conn = Connection(cfg)
        conn.start()
        try:
            async with asyncio.timeout(scaled(10)):
                while not isinstance(event := await conn.next_event(), SaslResult):
                    pass
            assert event.success and event.mechanism == "EXTERNAL"
        finally:
            await conn.stop()
        assert not fake.errors, fake.errors
    assert seen == [shown["fingerprint"]]
    assert shown["fingerprint_sha512"] == certs.info(shown["certificate"]).sha512


@pytest.fixture
def inspircd_certfp(tmp_path: Path) -> Any:
    """InspIRCd with sslinfo: WHOIS tells a user's TLS client certificate fingerprint
    (SHA-256, the listener's ``hash``), as services see it for CertFP."""
    server = IrcServer("inspircd", require("inspircd"), tmp_path / "inspircd")
    conf = server.directory / "inspircd.conf"
    conf.write_text(conf.read_text() + '<module name="sslinfo">\n<sslinfo operonly="no">\n')
    server.start()
    yield server
    server.stop()


async def test_inspircd_sees_the_fingerprint_the_api_shows(
    server: RunningServer, http: httpx.AsyncClient, inspircd_certfp: IrcServer
) -> None:
    """A real server: our connection, with the network's stored pair, connects
    over TLS; InspIRCd's WHOIS (276) names the certificate by the fingerprint
    the API showed, the one to give NickServ."""
    ircd = inspircd_certfp
    network = await add_network(http, port=ircd.tls_port, accept_self_signed=True, nick="certada")
    shown = (await http.post(f"/api/networks/{network['id']}/certificate")).json()
    row = await stored(server, network["id"])
    irc = server.services.irc
    assert irc is not None
    cert_path, key_path = certs.network_files(
        row.config, irc.box.open(str(row.config.get("secrets", "")), row.id)
    )
    cfg = dataclasses.replace(irc.network_config(row), client_cert=cert_path, client_key=key_path)
    conn = Connection(cfg)
    conn.start()
    bob = None
    try:
        async with asyncio.timeout(scaled(20)):
            while not isinstance(await conn.next_event(), Registered):
                pass
        bob = await RawIrc.connect(ircd.port, "bobcert")
        await bob.send("WHOIS certada")
        line = await bob.expect(lambda line: b" 276 " in line or b" 318 " in line)
        assert b" 276 " in line, line
        assert shown["fingerprint"].encode() in line.lower(), line
    finally:
        if bob is not None:
            await bob.close()
        await conn.stop()


async def test_connect_presents_the_network_certificate(
    server: RunningServer, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """End to end: POST /connect on an EXTERNAL network presents its certificate."""
    network = await add_network(http, sasl_mechanism="EXTERNAL")
    cert = (await http.get(f"/api/networks/{network['id']}/certificate")).json()
    seen: list[str] = []
    async with FakeServer(
        [external_script(seen)], ssl_context=server_context(tmp_path, cert["certificate"])
    ) as fake:
        r = await http.patch(
            f"/api/networks/{network['id']}", json={"port": fake.port, "accept_self_signed": True}
        )
        assert r.status_code == 200, r.text
        assert (await http.post(f"/api/networks/{network['id']}/connect")).status_code == 200
        async with asyncio.timeout(scaled(10)):
            while not seen:
                await asyncio.sleep(0.05)
        await http.post(f"/api/networks/{network['id']}/disconnect")
    assert seen == [network["cert_fingerprint"]]
