"""Rules for names of users and rooms."""

from __future__ import annotations

import re
import unicodedata

from .errors import InvalidName

RESERVED_USER_NAMES = frozenset(
    {"admin", "administrator", "root", "system", "hubbub", "bot", "server", "nobody", "me", "api"}
)
"""Names nobody may register: the bot's, the server's and a few confusing ones."""

_USER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-\[\]\\^{}|`]{0,31}$")
_ROOM_NAME = re.compile(r"^[^\s,\x00-\x1f\x7f#:]{1,64}$")


def fold(name: str) -> str:
    """The comparison key of a name: NFKC, then casefold."""
    return unicodedata.normalize("NFKC", name).casefold()


def check_user_name(name: str, *, reserved: frozenset[str] = RESERVED_USER_NAMES) -> str:
    """Validate a user name; IRC-compatible so a user can keep it on IRC."""
    if not _USER_NAME.match(name):
        raise InvalidName(
            "a user name is 1 to 32 characters: a letter, then letters, digits or _-[]\\^{}|`"
        )
    if fold(name) in reserved:
        raise InvalidName(f"the name {name!r} is reserved")
    return name


def check_room_name(name: str) -> str:
    name = name.strip()
    if name.startswith("#"):
        name = name[1:]
    if not _ROOM_NAME.match(name):
        raise InvalidName(
            "a room name is 1 to 64 characters without spaces, commas, '#', ':' "
            "or control characters"
        )
    return name
