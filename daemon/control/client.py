"""`tandem status`: ask tandemd over its local control socket and print what it says."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daemon.config import ConfigError, load_config
from daemon.control.answers import control_endpoint, request

SYSTEMD_RUNTIME_DIR = "/run/tandem"  # RuntimeDirectory=tandem in systemd/tandemd.service
_SO_ACCEPTCON = 0x10000  # a listening socket, in /proc/net/unix's Flags


def find_endpoint(config_path: str) -> tuple[str, list[str]]:
    """The config's control endpoint, else its runtime_dir's, else systemd's
    (/run/tandem), else the newest private /tmp/tandem-* directory whose socket a live
    tandemd listens on. Also the sockets passed over as left by dead daemons."""
    try:
        config = load_config(config_path)
    except ConfigError:
        config = None
    if config is not None and (config.control.endpoint or config.runtime_dir):
        return control_endpoint(config.runtime_dir, config.control.endpoint), []
    if "RUNTIME_DIRECTORY" in os.environ:
        return control_endpoint(os.environ["RUNTIME_DIRECTORY"], ""), []
    systemd = Path(SYSTEMD_RUNTIME_DIR, "control.sock")
    listening = listening_sockets()
    if systemd.exists() and (listening is None or str(systemd) in listening):
        return control_endpoint(SYSTEMD_RUNTIME_DIR, ""), []
    # runtime_dir unset outside systemd: tandemd made a private /tmp/tandem-* directory.
    private = sorted(
        Path(tempfile.gettempdir()).glob("tandem-*/control.sock"),
        key=_mtime,
        reverse=True,
    )
    dead = [p for p in private if listening is not None and str(p) not in listening]
    alive = [p for p in private if p not in dead]
    if systemd.exists():  # there, but nobody listens on it
        dead.insert(0, systemd)
    if alive:
        return f"ipc://{alive[0]}", [str(p) for p in dead]
    return control_endpoint(SYSTEMD_RUNTIME_DIR, ""), [str(p) for p in dead]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed while we looked
        return 0.0


def listening_sockets() -> set[str] | None:
    """Paths of the Unix sockets some process listens on now (Linux: /proc/net/unix,
    flag __SO_ACCEPTCON); None where that cannot be read. A socket file left by a dead
    tandemd is not among them. Reading this, rather than connecting, leaves no refused
    handshake in tandemd's metrics."""
    try:
        lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    except OSError:
        return None
    paths = set()
    for line in lines:
        fields = line.split()
        if len(fields) >= 8 and int(fields[3], 16) & _SO_ACCEPTCON:
            paths.add(fields[7])
    return paths


def run_status(endpoint: str, as_json: bool, timeout_s: float, dead: Sequence[str] = ()) -> int:
    skipped = f"; passed over sockets of dead daemons: {', '.join(dead)}" if dead else ""
    try:
        reply = request(endpoint, {"type": "status"}, timeout_s)
    except TimeoutError as exc:
        print(
            f"tandem: {exc} (is tandemd running? --endpoint, --config){skipped}",
            file=sys.stderr,
        )
        return 1
    if not reply.get("ok"):
        print(f"tandem: {reply.get('error')}", file=sys.stderr)
        return 1
    print(json.dumps(reply, indent=2) if as_json else render(reply))
    return 0


def render(s: dict[str, Any]) -> str:
    state = "ready" if s["ready"] else "starting"
    lines = [
        f"tandemd pid {s['pid']}, up {s['uptime_s']:.0f} s, {state}, "
        f"{'healthy' if s['healthy'] else 'UNHEALTHY'}",
        "",
        f"{'STREAM':<20} {'STATE':<13} {'VIDEO/S':>8} {'AUDIO/S':>8} {'RECORDS/S':>9} LATENCY",
    ]
    for st in s["streams"]:
        r = st["rates"]
        latency = "-" if st["latency_s"] is None else f"{st['latency_s']:.3f} s"
        cascades = [f"{a} on" for a in st.get("analyzers_on", [])]
        if st.get("requested_fps"):
            cascades.insert(0, f"fps {st['requested_fps']:g}")
        lines.append(
            f"{st['id']:<20} {st['state']:<13} {r.get('video_in', 0):>8.1f} "
            f"{r.get('audio_in', 0):>8.1f} {r.get('records', 0):>9.1f} {latency}"
            + (f"  (cascade: {', '.join(cascades)})" if cascades else "")
        )
    lines += ["", f"{'WORKER':<28} {'KIND':<7} {'INFLIGHT':>8} LAST HEARD  ANALYZERS"]
    for w in s["workers"]:
        lines.append(
            f"{w['name']:<28} {w['kind']:<7} {w['inflight']:>3}/{w['capacity']:<4} "
            f"{w['last_heard_s']:>8.1f} s  {','.join(w['analyzers'])}"
        )
    queues = ", ".join(
        f"{k}: {q['queued']} queued, {q['inflight']} in flight" for k, q in s["queues"].items()
    )
    lines += ["", f"queues: {queues}"]
    down = [p["name"] for p in s["processes"] if p["given_up"]]
    if down:
        lines.append(f"left down after too many restarts: {', '.join(down)}")
    return "\n".join(lines + _cluster_lines(s.get("cluster")))


def _cluster_lines(cluster: dict[str, Any] | None) -> list[str]:
    if cluster is None:
        return []
    members = cluster["members"]
    seen = ", ".join(members) if members is not None else "not known yet"
    lines = ["", f"shard {cluster['self']}; members ready: {seen}", f"{'STREAM':<20} OWNER"]
    for stream, owner in sorted(cluster["owners"].items()):
        mark = "  (this shard)" if owner == cluster["self"] else ""
        lines.append(f"{stream:<20} {owner or '-'}{mark}")
    return lines
