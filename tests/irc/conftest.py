"""Fixtures of the IRC tests: real servers (InspIRCd, ngircd) on loopback.

The test servers are on 127.0.0.1, so settings here allow private addresses
(``irc_allow_private_addresses=True``) unless a test says otherwise.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ircservers import IrcServer, require

from hubbub.config import Settings


@pytest.fixture
def make_settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    def make(**changes: Any) -> Settings:
        return make_settings(**{"irc_allow_private_addresses": True, **changes})

    return make


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
