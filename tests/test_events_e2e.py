"""Events from a real tandemd on clips with known truth: boundaries within 0.3 s."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.publishing.subscriber import Subscriber
from tests.conftest import ROOT, free_port, metric
from tests.support.av_clips import black_and_silence, face_then_empty_with_speech
from tests.test_end_to_end import collect_until_ended

pytestmark = pytest.mark.slow
TOLERANCE_S = 0.3

SHIPPED = ("signal_loss", "black", "silence", "frozen", "frozen_with_audio")


def shipped_rules(names: tuple[str, ...]) -> list[str]:
    """The shipped config.toml's rules of these names, as text, as they are shipped."""
    blocks = (ROOT / "config.toml").read_text().split("[[events]]")[1:]
    kept = [b.split("\n[publish]")[0] for b in blocks if b.split('"')[1] in names]
    assert len(kept) == len(names)
    return [f"[[events]]{b}" for b in kept]


def rules() -> str:
    """Shipped rules this test's analyzers serve, and one on `level` whose boundaries
    have audio-chunk resolution (no analyzer hint)."""
    tone = """[[events]]
name = "tone"
min_duration_s = 0.5
when = {analyzer = "level", output = "rms_dbfs", op = "gt", value = -30}
"""
    return "".join([*shipped_rules(SHIPPED), tone])


def file_config(tmp: Path, clip: Path, pub: int, metrics: int) -> str:
    return f"""
runtime_dir = "{tmp}/run"
[log]
digest_s = 0
[[streams]]
id = "truth"
url = "{clip}"
mode = "file"
fps = 5
width = 160
height = 120
[workers.vision]
count = 1
analyzers = ["motion", "black", "frozen"]
[workers.audio]
count = 1
analyzers = ["level", "silence"]
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = {metrics}
{rules()}
"""


def spans(events: list[dict], name: str) -> list[tuple[float, float]]:
    ends = [e for e in events if e["name"] == name and e["edge"] == "end"]
    starts = [e for e in events if e["name"] == name and e["edge"] == "start"]
    assert [e["start"] for e in starts] == [e["start"] for e in ends], "each start has an end"
    return [(e["start"], e["end"]) for e in ends]


def test_cross_modal_events_match_the_truth(tandemd, tmp_path):
    clip = black_and_silence(
        tmp_path / "av.mp4", black=(3.0, 7.0), silence=(3.3, 7.7), seconds=14.0, frozen=(9.0, 12.0)
    )
    pub, port = free_port(), free_port()
    events: list[dict] = []
    with Subscriber(f"tcp://127.0.0.1:{pub}", ["fused.", "event.", "status."]) as sub:
        daemon = tandemd(file_config(tmp_path, clip, pub, port))
        records = collect_until_ended(sub, ["truth"], timeout_s=90, events=events)["truth"]
    assert records, daemon.log()

    truth = {
        "black": [(3.0, 7.0)],
        "silence": [(3.3, 7.7)],
        "signal_loss": [(3.3, 7.0)],
        "tone": [(0.0, 3.3), (7.7, 14.0)],
        # A black picture is also a still one; sound goes on only in the second.
        "frozen": [(3.0, 7.0), (9.0, 12.0)],
        "frozen_with_audio": [(9.0, 12.0)],
    }
    for name, expected in truth.items():
        got = spans(events, name)
        assert len(got) == len(expected), (name, got)
        for (start, end), (want_start, want_end) in zip(got, expected, strict=True):
            assert start == pytest.approx(want_start, abs=TOLERANCE_S), (name, got)
            assert end == pytest.approx(want_end, abs=TOLERANCE_S), (name, got)
    # Fused records list the events active in their window.
    by_start = {r["window"]["start"]: r for r in records}
    assert {e["name"] for e in by_start[5.0]["events"]} == {
        "black",
        "frozen",
        "silence",
        "signal_loss",
    }
    assert {e["name"] for e in by_start[1.0]["events"]} == {"tone"}
    assert metric(port, "tandem_events_total", stream="truth", event="signal_loss", edge="end") == 1


def test_speech_on_screen_with_the_built_in_detectors(tandemd, tmp_path):
    clip, speech = face_then_empty_with_speech(tmp_path / "talk.mp4")
    assert speech[0][1] < 4.0 < speech[1][0], "phrase 1 with the face, phrase 2 without"
    pub, port = free_port(), free_port()
    text = f"""
runtime_dir = "{tmp_path}/run"
[log]
digest_s = 0
[[streams]]
id = "talk"
url = "{clip}"
mode = "file"
fps = 5
[workers.vision]
count = 1
analyzers = ["faces", "persons"]
options = {{persons = {{scale = 1.15}}}}
[workers.audio]
count = 1
analyzers = ["vad"]
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = {port}
""" + "".join(shipped_rules(("speech_on_screen", "speech")))
    events: list[dict] = []
    with Subscriber(f"tcp://127.0.0.1:{pub}", ["fused.", "event.", "status."]) as sub:
        daemon = tandemd(text)
        records = collect_until_ended(sub, ["talk"], timeout_s=120, events=events)["talk"]
    assert records, daemon.log()
    truth = {"speech": speech, "speech_on_screen": [speech[0]]}
    for name, expected in truth.items():
        got = spans(events, name)
        assert len(got) == len(expected), (name, got, expected)
        for (start, end), (want_start, want_end) in zip(got, expected, strict=True):
            assert start == pytest.approx(want_start, abs=TOLERANCE_S), (name, got, expected)
            assert end == pytest.approx(want_end, abs=TOLERANCE_S), (name, got, expected)
