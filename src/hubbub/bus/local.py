"""The in-process bus: ``publish`` hands the event to every listener at once."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..core.events import Event
from ..core.ports import EventListener

log = logging.getLogger(__name__)


def dispatch(listeners: Sequence[EventListener], event: Event) -> None:
    """Call each listener; one that raises is logged and does not stop the others."""
    for listener in listeners:
        try:
            listener(event)
        except Exception:
            log.exception("bus listener %r failed on an event", listener)


class LocalBus:
    """Listeners are called synchronously, in the publisher's task, in publish order."""

    def __init__(self) -> None:
        self._listeners: list[EventListener] = []

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def publish(self, event: Event) -> None:
        dispatch(self._listeners, event)

    def add_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)
