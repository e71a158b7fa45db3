"""Configuration: ``HUBBUB_*`` environment variables and an optional TOML file.

Every setting is documented in ``docs/configuration.md`` (a test keeps the two
in step). Precedence, highest first: command-line options, environment
variables, the TOML file named by ``HUBBUB_CONFIG`` (or ``<data_dir>/hubbub.toml``
when it exists), defaults.

:func:`load_settings` is the one way in for the CLI: it finds the TOML file,
merges the sources and turns every validation problem into one line of a
:class:`ConfigError`.
"""

from __future__ import annotations

import contextvars
import ipaddress
import json
import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

log = logging.getLogger(__name__)

ENV_PREFIX = "HUBBUB_"
CONFIG_ENV = "HUBBUB_CONFIG"
CONFIG_FILE_NAME = "hubbub.toml"
# HUBBUB_* variables that are not settings: the config file's path and the test suite's knobs.
_NOT_SETTINGS = (CONFIG_ENV, "HUBBUB_TEST_")

# URLs may carry passwords: an error about them never repeats the value.
_SECRET_FIELDS = frozenset({"database_url", "redis_url", "irc_secret_key"})

_toml_values: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "hubbub_toml_values", default=None
)
_environ: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "hubbub_environ", default=None
)


class _EnvSource(EnvSettingsSource):
    """The environment :func:`load_settings` was given (``os.environ`` otherwise)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _environ.get()
        if environ is None:
            return super()._load_env_vars()
        # What pydantic-settings does with os.environ (names are case-insensitive).
        return {
            (k if self.case_sensitive else k.lower()): v
            for k, v in environ.items()
            if not (self.env_ignore_empty and v == "")
        }


class _TomlSource(PydanticBaseSettingsSource):
    """The values of the TOML file :func:`load_settings` read, if any."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        values = _toml_values.get() or {}
        return values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_toml_values.get() or {})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    # where and how to listen
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path("data")
    database_url: str = ""  # empty: SQLite in data_dir/hubbub.db
    redis_url: str = ""  # empty: in-process bus (one process)
    redis_channel: str = Field(default="hubbub:events", min_length=1)
    public_url: str = ""  # e.g. https://chat.example.org/chat/ ; used for Origin checks
    base_path: str = ""  # e.g. /chat when served under a prefix

    # reverse proxy
    trust_forwarded: bool = False
    trusted_proxies: Annotated[list[str], NoDecode] = ["127.0.0.1", "::1"]

    # accounts
    registration_open: bool = True
    session_days: int = Field(default=30, ge=1, le=3650)
    cookie_secure: bool | None = None  # None: secure when the request is https
    argon2_time_cost: int = Field(default=3, ge=1, le=100)
    argon2_memory_kib: int = Field(default=65536, ge=8, le=4 << 20)
    argon2_parallelism: int = Field(default=4, ge=1, le=64)

    # limits
    max_message_length: int = Field(default=4000, ge=1, le=65536)
    max_topic_length: int = Field(default=390, ge=1, le=4000)
    max_ws_frame: int = Field(default=65536, ge=1024, le=1 << 20)
    ws_send_buffer: int = Field(default=1 << 20, ge=16384)  # bytes queued per socket
    ws_ping_interval: float = Field(default=20.0, gt=0)
    ws_replay_limit: int = Field(default=2000, ge=1)  # beyond: client pages history
    ws_ops_rate: float = Field(default=20.0, gt=0)  # client frames per second per connection
    ws_ops_burst: int = Field(default=40, ge=1)
    send_rate: float = Field(default=10.0, gt=0)  # messages per second per user
    send_burst: int = Field(default=20, ge=1)
    presence_grace: float = Field(default=5.0, ge=0, le=3600)  # seconds before "offline"
    # several processes: a process's presence heartbeat lives this long (renewed every third)
    presence_ttl: float = Field(default=15.0, ge=0.3, le=600)
    login_attempts_per_account: int = Field(default=10, ge=1)  # per 15 minutes
    login_attempts_per_address: int = Field(default=30, ge=1)  # per 15 minutes
    registrations_per_address: int = Field(default=20, ge=1)  # self-registrations per hour

    # catch-up cache (docs/configuration.md, "Catch-up cache"): the newest messages of
    # recently read conversations, shared by resuming clients
    history_tail_messages: int = Field(default=500, ge=0, le=10_000)  # per conversation; 0: off
    history_tail_memory: int = Field(default=64 << 20, ge=0)  # bytes, all conversations together
    history_tail_ttl: float = Field(default=30.0, gt=0, le=3600)  # seconds before a re-read

    # operations
    # IRC networks (docs/irc.md)
    irc_enabled: bool = True
    irc_allowed_servers: Annotated[list[str], NoDecode] = []  # empty: any server
    irc_max_networks: int = Field(default=5, ge=0, le=1000)  # per user
    irc_default_network: str = ""  # host[:port], e.g. irc.libera.chat:6697
    irc_secret_key: str = Field(default="", repr=False)  # empty: data_dir/irc-secret.key
    irc_allow_private_addresses: bool = False  # loopback/private/link-local for unlisted servers
    # scale-out (redis_url set): one process holds each network's lease and connects it
    irc_lease_seconds: float = Field(default=20.0, ge=0.5, le=600)
    irc_request_timeout: float = Field(default=5.0, gt=0, le=120)  # forwarded to the owner

    shutdown_timeout: float = Field(default=10.0, ge=0, le=600)
    metrics: bool = True
    access_log: bool = True
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _EnvSource(settings_cls), _TomlSource(settings_cls))

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("trusted_proxies", "irc_allowed_servers", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        # From the environment: a JSON list or a comma-separated list.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (like 10.0.0.0/8)"
                ) from None
        return value

    @field_validator("base_path")
    @classmethod
    def _check_base_path(cls, value: str) -> str:
        value = value.strip()
        if value in ("", "/"):
            return ""
        dot_segment = any(part in (".", "..") for part in value.split("/"))
        if (
            not value.startswith("/")
            or "?" in value
            or "#" in value
            or "//" in value
            or dot_segment
        ):
            raise ValueError("a base path looks like /chat (a path, starting with '/')")
        return value.rstrip("/")

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        value = value.strip()
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("a public URL looks like https://chat.example.org/")
        return value

    @field_validator("database_url", "redis_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip()
        if value and "://" not in value:
            raise ValueError("expected a URL like scheme://host/...")
        return value

    def sqlite_path(self) -> Path:
        return self.data_dir / "hubbub.db"

    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.sqlite_path()}"

    def uses_sqlite(self) -> bool:
        return self.effective_database_url().startswith("sqlite")


