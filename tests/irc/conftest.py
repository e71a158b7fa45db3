"""Fixtures of the IRC tests: real servers (InspIRCd, ngircd) on loopback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ircservers import IrcServer, require


@pytest.fixture
def inspircd(tmp_path: Path) -> Iterator[IrcServer]:
    server = IrcServer("inspircd", require("inspircd"), tmp_path / "inspircd")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ngircd(tmp_path: Path) -> Iterator[IrcServer]:
    server = IrcServer("ngircd", require("ngircd"), tmp_path / "ngircd")
    server.start()
    yield server
    server.stop()
