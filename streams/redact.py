"""Secrets out of any text that may hold a source URL: logs, status details, errors.

A camera URL often carries its credentials (`rtsp://admin:pw@cam/...`) or a token in
its query (`srt://relay:9000?passphrase=...`, `https://cdn/live.m3u8?token=...`).
FFmpeg repeats the URL in its own error messages, so redacting the URL where we format
it is not enough: every text that leaves a process (a log line, a published status, an
error sent to tandemd) goes through `redact` at the point where it leaves.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://user[:password]@  (the user info ends at the first "@" before any "/", "?"
# or "#", as RFC 3986 says; whitespace and quotes end a URL inside a message).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/?#@\s'\"]+@")

# Query or option parameters whose value is a secret, wherever a URL carries them.
SECRET_PARAMS = (
    "passphrase",
    "password",
    "passwd",
    "pass",
    "pwd",
    "token",
    "access_token",
    "auth",
    "key",
    "secret",
    "signature",
    "sig",
    "api_key",
    "apikey",
)
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&;](?:" + "|".join(SECRET_PARAMS) + r"))=(?P<value>[^&#\s'\"]*)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` with every URL's user info and secret query values replaced by ***."""
    if "://" not in text and "=" not in text:
        return text  # the common case, a message with no URL: no regex work
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m['name']}={MASK}", text)
