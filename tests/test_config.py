"""Config validation: one clear line naming the file and the key, exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config import ConfigError, load_config, parse_config
from tests.conftest import ROOT

BAD = {
    "unknown key": (
        '[[streams]]\nid = "cam"\nurl = "x.mp4"\ncolour = 1\n',
        "streams[0](id='cam').colour: unknown key",
    ),
    "wrong type": (
        '[[streams]]\nid = "cam"\nurl = "x.mp4"\nfps = "fast"\n',
        "streams[0](id='cam').fps = 'fast'",
    ),
    "missing required": ('[[streams]]\nid = "cam"\n', "streams[0](id='cam').url: required key"),
    "out of range": ("[fusion]\nwindow_s = -1\n", "fusion.window_s = -1"),
    "unknown section": ("[fusoin]\nwindow_s = 1\n", "fusoin: unknown key"),
    "unknown analyzer": (
        '[workers.vision]\nanalyzers = ["level"]\n',
        "unknown video analyzer 'level'",
    ),
    "bad analyzer option": (
        '[workers.vision]\nanalyzers = ["motion"]\n[workers.vision.options.motion]\n'
        "pixel_threshold = 0\n",
        "workers.vision.options.motion.pixel_threshold: Input should be greater than or equal to 1",
    ),
    "duplicate id": (
        '[[streams]]\nid = "a"\nurl = "x"\n[[streams]]\nid = "a"\nurl = "y"\n',
        "duplicate stream id 'a'",
    ),
    "not toml": ("[streams\n", "not valid TOML"),
    "endpoint without a scheme": (
        '[publish]\nendpoint = "localhost:7702"\n',
        "publish.endpoint: 'localhost:7702' has no scheme: write tcp://HOST:PORT",
    ),
    "port out of range": (
        '[dispatch]\nendpoint = "tcp://127.0.0.1:70000"\n',
        "dispatch.endpoint: 'tcp://127.0.0.1:70000': port '70000' is not a number from 0",
    ),
    "http control endpoint": (
        '[control]\nendpoint = "http://127.0.0.1:7703"\n',
        "control.endpoint: 'http://127.0.0.1:7703': http:// is not a ZeroMQ transport",
    ),
    "url with a mangled scheme": (
        '[[streams]]\nid = "cam"\nurl = "rtsp//cam"\n',
        "streams[0](id='cam').url: 'rtsp//cam' is neither a URL nor an existing file: "
        "did you mean 'rtsp://cam'?",
    ),
    "near-miss key": (
        '[[streams]]\nid = "cam"\nurl = "x.mp4"\nfsp = 5\n',
        "streams[0](id='cam').fsp: unknown key (did you mean 'fps'?)",
    ),
    "near-miss section": ("[fusoin]\nwindow_s = 1\n", "(did you mean 'fusion'?)"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_names_file_and_key(tmp_path: Path, case: str) -> None:
    text, expected = BAD[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


@pytest.mark.slow
@pytest.mark.parametrize("command", [["daemon.cli.tandemd"], ["daemon.cli.tandem", "check-config"]])
def test_bad_config_exits_2_with_one_line(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD["wrong type"][0])
    proc = subprocess.run(
        [sys.executable, "-m", *command, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(path) in lines[0] and "fps" in lines[0] and "'fast'" in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


def test_every_error_is_shown_at_once_one_line_each(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[publish]\nendpoint = "localhost:7702"\n'
        '[[streams]]\nid = "cam"\nurl = "rtsp//cam"\nfsp = 5\ndecode_threads = 99\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.cli.tandem", "check-config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"tandem: {path}: streams[0](id='cam').url: 'rtsp//cam' is neither a URL nor an "
        "existing file: did you mean 'rtsp://cam'?",
        # One line for a union's alternatives (an int up to 16, or "auto").
        f"tandem: {path}: streams[0](id='cam').decode_threads = 99: Input should be less "
        "than or equal to 16",
        f"tandem: {path}: streams[0](id='cam').fsp: unknown key (did you mean 'fps'?)",
        f"tandem: {path}: publish.endpoint: 'localhost:7702' has no scheme: write "
        "tcp://HOST:PORT, ipc://PATH or inproc://NAME",
    ]
    assert "more)" not in proc.stderr


@pytest.mark.parametrize(
    "url", ["rec.mp4", "/srv/rec/cam 1.mkv", "file:rec.mp4", "srt://h:9000?mode=listener"]
)
def test_file_paths_and_urls_stay_valid(url: str) -> None:
    assert parse_config({"streams": [{"id": "a", "url": url}]}).streams[0].url == url


def test_an_existing_file_named_like_a_mangled_url_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="did you mean 'rtsp://cam'"):
        parse_config({"streams": [{"id": "a", "url": "rtsp:cam"}]})
    (tmp_path / "rtsp:cam").write_bytes(b"")
    assert parse_config({"streams": [{"id": "a", "url": "rtsp:cam"}]}).streams[0].url


def test_missing_file_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.cli.tandemd", str(tmp_path / "nope.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "nope.toml: cannot read" in proc.stderr


def test_embedded_default_config_is_valid() -> None:
    config = load_config(ROOT / "config.toml")
    assert [s.format for s in config.streams] == ["lavfi", "lavfi"]
    assert config.publish.endpoint == "tcp://127.0.0.1:7701"
    assert (config.metrics.host, config.metrics.port) == ("127.0.0.1", 9310)
    assert config.workers.vision.count == 2 and config.workers.audio.count == 1


def test_check_config_accepts_the_default() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.cli.tandem", "check-config", "config.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ok (2 streams" in proc.stdout


def test_defaults_fill_every_section() -> None:
    config = parse_config({"streams": [{"id": "cam", "url": "rtsp://cam/1"}]})
    stream = config.streams[0]
    assert (stream.mode, stream.fps, stream.width, stream.height) == ("live", 5.0, 640, 360)
    assert stream.effective_pace == "none"
    assert config.fusion.max_delay_ms == 500
