"""Tracks, zones, lines and speech spans in fusion, fed results as workers send them."""

from __future__ import annotations

import numpy as np
import pytest

from daemon.config import ConfigError, parse_config
from daemon.fusion.fuser import StreamFuser
from daemon.fusion.scene import StreamScene
from daemon.fusion.speech import StreamSpeech
from daemon.fusion.tracker import (
    Detection,
    ObjectTracker,
    TrackedObject,
    TrackerOptions,
    _pairs,
    _similarity,
)
from daemon.fusion.zones import LineConfig, ZoneConfig, crossing, inside
from daemon.publishing.snapshots import FrameRing, SnapshotStore, encode_jpeg
from daemon.wire.protocol import PROTOCOL_VERSION, Result


def result(seq: int, pts: float, outputs: dict, modality: str = "video") -> Result:
    return Result(
        v=PROTOCOL_VERSION,
        stream="s",
        modality=modality,  # type: ignore[arg-type]
        seq=seq,
        pts=pts,
        wall=1000.0 + pts,
        outputs=outputs,
        infer_s=0.001,
    )


def square(x: float, y: float = 0.4, side: float = 0.1) -> list[float]:
    return [x, y, x + side, y + side]


def persons(*boxes: list[float], gated: bool = False) -> dict:
    return {"persons": {"boxes": list(boxes), "scores": [0.9] * len(boxes), "gated": gated}}


def test_two_crossing_paths_keep_their_ids() -> None:
    tracker = ObjectTracker(TrackerOptions(), [0])
    ids: dict[str, set[int]] = {"a": set(), "b": set()}
    for i in range(20):  # a moves right, b left, on rows that overlap when they pass
        a, b = (
            (0.05 + 0.04 * i, 0.4, 0.15 + 0.04 * i, 0.5),
            (0.85 - 0.04 * i, 0.42, 0.95 - 0.04 * i, 0.52),
        )
        frame = tracker.step(i * 0.2, [Detection(a, "person", 0.9), Detection(b, "person", 0.9)])
        for track in frame.seen:
            ids["a" if track.box == a else "b"].add(track.id)
    assert ids == {"a": {1}, "b": {2}}


def test_tracks_coast_through_gated_frames_and_end_when_lost() -> None:
    scene = StreamScene("s", ["persons"])
    scene.step(result(0, 0.0, persons(square(0.1))))
    scene.step(result(1, 0.2, persons(square(0.12))))
    # Nothing moved for 5 s: the gate repeated the last answer, marked gated.
    for seq in range(2, 27):
        scene.step(result(seq, seq * 0.2, persons(square(0.12), gated=True)))
    scene.step(result(27, 5.4, persons(square(0.13))))
    tracks = scene.window()["tracks"]
    assert [(t["id"], t["ended"], t["last_seen"]) for t in tracks] == [(1, False, 5.4)]
    for seq in range(28, 35):  # analysed, nothing found: lost after 1 s
        scene.step(result(seq, seq * 0.2, persons()))
    (track,) = scene.window()["tracks"]
    assert track["ended"] and track["last_seen"] == 5.4 and track["first_seen"] == 0.0


def test_the_matching_loop_scores_pairs_as_the_similarity_does() -> None:
    """_pairs inlines _similarity and skips far pairs unseen: the same pairs, the same
    figures to the bit, on random boxes (degenerate, inverted and off-frame ones too)."""
    rng = np.random.default_rng(7)

    def box() -> tuple[float, float, float, float]:
        x, y = rng.uniform(-0.2, 1.0, 2)
        w, h = rng.choice([0.0, -0.05, 0.02, 0.1, 0.4]), rng.uniform(0.0, 0.3)
        return float(x), float(y), float(x + w), float(y + h)

    for _ in range(200):
        tracks = []
        for i in range(int(rng.integers(0, 10))):
            track = TrackedObject(i + 1, str(rng.choice(["a", "b"])), box(), 0.9, 0.9, 0.0, 0.0)
            track.velocity = tuple(float(v) for v in rng.normal(0, 0.2, 4))  # type: ignore[assignment]
            tracks.append(track)
        detections = [Detection(box(), str(rng.choice(["a", "b"])), 0.9) for _ in range(10)]
        for threshold in (0.0, 0.1, 0.3, 0.6):
            expected = [
                (-similarity, track.id, n)
                for track in tracks
                for n, d in enumerate(detections)
                if d.label == track.label
                and (similarity := _similarity(track.predicted(0.2), d.box)) >= threshold
            ]
            got = [p[:3] for p in _pairs(tracks, detections, 0.2, threshold)]
            assert got == expected


