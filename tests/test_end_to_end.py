"""The whole path with real processes: files -> ingest -> dispatch -> workers -> fusion -> PUB."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from daemon.publishing.subscriber import Subscriber
from tests.conftest import alive, children_of, free_port, scrape
from tests.support.schemas import validate_published

pytestmark = pytest.mark.slow


def file_config(media: dict[str, Path], tmp: Path, pub: int, metrics: int) -> str:
    return f"""
runtime_dir = "{tmp}/run"
[log]
digest_s = 0
[[streams]]
id = "alpha"
url = "{media["a"]}"
mode = "file"
fps = 5
width = 160
height = 120
[[streams]]
id = "beta"
url = "{media["b"]}"
mode = "file"
fps = 4
width = 128
height = 72
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = {metrics}
"""


def collect_until_ended(
    sub: Subscriber, streams: list[str], timeout_s: float, events: list[dict] | None = None
):
    """Fused records per stream, until every stream's `ended` status arrived. Every message
    is checked against its JSON Schema (docs/schema/); events go to `events` if given."""
    records: dict[str, list[dict]] = {s: [] for s in streams}
    ended: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and ended != set(streams):
        for topic, record in sub.records(timeout_s=0.5):
            validate_published(topic, record)
            if record["type"] == "event":
                if events is not None:
                    events.append(record)
            elif record["type"] == "fused":
                assert record["stream"] not in ended, "a record after the stream ended"
                records[record["stream"]].append(record)
            elif record["type"] == "status" and record["state"] == "ended":
                ended.add(record["stream"])
            break
    assert ended == set(streams), f"streams ended: {ended}"
    return records


def test_files_flow_end_to_end_and_metrics_match(tandemd, media, tmp_path):
    pub, metrics_port = free_port(), free_port()
    with Subscriber(f"tcp://127.0.0.1:{pub}", ["fused.", "status."]) as sub:
        daemon = tandemd(file_config(media, tmp_path, pub, metrics_port))
        records = collect_until_ended(sub, ["alpha", "beta"], timeout_s=60)

        # Stereo tones with identical channels, downmixed by FFmpeg as (L+R)/sqrt(2): the
        # mono RMS of a sine of amplitude A is then A itself, 20*log10(A) dBFS.
        expected_dbfs = {"alpha": -6.02, "beta": -20.0}
        for stream, duration in (("alpha", 4.0), ("beta", 3.0)):
            got = records[stream]
            assert got, f"no records for {stream}: {daemon.log()}"
            starts = [r["window"]["start"] for r in got]
            assert starts == [float(i) for i in range(len(got))], "windows in order, no gaps"
            assert got[-1]["window"]["end"] >= duration
            for r in got:
                assert r["window"]["end"] - r["window"]["start"] == pytest.approx(1.0)
                assert r["partial"] is False and r["missing"] == []
                assert r["latency_s"] is not None and r["latency_s"] >= 0
                assert r["video"]["results"] == r["video"]["items"]
                assert r["audio"]["results"] == r["audio"]["items"]
            # Windows inside the clip have both modalities; one past its end may hold only
            # the encoder's audio padding.
            full = [r for r in got if r["window"]["end"] <= duration]
            assert len(full) == int(duration)
            for r in full:
                assert r["video"]["results"] > 0 and "motion" in r["video"]["analyzers"]
                assert r["audio"]["results"] >= 2
                level = r["audio"]["analyzers"]["level"]["rms_dbfs"]["mean"]
                assert level == pytest.approx(expected_dbfs[stream], abs=0.5)
            # The square moves every frame: motion after the first frame of the clip.
            assert got[1]["video"]["analyzers"]["motion"]["score"]["min"] > 0

        samples = scrape(metrics_port)
        for stream in ("alpha", "beta"):
            label = (("stream", stream),)
            assert samples[("tandem_fused_records_total", label)] == len(records[stream])
            video_results = sum(r["video"]["results"] for r in records[stream])
            assert samples[("tandem_frames_sampled_total", label)] == video_results
            assert samples[("tandem_capture_to_publish_latency_seconds_count", label)] == len(
                records[stream]
            )
            assert samples[("tandem_frames_decoded_total", label)] >= video_results
        vision = sum(r["video"]["results"] for s in records for r in records[s])
        audio = sum(r["audio"]["results"] for s in records for r in records[s])
        assert samples[("tandem_results_total", (("kind", "vision"),))] == vision
        assert samples[("tandem_results_total", (("kind", "audio"),))] == audio

        children = children_of(daemon.proc.pid)
        assert len([pid for pid in children if alive(pid)]) >= 2  # the two workers at least
        started = time.monotonic()
        assert daemon.stop(timeout_s=10) == 0
        assert time.monotonic() - started < 10
        assert not [pid for pid in children if alive(pid)], "children left behind"


def test_stereo_for_the_workers_reaches_analyzers_as_the_average(tandemd, media, tmp_path):
    """audio_channels = 2: the worker gets both channels; analyzers see their average.
    The clip's channels are the same 0.5 tone, so the average is that tone: RMS
    20*log10(0.5/sqrt(2)) = -9.03 dBFS (FFmpeg's mono downmix would read -6.02)."""
    pub, metrics_port = free_port(), free_port()
    with Subscriber(f"tcp://127.0.0.1:{pub}", ["fused.", "status."]) as sub:
        tandemd(f"""
runtime_dir = "{tmp_path}/run"
[log]
digest_s = 0
[[streams]]
id = "stereo"
url = "{media["a"]}"
mode = "file"
video = false
audio_channels = 2
[workers.vision]
count = 0
[workers.audio]
count = 1
analyzers = ["level"]
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = {metrics_port}
""")
        records = collect_until_ended(sub, ["stereo"], timeout_s=60)["stereo"]
    full = [r for r in records if r["window"]["end"] <= 4.0]
    assert len(full) == 4
    for r in full:
        assert r["audio"]["errors"] == {}
        level = r["audio"]["analyzers"]["level"]["rms_dbfs"]["mean"]
        assert level == pytest.approx(-9.03, abs=0.3)
