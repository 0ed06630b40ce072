"""Event rules: config validation naming the key, and the engine driven with results."""

from __future__ import annotations

import time
from typing import Any

import pytest

from daemon.config import ConfigError, parse_config
from daemon.fusion.events import EventEngine
from daemon.fusion.fuser import StreamFuser
from daemon.fusion.rules import EventRule
from daemon.wire.protocol import PROTOCOL_VERSION, Result
from tests.support.schemas import validate


def rule(**raw: Any) -> EventRule:
    return EventRule.model_validate(raw)


def res(modality: str, pts: float, seq: int = 0, **outputs: dict[str, Any]) -> Result:
    return Result(
        v=PROTOCOL_VERSION,
        stream="s",
        modality=modality,  # type: ignore[arg-type]
        seq=seq,
        pts=pts,
        wall=time.time(),
        outputs=outputs,
        infer_s=0.0,
    )


BLACK = {"analyzer": "black", "output": "black", "op": "is_true"}
SILENT = {"analyzer": "silence", "output": "silent", "op": "is_true"}


def config_error(events: list[dict[str, Any]]) -> str:
    raw = {"workers": {"vision": {"analyzers": ["motion", "black"]}}, "events": events}
    with pytest.raises(ConfigError) as err:
        parse_config(raw, source="c.toml")
    return str(err.value)


def test_rule_errors_name_the_key_at_fault() -> None:
    faces = {"analyzer": "faces", "output": "count", "op": "ge", "value": 1}
    ok = {"name": "a", "when": BLACK}
    assert config_error([ok, ok]).startswith("c.toml: events[1].name: duplicate")
    msg = config_error([ok, ok | {"name": "b"}, {"name": "c", "when": {"all": [BLACK, faces]}}])
    assert msg.startswith("c.toml: events[2].when.all[1].analyzer: 'faces' is not in")
    msg = config_error([{"name": "c", "when": {"all": [BLACK, {"xor": [BLACK]}]}}])
    assert msg.startswith("c.toml: events[0].when.all[1].xor: unknown combinator")
    msg = config_error([{"name": "c", "when": {"all": [BLACK, BLACK | {"extra": 1}]}}])
    assert msg.startswith("c.toml: events[0].when.all[1].extra: unknown key")
    msg = config_error([{"name": "c", "when": {"not": BLACK | {"output": "blak"}}}])
    assert msg.startswith("c.toml: events[0].when.not.output: black has no output 'blak'")
    msg = config_error([{"name": "c", "when": {"any": [BLACK | {"op": "gt"}]}}])
    assert msg.startswith("c.toml: events[0].when.any[0].value: gt needs a value")
    msg = config_error([{"name": "c", "when": BLACK | {"op": "__import__('os')"}}])
    assert msg.startswith("c.toml: events[0].when.op")
    assert "events[0].name" in config_error([{"name": "Bad Name", "when": BLACK}])


def test_the_shipped_config_loads_with_its_rules() -> None:
    from daemon.config import load_config

    names = [r.name for r in load_config("config.toml").events]
    for wanted in ("signal_loss", "frozen_with_audio", "speech_on_screen", "motion", "black",
                   "frozen", "silence", "clipping", "speech"):  # fmt: skip
        assert wanted in names


def drive(engine: EventEngine, results: list[Result]) -> list[dict[str, Any]]:
    for r in sorted(results, key=lambda r: r.pts):
        engine.step(r)
    return engine.take()


def test_all_of_two_modalities_with_min_duration_and_refined_boundaries() -> None:
    engine = EventEngine("s", [rule(name="loss", when={"all": [BLACK, SILENT]}, min_duration_s=2)])
    results = []
    for i in range(50):  # video at 5 fps, black from 2.0 s to 8.0 s
        t = i / 5
        black = 2.0 <= t < 8.0
        results.append(res("video", t, black={"black": black, "since": 2.0 if black else None}))
    for i in range(20):  # audio in 0.5 s chunks; silence 2.3-7.1 s, confirmed 2 s in
        t = i / 2
        silent = 4.3 <= t + 0.5 < 7.1  # the chunk ends inside the silence
        starts = [2.3] if t <= 4.3 < t + 0.5 else []
        ends = [7.1] if t <= 7.1 < t + 0.5 else []
        outs = {"silent": silent, "silence_starts": starts, "silence_ends": ends}
        results.append(res("audio", t, silence=outs))
    messages = drive(engine, results)
    assert [(m["edge"], m["start"], m["end"]) for m in messages] == [
        ("start", 2.3, None),
        ("end", 2.3, 7.1),
    ]
    for m in messages:
        validate("event", m)


