"""Checks of the addresses an operator writes: ZeroMQ endpoints and stream URLs.

Each check returns the address unchanged or raises ValueError with a message that
quotes it and says what is wrong, for the config (which adds the key) and the CLI.
"""

from __future__ import annotations

import re
from pathlib import Path

from streams import redact

ZMQ_SCHEMES = ("tcp", "ipc", "inproc")
# Network protocols whose URLs are written scheme://...; "file:" and lavfi graphs are not.
NETWORK_SCHEMES = (
    "rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "rtp", "srt", "tcp", "tls",
    "hls", "mms", "mmsh", "mmst", "ftp", "sftp",
)  # fmt: skip
_MALFORMED_URL = re.compile(
    rf"^(?P<scheme>{'|'.join(NETWORK_SCHEMES)})(?P<sep>//|:\\\\|:/(?!/)|:(?!/))(?P<rest>.*)$",
    re.IGNORECASE,
)


def check_endpoint(endpoint: str) -> str:
    """A ZeroMQ endpoint tandem can bind or connect: tcp://HOST:PORT (PORT 0-65535 or
    *), ipc://PATH or inproc://NAME."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        raise ValueError(
            f"{endpoint!r} has no scheme: write tcp://HOST:PORT, ipc://PATH or inproc://NAME"
        )
    if scheme not in ZMQ_SCHEMES:
        raise ValueError(
            f"{endpoint!r}: {scheme}:// is not a ZeroMQ transport: write tcp://HOST:PORT, "
            "ipc://PATH or inproc://NAME"
        )
    if not rest:
        raise ValueError(f"{endpoint!r}: nothing after {scheme}://")
    if scheme == "tcp":
        _check_tcp(endpoint, rest)
    return endpoint


def _check_tcp(endpoint: str, rest: str) -> None:
    host, colon, port = rest.rpartition(":")
    if not colon or not host:
        raise ValueError(f"{endpoint!r}: a tcp endpoint needs HOST:PORT")
    if port == "*":
        return
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{endpoint!r}: port {port!r} is not a number from 0 to 65535")


def check_stream_url(url: str) -> str:
    """A stream URL, unless it is a network URL with a mangled scheme ("rtsp//cam",
    "rtsp:/cam") and no file of that name exists. Plain file paths are valid URLs."""
    match = _MALFORMED_URL.match(url)
    if match is None or Path(url).exists():
        return url
    scheme = match["scheme"]
    rest = match["rest"].lstrip("/\\")
    meant = redact(f"{scheme}://{rest}")  # no password in messages
    written = f"{scheme}{match['sep']}{meant[len(scheme) + 3 :]}"
    raise ValueError(f"{written!r} is neither a URL nor an existing file: did you mean {meant!r}?")
