"""Choosing a nick when the wanted one is refused (433 in use, 432 erroneous,
437 unavailable): the alternative nick, then the wanted nick with one to three
underscores appended, then with a number, each cut to the server's NICKLEN.
"""

from __future__ import annotations

from collections.abc import Iterator

#: Attempts before registration gives up.
MAX_ATTEMPTS = 20


def candidates(nick: str, alt: str = "", nicklen: int = 30) -> Iterator[str]:
    seen: set[str] = set()

    def fit(base: str, suffix: str) -> str:
        return base[: max(nicklen - len(suffix), 1)] + suffix

    options = [nick]
    if alt:
        options.append(alt)
    options += [fit(nick, "_" * n) for n in (1, 2, 3)]
    options += [fit(nick, str(n)) for n in range(1, MAX_ATTEMPTS)]
    count = 0
    for option in options:
        if option.lower() in seen:
            continue
        seen.add(option.lower())
        yield option
        count += 1
        if count >= MAX_ATTEMPTS:
            return
