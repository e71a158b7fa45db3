"""Start ``hubbub serve`` for the fan-out benchmark, without the per-connection op limit.

A WebSocket session allows 20 client ops per second (``protocols.session.Limits``),
which is not a setting yet; a benchmark sender needs thousands. This wrapper
lifts that limit and then runs the real CLI, so everything else (settings,
store, fan-out) is what ``hubbub serve`` runs. Startup is measured with the
plain CLI, not with this wrapper.

usage: python bench/hubbub_serve.py serve --port P --data-dir D
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any


def _patch() -> bool:
    try:
        from hubbub.web import ws
    except ImportError:
        return False
    original = getattr(ws, "limits_from", None)
    if original is None:
        return False

    def limits_from(settings: Any) -> Any:
        limits = original(settings)
        return dataclasses.replace(limits, ops_per_second=1e9, ops_burst=1_000_000_000)

    ws.limits_from = limits_from
    return True


if __name__ == "__main__":
    if not _patch():
        print("hubbub_serve: could not lift the op limit (hubbub.web.ws changed)", file=sys.stderr)
    from hubbub.cli import main

    main(sys.argv[1:])