def test_a_detection_seen_once_is_no_track() -> None:
    scene = StreamScene("s", ["persons"])
    scene.step(result(0, 0.0, persons(square(0.5))))
    scene.step(result(1, 0.2, persons()))
    scene.step(result(2, 0.4, persons(square(0.1, 0.1))))
    assert scene.window()["tracks"] == []


def test_geometry() -> None:
    left = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]
    assert inside((0.25, 0.5), left) and not inside((0.75, 0.5), left)
    line = LineConfig(name="l", a=(0.0, 0.5), b=(1.0, 0.5))
    assert crossing(line, (0.5, 0.4), (0.5, 0.6)) == ("in", pytest.approx(0.5))  # downwards
    assert crossing(line, (0.5, 0.7), (0.5, 0.3)) == ("out", pytest.approx(0.5))
    assert crossing(line, (0.5, 0.4), (0.5, 0.45)) is None
    short = LineConfig(name="l", a=(0.0, 0.5), b=(0.2, 0.5))
    assert crossing(short, (0.5, 0.4), (0.5, 0.6)) is None  # past the segment's end


def test_zone_counts_reach_event_rules_and_fused_records() -> None:
    zone = ZoneConfig(name="door", polygon=[(0, 0), (0.3, 0), (0.3, 1), (0, 1)], anchor="center")
    config = parse_config(
        {
            "streams": [{"id": "s", "url": "x", "zones": [zone.model_dump()]}],
            "workers": {"vision": {"analyzers": ["persons"]}},
            "events": [
                {
                    "name": "person_at_door",
                    "when": {"analyzer": "zones", "output": "door.person", "op": "ge", "value": 1},
                    "min_duration_s": 1.0,
                }
            ],
        }
    )
    stream = config.streams[0]
    scene = StreamScene("s", config.tracked(stream), stream.zones, stream.lines)
    fuser = StreamFuser("s", {"video"}, 1.0, 10.0, config.events, scene)
    for seq in range(15):
        pts = seq * 0.2
        fuser.on_item("video", seq, pts, 0.2)
        fuser.on_result(result(seq, pts, persons(square(0.1))))
    fuser.on_end()
    records = fuser.due(now=1e9, flush=True)
    assert records[0]["zones"] == {"door": {"person": 1}}
    assert [t["label"] for t in records[0]["tracks"]] == ["person"]
    names = [(m["name"], m["edge"]) for m in fuser.events.take()]
    assert ("zone_enter", "instant") in names and ("person_at_door", "start") in names


def test_zone_config_errors_name_the_key() -> None:
    base = {"workers": {"vision": {"analyzers": ["motion", "faces"]}}}
    bad_point = {
        "id": "s",
        "url": "x",
        "zones": [{"name": "z", "polygon": [[0, 0], [2, 0], [0, 1]]}],
    }
    with pytest.raises(
        ConfigError,
        match=r"streams\[0\]\(id='s'\)\.zones\[0\]\.polygon\[1\]: \[2.0, 0.0\] is outside",
    ):
        parse_config(base | {"streams": [bad_point]})
    untracked = {
        "id": "s",
        "url": "x",
        "lines": [{"name": "l", "a": [0, 0], "b": [1, 1], "analyzers": ["motion"]}],
    }
    with pytest.raises(ConfigError, match=r"lines\[0\]\.analyzers: 'motion' is not tracked"):
        parse_config(base | {"streams": [untracked]})
    with pytest.raises(ConfigError, match=r"track: 'persons' is not a vision analyzer with boxes"):
        parse_config(base | {"streams": [{"id": "s", "url": "x", "track": ["persons"]}]})
    config = parse_config(base | {"streams": [{"id": "s", "url": "x"}]})
    assert config.tracked(config.streams[0]) == ["faces"]  # motion only when named


