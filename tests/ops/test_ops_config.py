"""Configuration: precedence, the TOML file, one clear line per bad setting, the docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hubbub.config import ConfigError, Settings, load_settings, setting_env_name

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(__import__("os").environ):
        if name.upper().startswith("HUBBUB_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    settings = load_settings({}, environ={})
    assert settings.port == 8080
    assert settings.host == "127.0.0.1"
    assert settings.data_dir == Path("data")
    assert settings.effective_database_url() == "sqlite+aiosqlite:///data/hubbub.db"
    assert settings.trust_forwarded is False


def test_precedence_cli_then_env_then_file_then_default(tmp_path: Path) -> None:
    config = tmp_path / "conf.toml"
    config.write_text('port = 7000\nhost = "0.0.0.0"\nlog_format = "json"\nsend_burst = 5\n')
    env = {"HUBBUB_CONFIG": str(config), "HUBBUB_PORT": "7001", "HUBBUB_HOST": "::1"}
    settings = load_settings({"port": 7002, "host": None}, environ=env)
    assert settings.port == 7002  # command line
    assert settings.host == "::1"  # environment (the CLI option was not given)
    assert settings.log_format == "json"  # file
    assert settings.send_burst == 5  # file
    assert settings.send_rate == 10.0  # default


def test_env_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "conf.toml"
    config.write_text("port = 7000\n")
    monkeypatch.setenv("HUBBUB_CONFIG", str(config))
    monkeypatch.setenv("HUBBUB_PORT", "7001")
    assert load_settings().port == 7001
    monkeypatch.delenv("HUBBUB_PORT")
    assert load_settings().port == 7000


def test_file_in_data_dir_is_read_when_present(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "hubbub.toml").write_text("[hubbub]\nregistration_open = false\n")
    assert load_settings({"data_dir": data}, environ={}).registration_open is False
    env = {"HUBBUB_DATA_DIR": str(data)}
    assert load_settings({}, environ=env).registration_open is False
    # no file there: defaults
    assert load_settings({"data_dir": tmp_path}, environ={}).registration_open is True


def test_list_from_env_comma_or_json() -> None:
    env = {"HUBBUB_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1"}
    assert load_settings({}, environ=env).trusted_proxies == ["10.0.0.0/8", "192.168.1.1"]
    env = {"HUBBUB_TRUSTED_PROXIES": '["::1"]', "HUBBUB_TRUST_FORWARDED": "1"}
    settings = load_settings({}, environ=env)
    assert settings.trusted_proxies == ["::1"]
    assert settings.trust_forwarded is True


def test_base_path_is_normalised() -> None:
    assert load_settings({"base_path": "/chat/"}, environ={}).base_path == "/chat"
    assert load_settings({"base_path": "/"}, environ={}).base_path == ""


def test_bad_settings_give_one_line_each(tmp_path: Path) -> None:
    config = tmp_path / "conf.toml"
    config.write_text('max_message_length = 0\nbogus = 1\nlog_format = "xml"\n')
    env = {
        "HUBBUB_CONFIG": str(config),
        "HUBBUB_PORT": "seventy",
        "HUBBUB_TRUSTED_PROXIES": "10.0.0.0/8,not-an-address",
        "HUBBUB_DATABASE_URL": "nonsense-with-password",
    }
    with pytest.raises(ConfigError) as caught:
        load_settings({"base_path": "chat"}, environ=env)
    lines = caught.value.lines
    text = "\n".join(lines)
    assert len(lines) == 7, text
    assert any(line.startswith("setting port [HUBBUB_PORT]:") for line in lines)
    assert any(line.startswith("setting base_path [command line]:") for line in lines)
    assert any("not-an-address" in line and "HUBBUB_TRUSTED_PROXIES" in line for line in lines)
    assert any(line.startswith(f"setting bogus [{config}]: no such setting") for line in lines)
    assert any(line.startswith("setting max_message_length [") for line in lines)
    assert any(line.startswith("setting log_format [") for line in lines)
    assert "nonsense-with-password" not in text  # URLs may hold passwords: never echoed
    assert all("\n" not in line for line in lines)


def test_missing_or_broken_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings({}, environ={"HUBBUB_CONFIG": str(tmp_path / "nope.toml")})
    broken = tmp_path / "broken.toml"
    broken.write_text("port = = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({}, environ={"HUBBUB_CONFIG": str(broken)})


def test_unknown_env_variable_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    load_settings({}, environ={"HUBBUB_PROT": "9000", "HUBBUB_TEST_PG_URL": "x"})
    assert "HUBBUB_PROT" in caplog.text
    assert "HUBBUB_TEST_PG_URL" not in caplog.text


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text()
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| `([a-z0-9_]+)` \| `([A-Z0-9_]+)` \|", text, re.MULTILINE)
    }
    missing = [name for name in Settings.model_fields if name not in rows]
    assert not missing, f"settings missing from docs/configuration.md: {missing}"
    stale = [name for name in rows if name not in Settings.model_fields]
    assert not stale, f"docs/configuration.md documents settings that do not exist: {stale}"
    for name, env in rows.items():
        assert env == setting_env_name(name)


def test_documented_defaults_match() -> None:
    text = DOCS.read_text()
    for m in re.finditer(r"^\| `([a-z0-9_]+)` \| `[A-Z0-9_]+` \| `([^`]*)` \|", text, re.MULTILINE):
        name, documented = m.group(1), m.group(2)
        default = Settings.model_fields[name].default
        shown = ",".join(default) if isinstance(default, list) else str(default)
        shown = shown.lower() if isinstance(default, bool) else shown
        assert documented == shown, f"{name}: docs say {documented!r}, code says {shown!r}"
