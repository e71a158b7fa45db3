"""Our Connection against a scripted IRCv3 server: SASL, chathistory gap fill, garbage."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fakeserver import FakeServer, Peer
from rawirc import EventLog

from hubbub.irc import certs
from hubbub.irc.config import ClientConfig, Sasl, SaslMechanism
from hubbub.irc.connection import Connection, ConnState, NetworkConfig, Reconnecting
from hubbub.irc.events import (
    Disconnected,
    Error,
    History,
    Message,
    Names,
    Registered,
    SaslResult,
)
from testenv import scaled

FAST = {"throttle_burst": 10, "throttle_interval": 0.01}
CAPS = "server-time message-tags batch labeled-response draft/chathistory echo-message sasl=PLAIN,EXTERNAL"


def config(port: int, **kw: object) -> NetworkConfig:
    client_kw = {k: kw.pop(k) for k in list(kw) if k in ("sasl", "nick")}
    client = ClientConfig(nick=str(client_kw.pop("nick", "hubbub")), **client_kw, **FAST)  # type: ignore[arg-type]
    options: dict[str, object] = {
        "tls": False,
        "backoff_base": 0.05,
        "backoff_cap": 0.2,
        "allow_private_addresses": True,  # the server is on 127.0.0.1
        **kw,
    }
    return NetworkConfig("127.0.0.1", port, client, **options)  # type: ignore[arg-type]


@pytest.fixture
async def conns() -> AsyncIterator[list[Connection]]:
    started: list[Connection] = []
    yield started
    for conn in started:
        await conn.stop()


def run(conns: list[Connection], cfg: NetworkConfig) -> tuple[Connection, EventLog]:
    conn = Connection(cfg)
    conns.append(conn)
    conn.start()
    return conn, EventLog(conn)


async def sasl_exchange(peer: Peer, mechanism: str) -> str:
    await peer.expect("CAP LS")
    await peer.send(f":fake CAP * LS :{CAPS}")
    req = await peer.expect("CAP REQ")
    assert "sasl" in req.split()
    await peer.send(f":fake CAP * ACK :{req.split(' ', 2)[2].lstrip(':')}")
    assert await peer.expect("AUTHENTICATE") == f"AUTHENTICATE {mechanism}"
    await peer.send("AUTHENTICATE +")
    return (await peer.expect("AUTHENTICATE")).split(" ", 1)[1]


async def test_sasl_plain_success(conns: list[Connection]) -> None:
    async def script(peer: Peer) -> None:
        payload = await sasl_exchange(peer, "PLAIN")
        assert base64.b64decode(payload) == b"\0acct\0s3cret"
        await peer.send(
            ":fake 900 hubbub hubbub!u@h acct :You are now logged in as acct",
            ":fake 903 hubbub :SASL authentication successful",
        )
        await peer.expect("CAP END")
        await peer.welcome()
        await asyncio.sleep(5)

    async with FakeServer([script]) as server:
        _conn, log = run(
            conns, config(server.port, sasl=Sasl(SaslMechanism.PLAIN, "acct", "s3cret"))
        )
        result = await log.wait(lambda e: isinstance(e, SaslResult))
        assert result == SaslResult(True, "PLAIN", "acct", "SASL authentication successful")
        await log.wait(lambda e: isinstance(e, Registered))
        assert not server.errors


@pytest.mark.parametrize("required", [False, True])
async def test_sasl_failure(conns: list[Connection], required: bool) -> None:
    async def script(peer: Peer) -> None:
        await sasl_exchange(peer, "PLAIN")
        await peer.send(":fake 904 hubbub :SASL authentication failed")
        if required:
            quit_line = await peer.expect("QUIT")
            assert "SASL failed" in quit_line
            await peer.send("ERROR :Closing link")
            await peer.close()
            return
        await peer.expect("CAP END")
        await peer.welcome()
        await asyncio.sleep(5)

    async with FakeServer([script, script]) as server:
        sasl = Sasl(SaslMechanism.PLAIN, "acct", "wrong", required=required)
        conn, log = run(conns, config(server.port, sasl=sasl))
        result = await log.wait(lambda e: isinstance(e, SaslResult))
        assert not result.success and result.message == "SASL authentication failed"
        if required:
            final = await log.wait(lambda e: isinstance(e, Disconnected))
            assert final == Disconnected(
                "SASL failed (904: SASL authentication failed)", retry=False
            )
            await asyncio.sleep(scaled(0.5))
            assert conn.state is ConnState.FAILED
            assert server.connections == 1  # no retry loop against a refusal
        else:
            await log.wait(lambda e: isinstance(e, Registered))
        assert not server.errors


async def test_sasl_external_with_a_generated_client_certificate(
    conns: list[Connection], tmp_path: Path
) -> None:
    server_pair = certs.self_signed("fake.test", ("127.0.0.1",))
    server_cert, server_key = server_pair.write(tmp_path, "server")
    client_pair = certs.client_cert("fake network")
    client_cert, client_key = client_pair.write(tmp_path / "net1", "client")
    assert oct(client_key.stat().st_mode & 0o777) == "0o600"
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(server_cert, server_key)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(cadata=client_pair.cert_pem.decode())
    seen_fp: list[str] = []

    async def script(peer: Peer) -> None:
        der = peer.writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        seen_fp.append(certs.der_fingerprint(der) if der else "")
        payload = await sasl_exchange(peer, "EXTERNAL")
        assert payload == "+"
        await peer.send(":fake 903 hubbub :SASL authentication successful")
        await peer.expect("CAP END")
        await peer.welcome()
        await asyncio.sleep(5)

    async with FakeServer([script], ssl_context=ctx) as server:
        cfg = config(
            server.port,
            sasl=Sasl(SaslMechanism.EXTERNAL),
            tls=True,
            accept_self_signed=True,
            client_cert=client_cert,
            client_key=client_key,
        )
        _conn, log = run(conns, cfg)
        result = await log.wait(lambda e: isinstance(e, SaslResult))
        assert result.success and result.mechanism == "EXTERNAL"
        assert seen_fp == [client_pair.fingerprint]
        assert not server.errors


async def test_chathistory_fills_the_gap_without_duplicates(conns: list[Connection]) -> None:
    t = "@time=2026-11-23T10:00:0{}.000Z;msgid={} "

    async def first(peer: Peer) -> None:
        await peer.register(caps=CAPS.replace(" sasl=PLAIN,EXTERNAL", ""))
        # the first connection ever: LATEST for the autojoin channel
        assert (await peer.expect("JOIN")) == "JOIN #chan"
        latest = await peer.expect("CHATHISTORY")
        label = latest.split(" ", 1)[0].removeprefix("@label=")
        assert latest.endswith("CHATHISTORY LATEST #chan * 100")
        await peer.send(
            ":hubbub!u@h JOIN #chan",
            ":fake 353 hubbub = #chan :@hubbub",
            ":fake 366 hubbub #chan :End of /NAMES list.",
            f"@label={label} BATCH +h0 chathistory #chan",
            "@batch=h0;" + t.format(1, "m1")[1:] + ":bob!b@h PRIVMSG #chan :one",
            "BATCH -h0",
            t.format(2, "m2") + ":bob!b@h PRIVMSG #chan :two",
            t.format(3, "q1") + ":bob!b@h PRIVMSG hubbub :psst",
        )
        await asyncio.sleep(0.3)
        await peer.close()  # the network drops us

    async def second(peer: Peer) -> None:
        await peer.register(caps=CAPS.replace(" sasl=PLAIN,EXTERNAL", ""))
        assert (await peer.expect("JOIN")) == "JOIN #chan"
        asks = {}
        for _ in range(2):
            line = await peer.expect("CHATHISTORY")
            label, body = line.split(" ", 1)
            asks[body] = label.removeprefix("@label=")
        assert set(asks) == {
            "CHATHISTORY AFTER #chan msgid=m2 100",
            "CHATHISTORY AFTER bob msgid=q1 100",
        }
        label = asks["CHATHISTORY AFTER #chan msgid=m2 100"]
        await peer.send(
            ":hubbub!u@h JOIN #chan",
            f"@label={label} BATCH +h1 chathistory #chan",
            "@batch=h1;" + t.format(2, "m2")[1:] + ":bob!b@h PRIVMSG #chan :two",  # seen
            "@batch=h1;" + t.format(4, "m3")[1:] + ":bob!b@h PRIVMSG #chan :three",
            "@batch=h1;" + t.format(5, "m4")[1:] + ":carol!c@h PRIVMSG #chan :four",
            "BATCH -h1",
            f"@label={asks['CHATHISTORY AFTER bob msgid=q1 100']} BATCH +h2 chathistory bob",
            "@batch=h2;" + t.format(3, "q1")[1:] + ":bob!b@h PRIVMSG hubbub :psst",  # seen
            "BATCH -h2",
        )
        await asyncio.sleep(5)

    async with FakeServer([first, second]) as server:
        _conn, log = run(conns, config(server.port, channels=("#chan",)))
        first_history = await log.wait(lambda e: isinstance(e, History))
        assert [m.msgid for m in first_history.messages] == ["m1"]
        await log.wait(lambda e: isinstance(e, Disconnected))
        await log.wait(lambda e: isinstance(e, Registered))
        chan = await log.wait(lambda e: isinstance(e, History) and e.target == "#chan")
        assert [(m.msgid, m.text) for m in chan.messages] == [("m3", "three"), ("m4", "four")]
        query = await log.wait(lambda e: isinstance(e, History) and e.target == "bob")
        assert query.messages == ()
        assert not server.errors


async def test_garbage_and_odd_replies_then_an_endless_line(conns: list[Connection]) -> None:
    async def first(peer: Peer) -> None:
        await peer.expect("CAP LS")
        await peer.send(
            b"\xff\xfe\x00garbage\r\n",
            b":\r\n",
            b"@only-tags\r\n",
            b":fake CAP * FOO :bar\r\n",  # unknown CAP subcommand
            b"BATCH -never-opened\r\n",
            b":fake 332 hubbub\r\n",  # missing parameters
            b":fake 001 hubbub :Welcome (this server ignores CAP)\r\n",
            b":fake 422 hubbub :no motd\r\n",
            b":bob!b@h PRIVMSG #x\r\n",
            b"@label=zzz :fake 401 hubbub nobody :No such nick\r\n",
            b":bob!b@h PRIVMSG hubbub :still \xe9 alive\r\n",
        )
        await asyncio.sleep(0.2)
        await peer.send(b"x" * 20000)  # no end of line
        await asyncio.sleep(5)

    async def second(peer: Peer) -> None:
        await peer.register()
        await asyncio.sleep(5)

    async with FakeServer([first, second]) as server:
        conn, log = run(conns, config(server.port))
        await log.wait(lambda e: isinstance(e, Registered))
        msg = await log.wait(lambda e: isinstance(e, Message))
        assert msg.text == "still é alive"
        gone = await log.wait(lambda e: isinstance(e, Disconnected))
        assert gone.retry and "without end of line" in gone.reason
        errors = [e for e in log.seen if isinstance(e, Error)]
        assert len(errors) >= 5 and errors[-1].fatal
        await log.wait(lambda e: isinstance(e, Registered))  # reconnected, fine again
        assert conn.state is ConnState.CONNECTED
        assert server.connections == 2
        assert not server.errors


async def test_names_and_slow_reader_back_pressure(conns: list[Connection]) -> None:
    async def script(peer: Peer) -> None:
        await peer.register()
        await peer.expect("JOIN")
        await peer.send(":hubbub!u@h JOIN #big")
        for i in range(0, 3000, 50):
            nicks = " ".join(f"user{j}" for j in range(i, i + 50))
            await peer.send(f":fake 353 hubbub = #big :{nicks}")
        await peer.send(":fake 366 hubbub #big :End")
        for i in range(3000):
            await peer.send(f":user1!u@h PRIVMSG #big :line {i}")
        await asyncio.sleep(5)

    async with FakeServer([script]) as server:
        _conn, log = run(conns, config(server.port, channels=("#big",), events_queue=50))
        names = await log.wait(lambda e: isinstance(e, Names))
        assert len(names.members) == 3001
        await asyncio.sleep(0.3)  # the reader lags: the connection waits, memory stays bounded
        last = await log.wait(
            lambda e: isinstance(e, Message) and e.text == "line 2999", timeout=20
        )
        texts = [e.text for e in log.seen if isinstance(e, Message)]
        assert texts == [f"line {i}" for i in range(3000)]
        assert last.conversation == "#big"
        assert not server.errors


async def test_the_writer_obeys_the_throttle(conns: list[Connection]) -> None:
    arrivals: list[float] = []

    async def script(peer: Peer) -> None:
        await peer.register()
        loop = asyncio.get_running_loop()
        while len(arrivals) < 8:
            if (await peer.line()).startswith("PRIVMSG"):
                arrivals.append(loop.time())
        await asyncio.sleep(5)

    async with FakeServer([script]) as server:
        client = ClientConfig(nick="hubbub", throttle_burst=3, throttle_interval=0.2)
        conn = Connection(
            NetworkConfig("127.0.0.1", server.port, client, tls=False, allow_private_addresses=True)
        )
        conns.append(conn)
        conn.start()
        log = EventLog(conn)
        await log.wait(lambda e: isinstance(e, Registered))
        for i in range(8):
            conn.privmsg("#c", f"m{i}")
        async with asyncio.timeout(scaled(10)):
            while len(arrivals) < 8:
                await asyncio.sleep(0.05)
        start = arrivals[0]
        assert arrivals[2] - start < 0.15  # the burst
        for n in range(3, 8):  # then one line per 0.2 s
            assert arrivals[n] - start >= (n - 2) * 0.2 - 0.02


async def test_reconnect_backs_off_with_jitter(conns: list[Connection]) -> None:
    async def refuse(peer: Peer) -> None:
        await peer.expect("CAP LS")
        await peer.close()

    async with FakeServer([refuse] * 4) as server:
        cfg = config(server.port, backoff_base=0.05, backoff_cap=0.15)
        _conn, log = run(conns, cfg)
        delays = []
        for _ in range(4):
            waiting = await log.wait(lambda e: isinstance(e, Reconnecting))
            delays.append(waiting.delay)
            assert waiting.reason == "server closed the connection"
        ceilings = [0.05, 0.1, 0.15, 0.15]
        for delay, ceiling in zip(delays, ceilings, strict=True):
            assert ceiling / 2 <= delay <= ceiling
        assert server.connections >= 4


async def test_stop_sends_quit_and_does_not_reconnect() -> None:
    got: list[str] = []

    async def script(peer: Peer) -> None:
        await peer.register()
        got.append(await peer.expect("QUIT"))
        await peer.send("ERROR :Closing link (Quit: bye)")
        await peer.close()

    async with FakeServer([script, script]) as server:
        conn = Connection(config(server.port))
        conn.start()
        log = EventLog(conn)
        await log.wait(lambda e: isinstance(e, Registered))
        async with asyncio.timeout(scaled(5)):
            await conn.stop("bye")
        assert got == ["QUIT bye"]
        assert conn.state is ConnState.STOPPED
        await asyncio.sleep(0.3)
        assert server.connections == 1
        assert not server.errors
