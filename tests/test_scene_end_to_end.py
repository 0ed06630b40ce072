"""Results a subscriber can act on, through a real tandemd on a generated clip: per-item
detections, tracks with stable ids, zone entries and exits, line crossings per direction,
event snapshots."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from daemon.publishing.subscriber import Subscriber
from tests.conftest import free_port
from tests.support.scene_clips import LINE_X, SQUARES, W, shapes_clip
from tests.support.schemas import validate_published
from tests.test_end_to_end import collect_until_ended

pytestmark = pytest.mark.slow
FPS = 5


def config(tmp: Path, clip: Path, pub: int) -> str:
    return f"""
runtime_dir = "{tmp}/run"
[log]
digest_s = 0
[[streams]]
id = "yard"
url = "{clip}"
mode = "file"
audio = false
fps = {FPS}
width = 640
height = 360
track = ["motion"]
[[streams.zones]]
name = "left"
polygon = [[0, 0], [{LINE_X}, 0], [{LINE_X}, 1], [0, 1]]
anchor = "center"
[[streams.lines]]
name = "middle"
a = [{LINE_X}, 0]
b = [{LINE_X}, 1]
anchor = "center"
[workers.vision]
count = 1
analyzers = ["motion"]
[workers.audio]
count = 0
analyzers = ["level"]
[publish]
endpoint = "tcp://127.0.0.1:{pub}"
[metrics]
port = 0
[snapshots]
directory = "{tmp}/snapshots"
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """One tandemd run over the clip: fused records, events, detections."""
    from tests.conftest import Daemon

    tmp = tmp_path_factory.mktemp("scene")
    clip = shapes_clip(tmp / "shapes.mp4")
    pub = free_port()
    (tmp / "config.toml").write_text(config(tmp, clip, pub))
    events: list[dict] = []
    endpoint = f"tcp://127.0.0.1:{pub}"
    with (
        Subscriber(endpoint, ["fused.", "event.", "status."]) as sub,
        Subscriber(endpoint, ["detections."]) as per_item,
        Subscriber(endpoint, ["snapshot."]) as pictures,
    ):
        daemon = Daemon(tmp / "config.toml", tmp / "tandemd.log")
        try:
            fused = collect_until_ended(sub, ["yard"], timeout_s=90, events=events)["yard"]
            detections = [r for _, r in per_item.records(timeout_s=1.0)]
            snapshots = [r for _, r in pictures.records(timeout_s=1.0)]
            assert daemon.stop() == 0, daemon.log()
        finally:
            daemon.kill()
    return {"fused": fused, "events": events, "detections": detections, "snapshots": snapshots}


def test_every_frame_reaches_detections_with_its_boxes(run: dict[str, list[dict]]) -> None:
    detections = run["detections"]
    assert [d["seq"] for d in detections] == list(range(8 * FPS))
    for d in detections:
        validate_published("detections.yard", d)  # docs/schema/detections.schema.json
        assert (d["stream"], d["modality"]) == ("yard", "video")
        assert d["end"] == pytest.approx(d["pts"] + 1 / FPS, abs=1e-3)
        assert set(d["outputs"]) == {"motion"} and d["errors"] == {}
    # While both squares move, motion finds a box around each.
    both = [d for d in detections if 2.2 <= d["pts"] <= 4.8]
    assert len(both) == 14 and all(len(d["outputs"]["motion"]["boxes"]) == 2 for d in both)


def test_each_square_is_one_track_from_entry_to_exit(run: dict[str, list[dict]]) -> None:
    seen: dict[int, list[dict]] = {}
    for record in run["fused"]:
        for track in record["tracks"]:
            seen.setdefault(track["id"], []).append(track)
    assert len(seen) == len(SQUARES), seen
    for square, (track_id, sightings) in zip(SQUARES, sorted(seen.items()), strict=True):
        first, last = sightings[0], sightings[-1]
        assert first["first_seen"] == pytest.approx(square.t0, abs=0.3), track_id
        assert last["last_seen"] == pytest.approx(square.t1, abs=0.3), track_id
        assert last["ended"] and all(s["label"] == "motion" for s in sightings)
        # The box follows the square: its centre row stays on the square's row.
        y = (square.y + 24) / 360
        assert all(abs((s["box"][1] + s["box"][3]) / 2 - y) < 0.05 for s in sightings)


def test_line_crossings_per_direction_equal_the_truth(run: dict[str, list[dict]]) -> None:
    crossed = [e for e in run["events"] if e["name"] == "line_crossed"]
    # Walking the line from a (top) to b (bottom), its right-hand side is the screen's
    # left: "in" is leftwards. The first square moves right (out), the second left (in).
    assert sorted(e["direction"] for e in crossed) == ["in", "out"]
    by_direction = {e["direction"]: e for e in crossed}
    first, second = SQUARES
    assert by_direction["out"]["start"] == pytest.approx(first.centre_x_at(W * LINE_X), abs=0.3)
    assert by_direction["in"]["start"] == pytest.approx(second.centre_x_at(W * LINE_X), abs=0.3)
    assert by_direction["out"]["track_id"] != by_direction["in"]["track_id"]
    totals = run["fused"][-1]["lines"]["middle"]
    assert (totals["in_total"], totals["out_total"]) == (1, 1)
    assert sum(r["lines"]["middle"]["in"] for r in run["fused"]) == 1


def test_zone_entries_and_exits_at_the_true_times(run: dict[str, list[dict]]) -> None:
    first, second = SQUARES
    middle = W * LINE_X
    entries = {e["track_id"]: e for e in run["events"] if e["name"] == "zone_enter"}
    exits = {e["track_id"]: e for e in run["events"] if e["name"] == "zone_leave"}
    ids = sorted(entries)
    assert len(ids) == 2 and sorted(exits) == ids
    # The first square starts inside the left half and leaves it through the line; the
    # second comes in through the line and is inside until it disappears.
    truth = [(first.t0, first.centre_x_at(middle)), (second.centre_x_at(middle), second.t1)]
    for track_id, (enter, leave) in zip(ids, truth, strict=True):
        assert entries[track_id]["start"] == pytest.approx(enter, abs=0.3)
        assert exits[track_id]["start"] == pytest.approx(leave, abs=0.3)
        assert exits[track_id]["dwell_s"] == pytest.approx(leave - enter, abs=0.4)
        assert entries[track_id]["zone"] == "left"
    occupied = [r for r in run["fused"] if r["zones"]["left"].get("motion")]
    assert occupied and all(r["zones"]["left"]["motion"] <= 2 for r in occupied)


def test_each_event_has_a_snapshot_file_and_message(run: dict[str, list[dict]]) -> None:
    events = run["events"]
    by_event = {s["event_id"]: s for s in run["snapshots"]}
    assert events and sorted(by_event) == sorted(e["id"] for e in events)
    for event in events:
        snapshot = by_event[event["id"]]
        validate_published(f"snapshot.{event['stream']}", snapshot)
        path = Path(event["snapshot"])
        assert snapshot["path"] == str(path) and path.read_bytes() == snapshot["jpeg"]
        with av.open(str(path)) as jpeg:
            picture = next(jpeg.decode(video=0))
        assert (picture.width, picture.height) == (640, 360)
        assert (
            snapshot["pts"] <= event["start"] + 1e-6
            and event["start"] - snapshot["pts"] < 0.2 + 1e-6
        )
