"""How tandemd starts an ingest process, and how that process reads what it was given.

Both sides live here so they cannot drift apart. The stream's whole spec travels on the
child's standard input, never in its argv: a source URL may carry a password, and every
user of the host can read any process's command line (`ps`, /proc/PID/cmdline). The
argv names only the stream, so `ps` still says which process decodes what.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from streams import SourceSpec

MODULE = "daemon.ingest"
USAGE = f"usage: python -m {MODULE} --stream ID  (the launch JSON on standard input)"


class LaunchError(ValueError):
    """The argv or the launch JSON on stdin is not what `IngestLaunch.encode` writes."""


@dataclass(frozen=True)
class IngestLaunch:
    spec: SourceSpec
    endpoint: str  # tandemd's ingest hub
    bound: int  # the stream's queue bound (items)
    log_level: str

    def argv(self) -> list[str]:
        """The module arguments (after `python -m`): no secrets."""
        return [MODULE, "--stream", self.spec.stream_id]

    def stdin(self) -> bytes:
        return json.dumps(
            {
                "spec": asdict(self.spec),
                "endpoint": self.endpoint,
                "bound": self.bound,
                "log_level": self.log_level,
            }
        ).encode()

    @classmethod
    def parse(cls, args: list[str], stdin: bytes) -> IngestLaunch:
        """The launch from the process's arguments (without the module) and its stdin."""
        if len(args) != 2 or args[0] != "--stream":
            raise LaunchError(USAGE)
        try:
            raw: dict[str, Any] = json.loads(stdin)
            launch = cls(
                spec=SourceSpec(**raw["spec"]),
                endpoint=str(raw["endpoint"]),
                bound=int(raw["bound"]),
                log_level=str(raw["log_level"]),
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise LaunchError(f"stream {args[1]!r}: bad launch JSON on stdin: {exc!r}") from exc
        if launch.spec.stream_id != args[1]:
            raise LaunchError(
                f"--stream {args[1]!r} does not match the spec's stream {launch.spec.stream_id!r}"
            )
        return launch