def test_speech_spans_are_clipped_to_windows() -> None:
    speech = StreamSpeech()
    speech.step(result(0, 0.0, {"vad": {"speech_starts": [0.3], "speech_ends": []}}, "audio"))
    assert speech.window(0.0, 1.0)["speech"] == [{"start": 0.3, "end": 1.0, "open": True}]
    speech.step(result(1, 1.0, {"vad": {"speech_starts": [1.8], "speech_ends": [1.2]}}, "audio"))
    assert speech.window(1.0, 2.0)["speech"] == [
        {"start": 1.0, "end": 1.2, "open": False},
        {"start": 1.8, "end": 2.0, "open": True},
    ]
    words = {
        "transcribe": {"text": "hello", "segments": [{"start": 0.3, "end": 1.1, "text": "hello"}]}
    }
    speech.step(result(2, 2.0, words, "audio"))
    out = speech.window(2.0, 3.0)
    assert out["transcript"] == {"text": "hello", "segments": words["transcribe"]["segments"]}
    assert out["speech"] == [{"start": 2.0, "end": 3.0, "open": True}]


def test_snapshot_store_evicts_the_oldest_first(tmp_path) -> None:
    image = np.zeros((90, 160, 3), np.uint8)
    image[30:60, 40:80] = (200, 50, 50)
    jpeg = encode_jpeg(image, [[0.25, 0.33, 0.5, 0.66]])
    assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"  # SOI ... EOI
    store = SnapshotStore(tmp_path / "snaps", max_bytes=len(jpeg) * 3)
    paths = [store.write("cam", f"cam/motion/{i}", jpeg) for i in range(5)]
    assert [p is not None and p.exists() for p in paths] == [False, False, True, True, True]
    assert store.total <= store.max_bytes and store.evicted == 2
    assert paths[4] == tmp_path / "snaps" / "cam" / "cam_motion_4.jpg"
    # A restart counts what is already there against the cap.
    again = SnapshotStore(tmp_path / "snaps", max_bytes=len(jpeg) * 3)
    assert again.total == 3 * len(jpeg)
    again.write("cam", "cam/motion/5", jpeg)
    assert not paths[2].exists() and paths[3].exists()  # type: ignore[union-attr]


def test_the_ring_keeps_the_frame_shown_at_an_events_start() -> None:
    ring = FrameRing(4)
    for i in range(6):
        ring.add(i * 0.2, bytes([i]) * 12, (2, 2, 3))
    assert [f.pts for f in ring.frames] == pytest.approx([0.4, 0.6, 0.8, 1.0])
    assert ring.nearest(0.7).pts == pytest.approx(0.6)  # type: ignore[union-attr]
    assert ring.nearest(0.1).pts == pytest.approx(0.4)  # before its reach: the oldest
    ring.release_before(0.75)
    assert [f.pts for f in ring.frames] == pytest.approx([0.6, 0.8, 1.0])


def test_tracks_do_not_depend_on_which_worker_answered_first() -> None:
    """A stream's frames go to whichever worker has room, and answers come back in any
    order (or not at all: lost). Fusion steps the tracker in media order when a window is
    published, so the tracks are those of the frames in order."""
    frames = [(seq, seq * 0.2, persons(square(0.05 + 0.03 * seq))) for seq in range(15)]

    def fused_tracks(order: list[int], lost: frozenset[int] = frozenset()) -> list:
        scene = StreamScene("s", ["persons"])
        fuser = StreamFuser("s", {"video"}, 1.0, 10.0, [], scene)
        for seq, pts, _ in frames:
            fuser.on_item("video", seq, pts, 0.2)
        for i in order:
            seq, pts, outputs = frames[i]
            if seq in lost:
                fuser.on_lost("video", seq, pts)
            else:
                fuser.on_result(result(seq, pts, outputs))
        fuser.on_end()
        return [
            (t["id"], t["first_seen"], t["last_seen"])
            for r in fuser.due(1e9, True)
            for t in r["tracks"]
        ]

    in_order = fused_tracks(list(range(15)))
    assert in_order == [(1, 0.0, 0.8), (1, 0.0, 1.8), (1, 0.0, 2.8)]
    two_workers = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13]
    assert fused_tracks(two_workers) == in_order
    assert fused_tracks(list(reversed(range(15)))) == in_order
    # A frame lost on the way (its worker died) is no observation: the same one track.
    assert [t[0] for t in fused_tracks(list(range(15)), frozenset({6, 7}))] == [1, 1, 1]
