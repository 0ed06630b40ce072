"""Secrets kept: a source URL's password never reaches a log line, a published status,
or any process's command line; `${NAME}` keeps them out of config.toml."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon.config import ConfigError, load_config, parse_config
from daemon.envsubst import expand
from daemon.ingest.launch import IngestLaunch, LaunchError
from daemon.publishing.subscriber import Subscriber
from daemon.runtime.logs import JsonFormatter, TextFormatter
from streams import SourceSpec, redact
from tests.conftest import ROOT, children_of, free_port, worker_argv

PASSWORD = "s3cretPW"
TOKEN = "t0kenVALUE"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("rtsp://admin:s3cretPW@cam.local:554/h264", "rtsp://***@cam.local:554/h264"),
        (
            "open 'rtsp://admin:s3cretPW@10.0.0.9/x': refused",
            "open 'rtsp://***@10.0.0.9/x': refused",
        ),
        ("http://user@host/live.m3u8", "http://***@host/live.m3u8"),
        (
            "srt://relay:9000?mode=caller&passphrase=s3cretPW",
            "srt://relay:9000?mode=caller&passphrase=***",
        ),
        ("https://cdn/live.m3u8?token=t0kenVALUE&x=1", "https://cdn/live.m3u8?token=***&x=1"),
        ("https://cdn/a.m3u8?Signature=abc#frag", "https://cdn/a.m3u8?Signature=***#frag"),
        ("rtsp://cam.local/h264?channel=1", "rtsp://cam.local/h264?channel=1"),
        ("no url at all: 3 streams, key frames", "no url at all: 3 streams, key frames"),
        ("a@b in text, not a url", "a@b in text, not a url"),
    ],
)
def test_redact_hides_user_info_and_secret_parameters(text: str, want: str) -> None:
    assert redact(text) == want


def test_log_lines_are_redacted_in_both_formats() -> None:
    try:
        raise OSError(f"cannot open rtsp://admin:{PASSWORD}@cam/1")
    except OSError:
        record = logging.LogRecord(
            "ingest",
            logging.ERROR,
            __file__,
            1,
            "opened %s",
            ("rtsp://admin:" + PASSWORD + "@cam/1",),
            sys.exc_info(),
        )
    text = TextFormatter("%(message)s").format(record)
    line = JsonFormatter("tandemd").format(record)
    for out in (text, line):
        assert PASSWORD not in out
        assert "rtsp://***@cam/1" in out
    assert "Traceback" in text and "exception" in json.loads(line)


def test_ingest_launch_round_trips_and_keeps_the_url_out_of_argv() -> None:
    spec = SourceSpec(
        stream_id="cam-1",
        url=f"rtsp://admin:{PASSWORD}@127.0.0.1:8554/x",
        options={"rtsp_transport": "tcp"},
        fps=2.5,
        live=True,
    )
    launch = IngestLaunch(spec, "ipc:///run/tandem/ingest.sock", bound=8, log_level="debug")
    argv = launch.argv()
    assert PASSWORD not in " ".join(argv) and argv[-1] == "cam-1"
    assert IngestLaunch.parse(argv[1:], launch.stdin()) == launch
    with pytest.raises(LaunchError, match="does not match"):
        IngestLaunch.parse(["--stream", "other"], launch.stdin())
    with pytest.raises(LaunchError, match="bad launch JSON"):
        IngestLaunch.parse(["--stream", "cam-1"], b"{not json")
    with pytest.raises(LaunchError, match="usage"):
        IngestLaunch.parse([launch.stdin().decode()], b"")


def test_env_references_are_expanded_and_an_unset_one_names_its_key(tmp_path: Path) -> None:
    raw = {
        "streams": [
            {"id": "cam", "url": "rtsp://admin:${CAM_PW}@cam/1"},
            {"id": "lit", "url": "file:///a$${b}.mp4", "mode": "file"},
        ]
    }
    config = parse_config(raw, environ={"CAM_PW": PASSWORD})
    assert config.streams[0].url == f"rtsp://admin:{PASSWORD}@cam/1"
    assert config.streams[1].url == "file:///a${b}.mp4"
    path = tmp_path / "c.toml"
    path.write_text('[[streams]]\nid = "cam"\nurl = "rtsp://admin:${TANDEM_TEST_UNSET_PW}@cam/1"\n')
    os.environ.pop("TANDEM_TEST_UNSET_PW", None)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}: streams[0](id='cam').url: environment variable 'TANDEM_TEST_UNSET_PW' is not set"
    )
    with pytest.raises(Exception, match="'1X' is not a valid variable name"):
        expand("${1X}", {}, "k")


def test_a_config_error_does_not_print_the_password() -> None:
    raw = {"streams": [{"id": "cam", "url": f"rtsp://admin:{PASSWORD}@cam/1", "fps": -1}]}
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert "fps" in str(err.value) and PASSWORD not in str(err.value)
    raw = {"streams": [{"id": "cam", "url": f"rtsp://admin:{PASSWORD}@cam/1", "mode": "nope"}]}
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert PASSWORD not in str(err.value)


def _cmdlines(root: int) -> list[str]:
    """The command lines of `root` and every process below it."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
        todo.extend(children_of(pid))
    return out


