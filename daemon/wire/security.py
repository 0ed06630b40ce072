"""CurveZMQ on tcp endpoints: a server key, an allow-list of client public keys, and a
ZAP authenticator that fails closed.

The authenticator starts before any secured socket binds. Secured sockets set
ZMQ_ZAP_ENFORCE_DOMAIN, so with no authenticator answering (never started, or stopped)
libzmq refuses every handshake instead of admitting any client that knows the server key.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

ZAP_DOMAIN = "tandem"


class SecurityError(Exception):
    """A key file or key directory that cannot be used; the message names it."""


def load_secret(path: str | Path) -> tuple[bytes, bytes]:
    """(public, secret) from a ZeroMQ certificate file written by `tandem keys`."""
    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise SecurityError(f"{path}: cannot read a secret key: {exc}") from exc
    if secret is None:
        raise SecurityError(f"{path}: holds no secret key (use the .key_secret file)")
    return public, secret


def load_public(path: str | Path) -> bytes:
    try:
        public, _ = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise SecurityError(f"{path}: cannot read a public key: {exc}") from exc
    return public


class AllowList:
    """The public keys (Z85) admitted: every `*.key` file of a directory, plus extra keys
    (the ephemeral key of tandemd's own local workers)."""

    def __init__(self, directory: str | Path, extra: list[bytes] | None = None) -> None:
        path = Path(directory)
        if not path.is_dir():
            raise SecurityError(f"{path}: allowed keys directory does not exist")
        self.keys = {load_public(p) for p in sorted(path.glob("*.key"))} | set(extra or [])

    def callback(self, domain: str, key: bytes) -> bool:
        return domain == ZAP_DOMAIN and key in self.keys


def start_authenticator(
    ctx: zmq.Context[zmq.Socket[bytes]], allow: AllowList
) -> ThreadAuthenticator:
    """Admit CURVE clients whose public key is allowed, nobody else."""
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve_callback(domain=ZAP_DOMAIN, credentials_provider=allow)
    return auth


def secure_server(sock: zmq.Socket[bytes], secret_key_file: str | Path) -> None:
    """Make `sock` a CURVE server; call before bind."""
    public, secret = load_secret(secret_key_file)
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    sock.setsockopt_string(zmq.ZAP_DOMAIN, ZAP_DOMAIN)
    sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)  # no authenticator: refuse, never admit


def secure_client(
    sock: zmq.Socket[bytes], server_key_file: str | Path, secret_key_file: str | Path
) -> None:
    """Make `sock` a CURVE client of the server whose public key is in `server_key_file`."""
    public, secret = load_secret(secret_key_file)
    sock.setsockopt(zmq.CURVE_SERVERKEY, load_public(server_key_file))
    sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, secret)


def write_keypair(directory: str | Path, name: str) -> tuple[Path, Path]:
    """Write NAME.key (public, mode 0644: it is meant to be copied and read) and
    NAME.key_secret (mode 0600); refuse to overwrite."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    public, secret = directory / f"{name}.key", directory / f"{name}.key_secret"
    for path in (public, secret):
        if path.exists():
            raise SecurityError(f"{path}: exists; not overwriting a key")
    old = os.umask(0o077)  # never a moment where the secret is readable by others
    try:
        zmq.auth.create_certificates(str(directory), name)
    finally:
        os.umask(old)
    public.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    secret.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return public, secret