class ConfigError(Exception):
    """Settings that cannot be used: one line per problem in ``lines``."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def setting_env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def config_file_path(
    overrides: Mapping[str, Any], environ: Mapping[str, str]
) -> tuple[Path | None, bool]:
    """The TOML file to read, and whether it was asked for explicitly."""
    explicit = environ.get(CONFIG_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser(), True
    data_dir = overrides.get("data_dir") or environ.get(setting_env_name("data_dir")) or "data"
    candidate = Path(data_dir).expanduser() / CONFIG_FILE_NAME
    return (candidate if candidate.is_file() else None), False


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError([f"config file {path}: not found"]) from None
    except OSError as exc:
        raise ConfigError([f"config file {path}: cannot be read ({exc.strerror})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"config file {path}: not valid TOML ({exc})"]) from None
    # Accept an optional [hubbub] table as well as top-level keys.
    if set(data) == {"hubbub"} and isinstance(data["hubbub"], dict):
        data = data["hubbub"]
    return data


def load_settings(
    overrides: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from (highest first) ``overrides``, the environment, the TOML file.

    ``overrides`` holds command-line options; ``None`` values are dropped, so a
    CLI option that was not given does not hide the environment. Raises
    :class:`ConfigError` with one line per bad setting.
    """
    env = os.environ if environ is None else environ
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    path, _ = config_file_path(given, env)
    file_values = read_config_file(path) if path is not None else {}
    _warn_unknown_env(env)
    toml_token = _toml_values.set(file_values)
    env_token = _environ.set(env)
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, given, env, path)) from None
    finally:
        _environ.reset(env_token)
        _toml_values.reset(toml_token)


def _warn_unknown_env(env: Mapping[str, str]) -> None:
    known = {setting_env_name(name) for name in Settings.model_fields}
    for key in env:
        upper = key.upper()
        if (
            upper.startswith(ENV_PREFIX)
            and upper not in known
            and not upper.startswith(_NOT_SETTINGS)
        ):
            log.warning("ignoring %s: Hubbub has no such setting", key)


def _describe(
    exc: ValidationError, given: Mapping[str, Any], env: Mapping[str, str], path: Path | None
) -> list[str]:
    env_upper = {k.upper() for k in env}
    lines = []
    for error in exc.errors():
        loc = error.get("loc", ())
        name = str(loc[0]) if loc else "?"
        if name in given:
            source = "command line"
        elif setting_env_name(name) in env_upper:
            source = setting_env_name(name)
        elif path is not None:
            source = str(path)
        else:
            source = "default"
        message = error.get("msg", "invalid")
        if error.get("type") == "extra_forbidden":
            message = "no such setting"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        where = ".".join(str(p) for p in loc) or name
        value = error.get("input")
        secret = name in _SECRET_FIELDS or error.get("type") == "extra_forbidden"
        shown = "" if secret else f" (got {value!r})"
        lines.append(f"setting {where} [{source}]: {message}{shown}")
    return lines