def test_short_condition_is_debounced_and_hysteresis_bridges_gaps() -> None:
    moving = {"analyzer": "motion", "output": "score", "op": "gt", "value": 0.1}
    engine = EventEngine("s", [rule(name="m", when=moving, min_duration_s=0.5, clear_after_s=1.0)])
    scores = [0.0, 0.5, 0.5, 0.0, 0.0]  # 0.4 s of motion: too short
    scores += [0.5] * 5 + [0.0] * 3 + [0.5] * 5  # a 0.6 s gap: bridged
    scores += [0.0] * 10  # then still: ends where it stopped
    messages = drive(
        engine, [res("video", i / 5, motion={"score": s}) for i, s in enumerate(scores)]
    )
    assert [(m["edge"], m["start"], m["end"]) for m in messages] == [
        ("start", 1.0, None),
        ("end", 1.0, 3.6),
    ]


def test_until_ends_the_event_and_it_rearms_only_after_when_goes_false() -> None:
    high = {"analyzer": "level", "output": "rms_dbfs", "op": "gt", "value": -20}
    low = {"analyzer": "level", "output": "rms_dbfs", "op": "lt", "value": -40}
    engine = EventEngine("s", [rule(name="loud", when=high, until=low)])
    levels = [-50, -10, -30, -10, -50, -10]  # -30 is between: still on (hysteresis)
    messages = drive(engine, [res("audio", i, level={"rms_dbfs": v}) for i, v in enumerate(levels)])
    assert [(m["edge"], m["start"], m["end"]) for m in messages] == [
        ("start", 1.0, None),
        ("end", 1.0, 4.0),
        ("start", 5.0, None),
    ]
    engine.close(6.0)
    [end] = engine.take()
    assert end["end"] == 6.0 and end["ended_by"] == "stream_end"


def test_fused_records_list_active_events_and_validate() -> None:
    fuser = StreamFuser("s", {"video"}, 1.0, 0.5, [rule(name="b", when=BLACK)])
    for seq in range(15):
        t = seq / 5
        fuser.on_item("video", seq, t, 0.2)
        black = 1.0 <= t < 2.0
        fuser.on_result(
            res("video", t, seq, black={"black": black, "since": 1.0 if black else None})
        )
    fuser.on_end()
    records = fuser.due(time.monotonic())
    assert [r["events"] for r in records] == [
        [],
        [{"name": "b", "id": "s/b/1", "start": 1.0, "end": None}],
        [{"name": "b", "id": "s/b/1", "start": 1.0, "end": 2.0}],
    ]
    for record in records:
        validate("fused", record)
    assert [m["edge"] for m in fuser.events.take()] == ["start", "end"]


def test_cascade_actions_are_bounded_counted_and_undone() -> None:
    from daemon.fusion.actions import Cascades, EnableAnalyzer, RaiseFps

    now = [0.0]
    calls: list[tuple] = []
    counts: list[tuple[str, str, str]] = []
    cascades = Cascades(
        2,
        lambda s, fps, why: calls.append(("fps", s, fps)),
        lambda s, a, on, why: calls.append(("analyzer", s, a, on)),
        lambda s, a, outcome: counts.append((s, a, outcome)),
        clock=lambda: now[0],
    )
    fps = RaiseFps(do="raise_fps", fps=15, for_s=10)
    asr = EnableAnalyzer(do="enable_analyzer", analyzer="transcribe", for_s=30)
    cascades.on_event_start("cam", "speech", [fps, asr])
    cascades.on_event_start("cam", "speech", [fps])  # a third within the minute: refused
    cascades.on_event_start("other", "speech", [fps])  # the ceiling is per stream
    assert calls == [("fps", "cam", 15), ("analyzer", "cam", "transcribe", True),
                     ("fps", "other", 15)]  # fmt: skip
    assert counts.count(("cam", "raise_fps", "refused")) == 1
    now[0] = 11.0
    cascades.tick()
    assert calls[-2:] == [("fps", "cam", None), ("fps", "other", None)]
    assert cascades.running("cam") == ["enable_analyzer"]
    now[0] = 61.0
    cascades.tick()
    assert calls[-1] == ("analyzer", "cam", "transcribe", False)
    cascades.on_event_start("cam", "speech", [fps])  # a minute later: allowed again
    assert counts[-1] == ("cam", "raise_fps", "done")


