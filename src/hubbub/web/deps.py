"""What the web layer is given by the composition root (``hubbub.app``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Settings
    from ..core.accounts import Accounts
    from ..core.hub import Hub
    from ..core.ports import Bus, Store
    from ..irc.service import IrcService
    from .fanout import Fanout
    from .metrics import Metrics


@dataclass
class Services:
    settings: Settings
    store: Store
    bus: Bus
    hub: Hub
    accounts: Accounts
    fanout: Fanout
    metrics: Metrics | None = None  # hooks: ws_opened/ws_closed, observe_batch, ...
    irc: IrcService | None = None  # per-user IRC networks (docs/irc.md)
