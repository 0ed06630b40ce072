"""Event snapshots: a JPEG of the frame at an event's start, on disk and on the bus.

tandemd keeps the analysed video frames of each stream (the very buffers it received
from ingest and sent to the workers, not copies) from the earliest time an event could
still start at (the last published window's start less the longest rule duration) to
the newest: at most `ring_frames` of them, ring_frames x width x height x 3 bytes per
video stream. When an event starts, the
frame nearest its start still in the ring is encoded to JPEG with FFmpeg's mjpeg
encoder (PyAV; OpenCV stays out of tandemd), the box of the track that triggered it
drawn on it, written under `<directory>/<stream>/`, and published on
`snapshot.<stream>` as `[topic, header JSON, JPEG bytes]`. The directory holds at most
`max_bytes`: the oldest snapshots are deleted first.
"""

from __future__ import annotations

import logging
import os
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

log = logging.getLogger("snapshots")
BOX_COLOUR = np.array([255, 200, 0], np.uint8)


@dataclass(frozen=True)
class RingFrame:
    pts: float
    payload: Any  # a zmq.Frame (or anything with the buffer protocol) of H x W x 3 RGB
    shape: tuple[int, int, int]

    def image(self) -> npt.NDArray[np.uint8]:
        return np.frombuffer(memoryview(self.payload), np.uint8).reshape(self.shape)


class FrameRing:
    """The last frames of one stream, oldest first."""

    def __init__(self, size: int) -> None:
        self.frames: deque[RingFrame] = deque(maxlen=size)

    def add(self, pts: float, payload: Any, shape: tuple[int, int, int]) -> None:
        self.frames.append(RingFrame(pts, payload, shape))

    def release_before(self, t: float) -> None:
        """Frames before `t` can no longer be an event's start: let them go, but the last
        one before `t` (the picture shown at `t`)."""
        while len(self.frames) > 1 and self.frames[1].pts <= t:
            self.frames.popleft()

    def nearest(self, t: float) -> RingFrame | None:
        """The frame shown at media time `t`: the last one at or before it, else the
        oldest kept (the event started before the ring's reach)."""
        best = None
        for frame in self.frames:
            if frame.pts <= t + 1e-6:
                best = frame
        return best or (self.frames[0] if self.frames else None)


def encode_jpeg(
    image: npt.NDArray[np.uint8], boxes: Sequence[Sequence[float]] = (), quality: int = 85
) -> bytes:
    """RGB H x W x 3 to JPEG bytes, each [x0, y0, x1, y1] box (0..1) outlined."""
    if boxes:
        image = image.copy()
        for box in boxes:
            _outline(image, box)
    h, w = image.shape[:2]
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height = w - w % 2, h - h % 2
    codec.pix_fmt = "yuvj420p"
    codec.time_base = Fraction(1, 25)
    # FFmpeg's qscale: 2 (best) .. 31; from a 1..100 quality as in libjpeg.
    qscale = round(2 + (100 - quality) * 29 / 99)
    codec.options = {"qmin": str(qscale), "qmax": str(qscale)}
    frame = av.VideoFrame.from_ndarray(image[: codec.height, : codec.width], format="rgb24")
    frame = frame.reformat(format="yuvj420p")
    packets = codec.encode(frame) + codec.encode(None)
    return b"".join(bytes(p) for p in packets)


def _outline(image: npt.NDArray[np.uint8], box: Sequence[float], width: int = 2) -> None:
    h, w = image.shape[:2]
    x0, x1 = (min(max(round(v * w), 0), w - 1) for v in (box[0], box[2]))
    y0, y1 = (min(max(round(v * h), 0), h - 1) for v in (box[1], box[3]))
    image[y0 : y0 + width, x0 : x1 + 1] = BOX_COLOUR
    image[max(y1 - width + 1, 0) : y1 + 1, x0 : x1 + 1] = BOX_COLOUR
    image[y0 : y1 + 1, x0 : x0 + width] = BOX_COLOUR
    image[y0 : y1 + 1, max(x1 - width + 1, 0) : x1 + 1] = BOX_COLOUR


class SnapshotStore:
    """JPEG files under one directory, at most `max_bytes` in all, oldest deleted first."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        # What an earlier run left counts against the cap too, oldest first.
        existing = sorted(directory.glob("*/*.jpg"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        self._files: deque[tuple[Path, int]] = deque((p, p.stat().st_size) for p in existing)
        self.total = sum(size for _, size in self._files)
        self.evicted = 0

    def write(self, stream: str, name: str, jpeg: bytes) -> Path | None:
        """Write one snapshot; None when it cannot be (too big for the cap, or the disk
        refused: logged)."""
        if len(jpeg) > self.max_bytes:
            return None
        self._evict(len(jpeg))
        path = self.directory / stream / f"{_safe(name)}.jpg"
        try:
            path.parent.mkdir(exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(jpeg)
            os.replace(tmp, path)  # a reader never sees half a file
        except OSError as exc:
            log.warning("snapshot %s: cannot write: %s", path, exc)
            return None
        self._files.append((path, len(jpeg)))
        self.total += len(jpeg)
        return path

    def _evict(self, incoming: int) -> None:
        while self._files and self.total + incoming > self.max_bytes:
            path, size = self._files.popleft()
            self.total -= size
            self.evicted += 1
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("snapshot %s: cannot delete: %s", path, exc)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class EventSnapshots:
    """The rings of a tandemd's video streams and the snapshot of each event start."""

    def __init__(
        self,
        store: SnapshotStore,
        ring_frames: int,
        quality: int = 85,
        boxes: bool = True,
        events: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.ring_frames = ring_frames
        self.quality = quality
        self.boxes = boxes
        self.events = frozenset(events)
        self.rings: dict[str, FrameRing] = {}

    def add_stream(self, stream: str) -> None:
        self.rings[stream] = FrameRing(self.ring_frames)

    def forget(self, stream: str) -> None:
        self.rings.pop(stream, None)

    def release_before(self, stream: str, t: float) -> None:
        ring = self.rings.get(stream)
        if ring is not None:
            ring.release_before(t)

    def add_frame(self, stream: str, pts: float, payload: Any, shape: Sequence[int]) -> None:
        ring = self.rings.get(stream)
        if ring is not None and len(shape) == 3:
            ring.add(pts, payload, (shape[0], shape[1], shape[2]))

    def take(self, event: dict[str, Any]) -> tuple[dict[str, Any], bytes] | None:
        """For an event that starts now: its snapshot's header and JPEG, the file written
        and its path set in `event`; None when it gets none (no frame, or not wanted)."""
        if event["edge"] not in ("start", "instant"):
            return None
        if self.events and event["name"] not in self.events:
            return None
        ring = self.rings.get(event["stream"])
        frame = ring.nearest(event["start"]) if ring is not None else None
        if frame is None:
            return None
        boxes = [event["box"]] if self.boxes and event.get("box") else []
        jpeg = encode_jpeg(frame.image(), boxes, self.quality)
        path = self.store.write(event["stream"], event["id"], jpeg)
        event["snapshot"] = None if path is None else str(path)
        header = {
            "schema": 1,
            "type": "snapshot",
            "stream": event["stream"],
            "event_id": event["id"],
            "event": event["name"],
            "pts": round(frame.pts, 6),
            "path": event["snapshot"],
            "width": frame.shape[1],
            "height": frame.shape[0],
            "bytes": len(jpeg),
        }
        return header, jpeg
