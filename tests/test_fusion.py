"""Window fusion on the media timeline, driven directly (no sockets)."""

from __future__ import annotations

import time

from daemon.fusion.fuser import StreamFuser
from daemon.wire.protocol import PROTOCOL_VERSION, Result


def result(modality: str, seq: int, pts: float, **outputs: dict) -> Result:
    return Result(
        v=PROTOCOL_VERSION,
        stream="s",
        modality=modality,
        seq=seq,
        pts=pts,
        wall=time.time(),
        outputs=outputs or {"x": {"value": float(seq)}},
        infer_s=0.001,
    )


def feed_video(fuser: StreamFuser, n: int, fps: float = 5.0) -> None:
    for seq in range(n):
        fuser.on_item("video", seq, seq / fps, 1 / fps)


def test_window_published_once_both_modalities_cover_it() -> None:
    fuser = StreamFuser("s", {"video", "audio"}, window_s=1.0, max_delay_s=0.5)
    feed_video(fuser, 5)
    fuser.on_item("audio", 0, 0.0, 0.5)
    fuser.on_item("audio", 1, 0.5, 0.5)
    for seq in range(5):
        fuser.on_result(result("video", seq, seq / 5))
    fuser.on_result(result("audio", 0, 0.0))
    assert fuser.due(time.monotonic()) == []  # audio 0.5-1.0 still out
    fuser.on_result(result("audio", 1, 0.5))
    [record] = fuser.due(time.monotonic())
    assert record["window"]["start"] == 0.0 and record["window"]["end"] == 1.0
    assert record["missing"] == [] and record["partial"] is False
    assert record["video"]["results"] == 5 and record["audio"]["results"] == 2
    assert record["video"]["analyzers"]["x"]["value"] == {"min": 0.0, "mean": 2.0, "max": 4.0}


def test_missing_modality_is_published_after_max_delay_and_marked() -> None:
    fuser = StreamFuser("s", {"video", "audio"}, window_s=1.0, max_delay_s=0.5)
    feed_video(fuser, 7)  # frames up to 1.2 s: the stream moved past window 0
    fuser.on_item("audio", 0, 0.0, 0.5)  # never answered: the audio worker is gone
    for seq in range(7):
        fuser.on_result(result("video", seq, seq / 5))
    now = time.monotonic()
    assert fuser.due(now) == []
    [record] = fuser.due(now + 0.6)
    assert record["missing"] == ["audio"] and record["partial"] is True
    assert record["audio"]["results"] == 0 and record["audio"]["items"] == 1


def test_result_after_publication_is_counted_late() -> None:
    fuser = StreamFuser("s", {"video"}, window_s=1.0, max_delay_s=0.0)
    feed_video(fuser, 6)
    for seq in (0, 1, 2, 3, 5):
        fuser.on_result(result("video", seq, seq / 5))
    [record] = fuser.due(time.monotonic() + 0.1)  # window 0 passed; seq 4 still out
    assert record["missing"] == ["video"]
    assert fuser.on_result(result("video", 4, 0.8)) is False
    assert fuser.late_results == 1


def test_duplicate_result_is_refused() -> None:
    fuser = StreamFuser("s", {"video"}, window_s=1.0, max_delay_s=0.5)
    feed_video(fuser, 2)
    assert fuser.on_result(result("video", 0, 0.0)) is True
    assert fuser.on_result(result("video", 0, 0.0)) is False


def test_windows_come_out_in_order_and_empty_ones_are_skipped() -> None:
    fuser = StreamFuser("s", {"video"}, window_s=1.0, max_delay_s=0.5)
    for seq, pts in enumerate([0.0, 0.5, 3.0, 3.5]):  # a gap from 1 s to 3 s
        fuser.on_item("video", seq, pts, 0.5)
        fuser.on_result(result("video", seq, pts))
    fuser.on_end()
    records = fuser.due(time.monotonic())
    assert [r["window"]["start"] for r in records] == [0.0, 3.0]
    assert fuser.complete


def test_absent_modality_is_not_waited_for() -> None:
    fuser = StreamFuser("s", {"video", "audio"}, window_s=1.0, max_delay_s=10.0)
    fuser.set_present("audio", False)  # the source turned out to have no audio
    feed_video(fuser, 5)
    for seq in range(5):
        fuser.on_result(result("video", seq, seq / 5))
    [record] = fuser.due(time.monotonic())
    assert record["audio"] is None and record["missing"] == []


def test_idle_stream_flushes_its_last_window() -> None:
    fuser = StreamFuser("s", {"video"}, window_s=1.0, max_delay_s=0.5)
    feed_video(fuser, 3)
    for seq in range(2):
        fuser.on_result(result("video", seq, seq / 5))
    assert fuser.due(time.monotonic()) == []
    [record] = fuser.due(time.monotonic() + 1.1)
    assert record["missing"] == ["video"] and record["video"]["results"] == 2


class Clock:
    """The fuser's clock, driven by the test: the wait bound exactly, without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_wait_bound_is_max_delay_after_the_stream_moved_past_the_window() -> None:
    clock = Clock()
    fuser = StreamFuser("s", {"video", "audio"}, window_s=1.0, max_delay_s=0.5, clock=clock)
    fuser.on_item("audio", 0, 0.0, 0.5)  # never answered
    feed_video(fuser, 5)  # window 0's frames, answered
    for seq in range(5):
        fuser.on_result(result("video", seq, seq / 5))
    clock.now += 3.0  # however long the stream stays inside window 0: no bound yet...
    fuser.on_item("video", 5, 1.0, 0.2)  # ...until it moves past: the bound starts now
    moved_past = clock.now
    assert fuser.due(moved_past + 0.499) == []
    [record] = fuser.due(moved_past + 0.5)
    assert record["window"]["start"] == 0.0 and record["missing"] == ["audio"]
