"""SIGHUP reloads config.toml: a stream is added, changed and removed while another
stream's records go on without a gap; an invalid config is rejected and the running one kept."""

from __future__ import annotations

import re
import signal
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from daemon.config import parse_config
from daemon.core.reload import diff_streams
from daemon.publishing.subscriber import Subscriber
from tests.conftest import metric, wait_until
from tests.support.ops_support import base_config, metrics_port

Record = tuple[str, dict[str, Any]]


def stream(stream_id: str, hz: int) -> str:
    return (
        f'[[streams]]\nid = "{stream_id}"\n'
        f'url = "sine=frequency={hz}:sample_rate=16000"\nformat = "lavfi"\nvideo = false\n'
    )


def test_diff_streams() -> None:
    a = {"id": "a", "url": "x"}
    old = parse_config({"streams": [a, {"id": "b", "url": "x"}]})
    new = parse_config({"streams": [a | {"fps": 2.0}, {"id": "c", "url": "y"}]})
    diff = diff_streams(old, new)
    assert [s.id for s in diff.added] == ["c"]
    assert diff.removed == ["b"]
    assert [s.id for s in diff.changed] == ["a"]


def collect(sub: Subscriber, out: list[Record], until: Any, timeout_s: float) -> bool:
    """Read records into `out` until `until(out)` holds or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while not until(out):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        for item in sub.records(timeout_s=min(left, 0.5)):
            out.append(item)
            break
    return True


def fused(out: list[Record], stream_id: str) -> list[dict[str, Any]]:
    return [r for t, r in out if t == f"fused.{stream_id}"]


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_sighup_adds_and_removes_a_stream_without_a_gap(tmp_path: Path, tandemd: Any) -> None:
    base = base_config(tmp_path, audio_workers=1) + "[fusion]\nwindow_s = 0.5\nmax_delay_ms = 300\n"
    endpoint = base.split('[publish]\nendpoint = "', 1)[1].split('"', 1)[0]
    daemon = tandemd(base + stream("keep", 440))
    out: list[Record] = []
    with Subscriber(endpoint, ["fused.", "status."]) as sub:
        assert collect(sub, out, lambda o: len(fused(o, "keep")) >= 3, 60), daemon.log()

        _hup(daemon, base + stream("keep", 440) + stream("extra", 1000))
        assert collect(sub, out, lambda o: len(fused(o, "extra")) >= 3, 30), daemon.log()

        # A changed stream is stopped and started again; "keep" is untouched.
        _hup(daemon, base + stream("keep", 440) + stream("extra", 2000))
        assert wait_until(lambda: daemon.log().count("stream extra added") == 2, 15)
        changed = len(out)
        assert collect(sub, out, lambda o: len(fused(o[changed:], "extra")) >= 2, 30)
        # The changed stream's series were removed and start again: its queue latency is
        # exported and counts again (the dispatcher kept no child of the removed series).
        port, queued = metrics_port(base), {"stream": "extra", "stage": "queue"}
        assert wait_until(
            lambda: metric(port, "tandem_stage_latency_seconds_count", **queued) > 0, 10
        ), _scrape_text(port)

        # Removed, and added back while it is still stopping: it starts again once removed.
        _hup(daemon, base + stream("keep", 440))
        assert wait_until(lambda: "1 removed" in daemon.log(), 15), daemon.log()
        _hup(daemon, base + stream("keep", 440) + stream("extra", 2000))
        assert wait_until(lambda: daemon.log().count("stream extra added") == 3, 15), daemon.log()

        mark = len(out)
        _hup(daemon, base + stream("keep", 440))
        assert collect(sub, out, lambda o: _ended(o[mark:], "extra"), 15), daemon.log()
        assert wait_until(lambda: daemon.log().count("stream extra removed") == 3, 15), daemon.log()
        ended = len(out)
        assert collect(sub, out, lambda o: len(fused(o[ended:], "keep")) >= 4, 30)
        assert not fused(out[ended:], "extra")  # gone: nothing published after removal

        bad = "[[streams]]\nid = 'bad'\nurl = 'x'\nfoo = 1\nfsp = 2\n"
        _hup(daemon, base + stream("keep", 440) + bad)
        assert wait_until(lambda: "reload rejected" in daemon.log(), 10), daemon.log()
        before = len(fused(out, "keep"))
        assert collect(sub, out, lambda o: len(fused(o, "keep")) >= before + 3, 30)

    _assert_outcome(metrics_port(base), fused(out, "keep"))
    log = daemon.log()
    # Every error at once, on the one line of the event.
    assert re.search(
        r"reload rejected, running config kept: \S+: streams\[1\]\(id='bad'\)\.foo: unknown "
        r"key; \S+: streams\[1\]\(id='bad'\)\.fsp: unknown key \(did you mean 'fps'\?\)\n",
        log,
    ), log
    assert "1 changed" in log and log.count("started ingest-extra") == 3
    assert log.count("ingest-keep (pid") == 1  # the kept stream's ingest never restarted
    assert log.count("started worker-audio-0") == 1  # nor the worker
    assert daemon.stop() == 0


def _hup(daemon: Any, config_text: str) -> None:
    """Write the daemon's config file and send it SIGHUP."""
    Path(daemon.proc.args[-1]).write_text(config_text)
    daemon.proc.send_signal(signal.SIGHUP)


def _assert_outcome(port: int, keep: list[dict[str, Any]]) -> None:
    assert metric(port, "tandem_stream_up", stream="keep") == 1
    assert ("tandem_stream_up" + "{" + 'stream="extra"') not in _scrape_text(port)
    _assert_no_gap(keep)


def _ended(out: list[Record], stream_id: str) -> bool:
    """The stream's `ended` status: it goes out after the stream's last record."""
    return any(t == f"status.{stream_id}" and r["state"] == "ended" for t, r in out)


def _assert_no_gap(records: list[dict[str, Any]]) -> None:
    windows = [(r["window"]["start"], r["window"]["end"]) for r in records]
    assert len(windows) >= 10
    for (_, end), (start, _) in pairwise(windows):
        assert start == end, f"gap in keep's windows: {end} -> {start}"


def _scrape_text(port: int) -> str:
    import urllib.request

    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
