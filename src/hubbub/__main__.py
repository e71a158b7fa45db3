"""``python -m hubbub``: the same as the ``hubbub`` command."""

from .cli import main

main()
