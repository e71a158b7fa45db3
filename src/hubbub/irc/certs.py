"""Client certificates for SASL EXTERNAL (CertFP), made with ``cryptography``.

Each network gets its own key and self-signed certificate, so one network
cannot link the user's identity on another. The SHA-256 fingerprint is what a
user registers with the network's services (``/msg NickServ CERT ADD <fp>``);
some networks (Libera.Chat) show the SHA-512 one. The same function makes the
self-signed server certificates of the tests.

In Hubbub a network's certificate (public) is kept in its config as
``client_cert`` and its private key in the sealed secrets as ``client_key``
(AES-256-GCM, :mod:`.secrets`): encrypted at rest, never in an API answer.
:func:`key_files` gives the ``ssl`` module the paths it needs without writing
the key to disk (a memory file on Linux).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import hashlib
import ipaddress
import os
import shutil
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# cryptography's x509 and hash modules are imported by the functions that use
# them: a server whose networks use no client certificate never needs them
# (~30 ms of startup, docs/performance/startup.md).

VALID_DAYS = 3650
CONFIG_KEY = "client_cert"  # the certificate (PEM) in the network's config
SECRET_KEY = "client_key"  # noqa: S105 - the private key (PEM) in the network's sealed secrets
MAX_KEY_FILES = 512  # key pairs kept open for ssl (two memory files each)


@dataclass(frozen=True, slots=True)
class CertPair:
    cert_pem: bytes
    key_pem: bytes

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the DER certificate, lower-case hex (CertFP)."""
        return fingerprint(self.cert_pem)

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write ``stem.crt`` and ``stem.key`` (mode 0600); ssl needs files."""
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
        for path, data in ((cert, self.cert_pem), (key, self.key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        return cert, key


def self_signed(common_name: str, names: tuple[str, ...] = ()) -> CertPair:
    """A fresh EC P-256 key and a self-signed certificate for ``common_name``.

    ``names`` become subject alternative names (DNS names or IP addresses).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
    )
    if names:
        alt: list[x509.GeneralName] = []
        for name in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return CertPair(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def client_cert(network: str) -> CertPair:
    """A per-network client certificate for SASL EXTERNAL."""
    return self_signed(f"hubbub client for {network}"[:64])


def fingerprint(cert_pem: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.fingerprint(hashes.SHA256()).hex()


def der_fingerprint(der: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    return x509.load_der_x509_certificate(der).fingerprint(hashes.SHA256()).hex()


def fingerprint_sha512(cert_pem: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.fingerprint(hashes.SHA512()).hex()


@dataclass(frozen=True, slots=True)
class CertInfo:
    """What a user needs to know of a network's client certificate (public)."""

    sha256: str
    sha512: str
    not_after: int  # milliseconds since the epoch
    pem: str


def info(cert_pem: str | bytes) -> CertInfo:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    data = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
    cert = x509.load_pem_x509_certificate(data)
    return CertInfo(
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        sha512=cert.fingerprint(hashes.SHA512()).hex(),
        not_after=int(cert.not_valid_after_utc.timestamp() * 1000),
        pem=data.decode(),
    )


def network_files(
    config: Mapping[str, Any], secrets: Mapping[str, str]
) -> tuple[Path, Path] | tuple[None, None]:
    """The (certificate, key) paths of a network's client certificate for
    ``NetworkConfig(client_cert=, client_key=)``, or ``(None, None)`` when it
    has none (or its key no longer opens)."""
    cert_pem = str(config.get(CONFIG_KEY) or "")
    key_pem = secrets.get(SECRET_KEY, "")
    if not cert_pem or not key_pem:
        return None, None
    return key_files(cert_pem.encode(), key_pem.encode())


_files: OrderedDict[str, tuple[Path, Path, tuple[int, ...]]] = OrderedDict()
_files_lock = threading.Lock()
_tmpdir: list[Path] = []


def key_files(cert_pem: bytes, key_pem: bytes) -> tuple[Path, Path]:
    """Paths ``ssl.SSLContext.load_cert_chain`` can read, holding this pair.

    On Linux these are anonymous memory files (``memfd_create``) opened through
    ``/proc/self/fd``: the key never touches a disk. Elsewhere they are files
    of mode 0600 in a private temporary directory (0700), removed at exit.
    The same pair gives the same paths; at most :data:`MAX_KEY_FILES` pairs are
    kept (the oldest is closed; a network using it reloads it on its next connect).
    """
    digest = hashlib.sha256(cert_pem + b"\0" + key_pem).hexdigest()
    with _files_lock:
        found = _files.get(digest)
        if found is not None and found[0].exists():
            _files.move_to_end(digest)
            return found[0], found[1]
        cert_path, key_path, fds = _materialize(digest, cert_pem, key_pem)
        _files[digest] = (cert_path, key_path, fds)
        while len(_files) > MAX_KEY_FILES:
            _, (old_cert, old_key, old_fds) = _files.popitem(last=False)
            _discard(old_cert, old_key, old_fds)
        return cert_path, key_path


def _materialize(
    digest: str, cert_pem: bytes, key_pem: bytes
) -> tuple[Path, Path, tuple[int, ...]]:
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None and sys.platform.startswith("linux") and Path("/proc/self/fd").is_dir():
        fds: list[int] = []
        for data in (cert_pem, key_pem):
            fd = memfd("hubbub-irc-cert", getattr(os, "MFD_CLOEXEC", 1))
            os.write(fd, data)
            fds.append(fd)
        return Path(f"/proc/self/fd/{fds[0]}"), Path(f"/proc/self/fd/{fds[1]}"), tuple(fds)
    if not _tmpdir:
        path = Path(tempfile.mkdtemp(prefix="hubbub-irc-certs-"))  # mode 0700
        _tmpdir.append(path)
        atexit.register(shutil.rmtree, path, True)
    cert_path, key_path = CertPair(cert_pem, key_pem).write(_tmpdir[0], digest[:32])
    return cert_path, key_path, ()


def _discard(cert_path: Path, key_path: Path, fds: tuple[int, ...]) -> None:
    if fds:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        return
    for path in (cert_path, key_path):
        path.unlink(missing_ok=True)
