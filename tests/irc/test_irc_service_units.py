"""The pure parts of the IRC service: mentions, admin policy, secrets, command lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubbub.core.errors import InvalidInput
from hubbub.irc.commands import raw_line as _raw
from hubbub.irc.commands import target_and_rest as _target_and_rest
from hubbub.irc.secrets import KEY_FILE, SecretBox
from hubbub.irc.service import (
    IrcDisabled,
    IrcPolicy,
    ServerNotAllowed,
    mentions,
)


def test_mentions_whole_words_only() -> None:
    assert mentions("ada: hi", "ada", [])
    assert mentions("hi ADA!", "ada", [])
    assert not mentions("adamant", "ada", [])
    assert not mentions("ada_ is away", "ada", [])
    assert mentions("who uses hubbub here", "ada", ["hubbub"])


def test_policy() -> None:
    IrcPolicy().check_server("irc.any.test", 6697)
    policy = IrcPolicy(allowed_servers=("*.libera.chat", "irc.oftc.net:6697"))
    policy.check_server("irc.libera.chat", 6697)
    policy.check_server("IRC.OFTC.NET", 6697)
    with pytest.raises(ServerNotAllowed):
        policy.check_server("irc.oftc.net", 6667)
    with pytest.raises(ServerNotAllowed):
        policy.check_server("evil.test", 6697)
    with pytest.raises(IrcDisabled):
        IrcPolicy(enabled=False).check_server("irc.libera.chat", 6697)
    assert IrcPolicy(default_network="irc.libera.chat:6697").default_server() == (
        "irc.libera.chat",
        6697,
    )
    assert IrcPolicy(default_network="irc.libera.chat").default_server() == (
        "irc.libera.chat",
        6697,
    )


def test_secret_box_key_file_and_binding(tmp_path: Path) -> None:
    box = SecretBox.from_settings("", tmp_path)
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
    sealed = box.seal({"password": "hunter2"}, 7)
    assert "hunter2" not in sealed and "hunter2" not in repr(box)
    assert SecretBox.from_settings("", tmp_path).open(sealed, 7) == {"password": "hunter2"}
    assert box.open(sealed, 8) == {}  # bound to its network
    assert box.open("garbage", 7) == {}
    other = SecretBox.from_settings("A" * 43, tmp_path)
    assert other.open(sealed, 7) == {}


def test_command_targets() -> None:
    assert _target_and_rest("#c bye all", None, channel=True) == ("#c", "bye all")
    assert _target_and_rest("bye all", "#here", channel=True) == ("#here", "bye all")
    assert _target_and_rest("bob hi there", None) == ("bob", "hi there")
    with pytest.raises(InvalidInput):
        _target_and_rest("", None)
    assert _raw("kick", ["bob", "go", "away"], "bob go away", "#c") == "KICK #c bob :go away"
    assert _raw("names", [], "", "#c") == "NAMES #c"
    assert _raw("mode", ["+o", "bob"], "+o bob", "#c") == "MODE #c +o bob"
    assert _raw("mode", ["ada", "+i"], "ada +i", "#c") == "MODE ada +i"
    assert _raw("invite", ["bob"], "bob", "#c") == "INVITE bob #c"
    assert _raw("away", [], "", None) == "AWAY"
    assert _raw("away", ["gone", "home"], "gone home", None) == "AWAY :gone home"
    with pytest.raises(InvalidInput):
        _raw("whois", [], "", None)