@pytest.mark.slow
def test_password_absent_from_cmdlines_status_and_logs(tandemd, tmp_path: Path) -> None:
    pub, metrics = free_port(), free_port()
    rtsp = f"rtsp://admin:{PASSWORD}@127.0.0.1:{free_port()}/cam"  # nothing listens: refused
    http = f"http://viewer:${{CAM_PW}}@127.0.0.1:{free_port()}/live.ts?token={TOKEN}"
    config = f"""
runtime_dir = "{tmp_path}/run"
[log]
digest_s = 0
level = "debug"
[[streams]]
id = "rtsp"
url = "{rtsp}"
reconnect_min_s = 0.2
reconnect_max_s = 0.5
[[streams]]
id = "http"
url = "{http}"
reconnect_min_s = 0.2
reconnect_max_s = 0.5
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = {metrics}
"""
    os.environ["CAM_PW"] = PASSWORD  # the daemon reads it through ${CAM_PW}
    statuses: list[dict[str, object]] = []
    cmdlines: set[str] = set()
    try:
        with Subscriber(f"tcp://127.0.0.1:{pub}", ["status."]) as sub:
            daemon = tandemd(config)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                statuses += [r for _, r in sub.records(timeout_s=0.3)]
                cmdlines.update(_cmdlines(daemon.proc.pid))
                failed = {s["stream"] for s in statuses if s["state"] == "failed"}
                if failed == {"rtsp", "http"} and len(statuses) >= 8:
                    break
            assert daemon.stop() == 0
    finally:
        del os.environ["CAM_PW"]
    failed = [s for s in statuses if s["state"] == "failed"]
    assert {s["stream"] for s in failed} == {"rtsp", "http"}, daemon.log()
    assert any("daemon.ingest --stream rtsp" in c for c in cmdlines), cmdlines
    assert any("daemon.ingest --stream http" in c for c in cmdlines), cmdlines
    details = json.dumps(statuses)
    log = daemon.log()
    assert "rtsp://***@127.0.0.1" in details and "rtsp://***@127.0.0.1" in log
    assert "token=***" in log
    for secret in (PASSWORD, TOKEN):
        assert secret not in details
        assert secret not in log
        assert not [c for c in cmdlines if secret in c]


def test_ingest_without_a_launch_on_stdin_says_how_it_is_started() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "daemon.ingest", "--stream", "x"],
        cwd=ROOT,
        input=b"",
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert b"stream 'x': bad launch JSON on stdin" in out.stderr


def test_a_worker_key_naming_an_unset_variable_is_refused_naming_the_flag() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    keys = ["--server-key", "/x/tandemd.key", "--key", "${CREDENTIALS_DIRECTORY}/w.key_secret"]
    out = subprocess.run(
        [*worker_argv("audio", "tcp://127.0.0.1:9"), *keys],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "--key: environment variable 'CREDENTIALS_DIRECTORY' is not set" in out.stderr
