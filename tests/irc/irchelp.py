"""Helpers for byte-level tests of the sans-I/O IRC client."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from hubbub.irc.client import Client
from hubbub.irc.config import ClientConfig
from hubbub.irc.events import Event

FIXED_NOW = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Harness:
    client: Client
    clock: FakeClock
    events: list[Event] = field(default_factory=list)

    def feed(self, *lines: str | bytes) -> list[Event]:
        for line in lines:
            data = line if isinstance(line, bytes) else line.encode()
            if not data.endswith(b"\n"):
                data += b"\r\n"
            self.client.receive_data(data)
        got = self.client.events_received()
        self.events.extend(got)
        return got

    def tick(self) -> list[Event]:
        self.client.tick()
        got = self.client.events_received()
        self.events.extend(got)
        return got

    def sent(self) -> list[str]:
        """Every line the throttle lets out now, decoded, without CRLF."""
        data = self.client.data_to_send()
        assert data == b"" or data.endswith(b"\r\n")
        return [line.decode() for line in data.split(b"\r\n") if line]

    def drain(self) -> list[str]:
        """Every queued line, advancing the clock past the throttle."""
        out: list[str] = []
        while (delay := self.client.send_delay()) is not None:
            self.clock.advance(delay)
            out += self.sent()
        return out


def make(nick: str = "me", **config: object) -> Harness:
    clock = FakeClock()
    client = Client(ClientConfig(nick=nick, **config), clock=clock, wallclock=lambda: FIXED_NOW)  # type: ignore[arg-type]
    return Harness(client, clock)


def registered(nick: str = "me", caps: str = "", isupport: str = "", **config: object) -> Harness:
    """A client through CAP (offering ``caps``, all ACKed), 001, 005 and 422."""
    h = make(nick, **config)
    h.client.connect()
    h.drain()
    h.feed(f":srv CAP * LS :{caps}")
    req = h.drain()
    if caps and req and req[0].startswith("CAP REQ"):
        h.feed(f":srv CAP * ACK :{req[0].removeprefix('CAP REQ ').lstrip(':')}")
        h.drain()
    h.feed(f":srv 001 {nick} :Welcome")
    if isupport:
        h.feed(f":srv 005 {nick} {isupport} :are supported")
    h.feed(f":srv 422 {nick} :No MOTD")
    h.drain()
    h.events.clear()
    return h