def test_action_naming_an_unconfigured_analyzer_fails_at_load() -> None:
    action = {"do": "enable_analyzer", "analyzer": "transcribe"}
    msg = config_error([{"name": "a", "when": BLACK, "actions": [action]}])
    assert msg.startswith("c.toml: events[0].actions[0].analyzer: 'transcribe' is not in")
    msg = config_error([{"name": "a", "when": BLACK, "actions": [{"do": "reboot"}]}])
    assert "events[0].actions[0]" in msg
    always_on = {"do": "enable_analyzer", "analyzer": "black"}
    msg = config_error([{"name": "a", "when": BLACK, "actions": [always_on]}])
    assert msg.startswith("c.toml: events[0].actions[0].analyzer: 'black' runs on every item")


def test_on_demand_names_a_configured_analyzer() -> None:
    raw = {"workers": {"vision": {"analyzers": ["motion"], "on_demand": ["blur"]}}}
    with pytest.raises(ConfigError, match=r"workers.vision: on_demand: 'blur' is not in analyzers"):
        parse_config(raw, source="c.toml")


def test_the_same_action_again_extends_it_and_is_undone_once() -> None:
    from daemon.fusion.actions import Cascades, EnableAnalyzer

    now = [0.0]
    switched: list[bool] = []
    cascades = Cascades(
        10,
        lambda s, fps, why: None,
        lambda s, a, on, why: switched.append(on),
        lambda s, a, outcome: None,
        clock=lambda: now[0],
    )
    asr = EnableAnalyzer(do="enable_analyzer", analyzer="transcribe", for_s=30)
    cascades.on_event_start("cam", "speech", [asr])
    now[0] = 20.0
    cascades.on_event_start("cam", "speech", [asr])  # lasts until 50 s now
    now[0] = 35.0
    cascades.tick()
    assert switched == [True]
    now[0] = 50.0
    cascades.tick()
    assert switched == [True, False]


@pytest.mark.slow
def test_workers_never_import_fusion() -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = (
        "import sys, daemon.workers.main, daemon.workers.worker, daemon.workers.analyzers.onset\n"
        "print(sorted(m for m in sys.modules if m.startswith('daemon.fusion')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_digest_line_names_active_events_and_the_av_offset() -> None:
    from daemon.publishing.format import digest_line, event_line

    fuser = StreamFuser("s", {"video"}, 1.0, 0.5, [rule(name="b", when=BLACK)])
    for seq in range(5):
        fuser.on_item("video", seq, seq / 5, 0.2)
        fuser.on_result(res("video", seq / 5, seq, black={"black": True, "since": 0.0}))
    [record] = fuser.due(time.monotonic() + 1)
    record["av_sync"] = {"offset_s": 0.3, "confidence": 1.0, "pairs": 5}
    line = digest_line("s", record)
    assert "black.black=1" in line and "events=b" in line and "av_offset=+300ms" in line
    [start] = fuser.events.take()
    assert event_line(start) == "s  event b start 0.00 s"


def test_a_condition_for_s_must_hold_before_it_counts_inside_a_combination() -> None:
    loud = {"analyzer": "level", "output": "rms_dbfs", "op": "gt", "value": -20, "for_s": 1.0}
    engine = EventEngine("s", [rule(name="x", when={"all": [loud, BLACK]})])
    results = [res("video", i / 5, black={"black": True, "since": 0.0}) for i in range(20)]
    levels = [-50, -10, -10, -50, -10, -10, -10, -10]  # loud 0.5-1.5 s (too short), 2.0-4.0
    results += [res("audio", i / 2, level={"rms_dbfs": v}) for i, v in enumerate(levels)]
    messages = drive(engine, results)
    assert [(m["edge"], m["start"]) for m in messages] == [("start", 2.0)]
    assert messages[0]["at"] is not None


def test_motion_edges_at_the_first_still_frame_for_either_comparison() -> None:
    """A condition turning to what a still picture gives turns at motion's still_since."""
    moving = {"analyzer": "motion", "output": "score", "op": "gt", "value": 0.01}
    still = {"analyzer": "motion", "output": "score", "op": "lt", "value": 0.01}
    engine = EventEngine("s", [rule(name="m", when=moving), rule(name="s", when=still)])
    results = []
    for i in range(20):  # moving until the frame at 1.0 s, still from it on
        t = i / 5
        score, since = (0.0, 1.0) if t > 1.0 else (0.5, None)
        results.append(res("video", t, motion={"score": score, "still_since": since}))
    edges = [(m["name"], m["edge"], m["start"], m["end"]) for m in drive(engine, results)]
    assert ("m", "end", 0.0, 1.0) in edges  # not 1.2, the frame that showed it still
    assert ("s", "start", 1.0, None) in edges
