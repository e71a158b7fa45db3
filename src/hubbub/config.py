"""Configuration: ``HUBBUB_*`` environment variables and an optional TOML file.

Every setting is documented in ``docs/configuration.md``. Precedence, highest
first: command-line options, environment variables, the TOML file named by
``HUBBUB_CONFIG`` (or ``<data_dir>/hubbub.toml`` when it exists), defaults.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUBBUB_", extra="forbid")

    # where and how to listen
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path("data")
    database_url: str = ""  # empty: SQLite in data_dir/hubbub.db
    redis_url: str = ""  # empty: in-process bus (one process)
    public_url: str = ""  # e.g. https://chat.example.org/chat/ ; used for Origin checks
    base_path: str = ""  # e.g. /chat when served under a prefix

    # reverse proxy
    trust_forwarded: bool = False
    trusted_proxies: list[str] = ["127.0.0.1", "::1"]

    # accounts
    registration_open: bool = True
    session_days: int = Field(default=30, ge=1, le=3650)
    cookie_secure: bool | None = None  # None: secure when the request is https

    # limits
    max_message_length: int = Field(default=4000, ge=1, le=65536)
    max_topic_length: int = Field(default=390, ge=1, le=4000)
    max_ws_frame: int = Field(default=65536, ge=1024, le=1 << 20)
    ws_send_buffer: int = Field(default=1 << 20, ge=16384)  # bytes queued per socket
    ws_ping_interval: float = Field(default=20.0, gt=0)
    ws_replay_limit: int = Field(default=2000, ge=1)  # beyond: client pages history
    send_rate: float = Field(default=10.0, gt=0)  # messages per second per user
    send_burst: int = Field(default=20, ge=1)
    login_attempts_per_account: int = Field(default=10, ge=1)  # per 15 minutes
    login_attempts_per_address: int = Field(default=30, ge=1)  # per 15 minutes

    log_level: str = "info"
    log_format: str = "text"  # text | json

    def sqlite_path(self) -> Path:
        return self.data_dir / "hubbub.db"

    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.sqlite_path()}"
