"""Secrets of IRC networks (server and SASL passwords, client keys) encrypted at rest.

AES-256-GCM from ``cryptography``; the key is ``irc_secret_key`` (32 bytes,
urlsafe base64) or a key made once in ``<data_dir>/irc-secret.key`` (mode
0600). A sealed value is ``v1:<base64(nonce | ciphertext)>``; the network id
is the associated data, so a sealed value copied to another network does not
open. Plain values never appear in logs, reprs or API answers.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "irc-secret.key"
_PREFIX = "v1:"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the IRC secret key must be 32 bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    @classmethod
    def from_settings(cls, configured: str, data_dir: Path) -> SecretBox:
        if configured:
            try:
                key = base64.urlsafe_b64decode(configured + "=" * (-len(configured) % 4))
            except ValueError:
                raise ValueError("irc_secret_key is not base64") from None
            return cls(key)
        path = data_dir / KEY_FILE
        try:
            return cls(base64.urlsafe_b64decode(path.read_bytes().strip()))
        except FileNotFoundError:
            pass
        data_dir.mkdir(parents=True, exist_ok=True)
        key = AESGCM.generate_key(bit_length=256)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.urlsafe_b64encode(key))
        return cls(key)

    def seal(self, values: dict[str, str], network_id: int) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, orjson.dumps(values), str(network_id).encode())
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, token: str, network_id: int) -> dict[str, str]:
        """The secrets; an empty dict when there are none or they cannot be opened."""
        if not token.startswith(_PREFIX):
            return {}
        try:
            raw = base64.urlsafe_b64decode(token[len(_PREFIX) :])
            plain = self._aead.decrypt(raw[:12], raw[12:], str(network_id).encode())
        except (ValueError, InvalidTag):
            return {}
        values = orjson.loads(plain)
        return {str(k): str(v) for k, v in values.items()} if isinstance(values, dict) else {}
