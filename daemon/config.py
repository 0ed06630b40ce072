"""Configuration: one pydantic model per section, validated once at load.

Errors name the file, the key path and the value at fault, in one line.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from daemon.addresses import check_endpoint, check_stream_url
from daemon.config_errors import describe
from daemon.envsubst import UnsetVariableError, expand_tree
from daemon.fusion.rules import EventRule, check_rules
from daemon.fusion.scene import ZONES_ANALYZER
from daemon.fusion.zones import LineConfig, Shape, ZoneConfig
from daemon.wire.vocabulary import MODALITY_OF, Kind
from daemon.workers import analyzers
from daemon.workers.analyzers.specs import DEFAULT_AUDIO
from daemon.workers.gpus import visible_gpus

StreamId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
# A ZeroMQ endpoint ("" where a default applies) and a stream URL, checked at load.
Endpoint = Annotated[str, AfterValidator(lambda e: check_endpoint(e) if e else e)]
StreamUrl = Annotated[str, Field(min_length=1), AfterValidator(check_stream_url)]


class ConfigError(Exception):
    """An invalid config. `str(err)` is one line per problem, each naming the file, the
    key and the problem (daemon/config_errors.py)."""

    def lines(self, prefix: str) -> str:
        """The message with `prefix` before each line, for a command's stderr."""
        return "\n".join(f"{prefix}{line}" for line in str(self).splitlines())


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StreamConfig(_Section):
    id: StreamId
    url: StreamUrl
    format: str | None = None  # FFmpeg input format, e.g. "lavfi"; None = probe
    options: dict[str, str] = Field(default_factory=dict)  # passed to FFmpeg as-is
    mode: Literal["live", "file"] = "live"
    # realtime: emit at the source's own rate; none: as fast as the workers take it.
    # auto: realtime for lavfi generators, none for everything else.
    pace: Literal["auto", "realtime", "none"] = "auto"
    video: bool = True
    audio: bool = True
    fps: float = Field(5.0, gt=0, le=120)
    width: int = Field(640, ge=16, le=7680)
    height: int = Field(360, ge=16, le=4320)
    audio_rate: int = Field(16000, ge=8000, le=192000)
    # Channels the workers get: 1 (default) is FFmpeg's downmix to mono; 2..8 are FFmpeg's
    # standard layouts (stereo, 3.0, quad, 5.0, 5.1, 6.1, 7.1), remixed if the source differs.
    audio_channels: int = Field(1, ge=1, le=8)
    audio_chunk_ms: int = Field(500, ge=20, le=10000)
    # Items of this stream held by tandemd (queued or at a worker) at most; the bound on
    # the stream's memory inside tandemd. Live streams drop their oldest video beyond it.
    queue: int = Field(8, ge=1, le=1024)
    # Live streams: an item older than this (capture to dispatch) is not analysed but
    # dropped as "stale", so a backlog never makes every later result late too.
    latency_objective_ms: int = Field(2000, ge=50, le=600000)
    # When workers cannot keep up, the lowest priority streams lose analysis fps first.
    priority: int = Field(0, ge=-100, le=100)
    # The overload policy never lowers a live stream's analysis fps below this
    # (default: a quarter of `fps`).
    min_fps: float | None = Field(None, gt=0, le=120)
    open_timeout_s: float = Field(10.0, gt=0, le=300)
    read_timeout_s: float = Field(10.0, gt=0, le=300)
    # A second source for the audio (video then comes from `url` only), its format.
    audio_url: StreamUrl | None = None
    audio_format: str | None = None
    keep_aspect: bool = False  # fit inside width x height keeping the aspect (even sides)
    loop: bool = False  # mode = "file": start over at the end, media time carries on
    start_offset_s: float = Field(0.0, ge=0)  # seek here first (files); media time 0 is here
    hwaccel: Literal["none", "cuda"] = "none"  # cuda: NVDEC if a GPU is there, else software
    # "auto": the cores shared out over the video streams, as slice threads (no delay);
    # 1: one single-threaded decoder; 0: FFmpeg's choice (frame threading); N: N threads.
    decode_threads: Annotated[int, Field(ge=0, le=16)] | Literal["auto"] = "auto"
    skip_nonref: bool = True  # don't decode non-reference frames when fps <= source fps / 3
    # A live source is reopened after an error or its end, forever, waiting between
    # attempts an exponential backoff from reconnect_min_s to reconnect_max_s with jitter.
    reconnect_min_s: float = Field(0.5, gt=0, le=60)
    reconnect_max_s: float = Field(30.0, gt=0, le=600)
    stall_timeout_s: float = Field(5.0, gt=0, le=300)  # no media this long: state "stalled"
    # With [cluster]: run this stream on this member (host:port) while it is Ready.
    shard: str | None = None
    # Publish every analysed item's full outputs on `detections.<stream>`.
    detections: bool = True
    # Box analyzers whose boxes are tracked across frames (track ids, zones, lines).
    # None: every configured vision analyzer with a `boxes` output except motion.
    track: list[str] | None = Field(None, max_length=16)
    zones: list[ZoneConfig] = Field(default_factory=list, max_length=64)
    lines: list[LineConfig] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not (self.video or self.audio):
            raise ValueError("video and audio are both false: nothing to analyse")
        if self.loop and self.mode != "file":
            raise ValueError('loop: only for mode = "file" (a live source reconnects anyway)')
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s: larger than reconnect_max_s")
        if self.min_fps is not None and self.min_fps > self.fps:
            raise ValueError(f"min_fps: {self.min_fps} is above fps {self.fps}")
        for kind, shapes in (("zones", self.zones), ("lines", self.lines)):
            names = [shape.name for shape in shapes]
            if len(set(names)) != len(names):
                raise ValueError(f"{kind}: names must be distinct, got {names}")
        return self

    @property
    def effective_pace(self) -> Literal["realtime", "none"]:
        if self.pace == "auto":
            return "realtime" if self.format == "lavfi" else "none"
        return self.pace


class WorkerPoolConfig(_Section):
    # Local worker processes tandemd starts and supervises: a number, "auto" (one per CPU
    # core) or "per_gpu" (one per visible GPU, at least one). Defaults: vision "per_gpu",
    # audio "auto".
    count: Annotated[int, Field(ge=0, le=64)] | Literal["auto", "per_gpu"] = 1
    capacity: int = Field(4, ge=1, le=256)  # items one worker holds at once (its credit)
    analyzers: list[str] = Field(min_length=1)  # defaults per kind, below
    # Of those, the ones that run on a stream only while an event rule's enable_analyzer
    # action has switched them on for it (a cascade: a voice wakes speech recognition).
    on_demand: list[str] = Field(default_factory=list)
    # Per-analyzer options, e.g. [workers.vision.options.motion] pixel_threshold = 30.
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    threads: int = Field(1, ge=1, le=64)  # torch threads per worker process
    # Where model-backed analyzers run: auto (a GPU when present), cpu, cuda, cuda:N.
    # With auto or cuda, local worker n takes GPU n modulo the number of GPUs.
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda|cuda:\d+)$")
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"  # autocast for fp16/bf16
    memory_fraction: float = Field(1.0, gt=0, le=1)  # of its GPU, when workers share one
    compile: bool = False  # torch.compile the models (slow start; measure first)
    # Dynamic batching: a batch goes to the analyzers when max_batch items are there, or
    # max_wait_ms after the oldest arrived. Needs capacity >= max_batch.
    max_batch: int = Field(1, ge=1, le=256)
    max_wait_ms: float = Field(0.0, ge=0, le=10000)
    # Each local worker serves its own /metrics on metrics_port + n; unset: none.
    metrics_port: int | None = Field(None, ge=0, le=65535)

    @model_validator(mode="after")
    def _on_demand_are_configured(self) -> Self:
        for name in self.on_demand:
            if name not in self.analyzers:
                raise ValueError(f"on_demand: {name!r} is not in analyzers")
        return self

    @model_validator(mode="after")
    def _batches_can_fill(self) -> Self:
        if self.max_batch > self.capacity:
            raise ValueError(
                f"max_batch: {self.max_batch} exceeds capacity {self.capacity}: "
                "a worker never holds enough items to fill a batch"
            )
        return self

    @property
    def processes(self) -> int:
        """`count` resolved on this host: "auto" is the CPU cores this process may use,
        "per_gpu" the visible GPUs (at least one)."""
        if self.count == "auto":
            return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        if self.count == "per_gpu":
            return max(visible_gpus(), 1)
        return self.count


class AudioPoolConfig(WorkerPoolConfig):
    # Audio runs on the CPU: by default one single-threaded process per core.
    count: Annotated[int, Field(ge=0, le=64)] | Literal["auto", "per_gpu"] = "auto"
    capacity: int = Field(8, ge=1, le=256)
    analyzers: list[str] = Field(default_factory=lambda: list(DEFAULT_AUDIO), min_length=1)


class VisionPoolConfig(WorkerPoolConfig):
    count: Annotated[int, Field(ge=0, le=64)] | Literal["auto", "per_gpu"] = "per_gpu"
    analyzers: list[str] = Field(default_factory=lambda: ["motion"], min_length=1)


class WorkersConfig(_Section):
    vision: VisionPoolConfig = Field(default_factory=VisionPoolConfig)
    audio: AudioPoolConfig = Field(default_factory=AudioPoolConfig)

    @model_validator(mode="after")
    def _known_analyzers(self) -> Self:
        pools: tuple[tuple[Kind, WorkerPoolConfig], ...] = (
            ("vision", self.vision),
            ("audio", self.audio),
        )
        for kind, pool in pools:
            modality = MODALITY_OF[kind]
            try:
                analyzers.check_names(pool.analyzers, modality)
            except analyzers.UnknownAnalyzerError as exc:
                raise ValueError(f"{kind}.analyzers: {exc}") from None
            for name in pool.options:
                if name not in pool.analyzers:
                    raise ValueError(f"{kind}.options.{name}: {name!r} is not in analyzers")
            for name in pool.analyzers:  # also those with required options and none given
                try:
                    analyzers.validate_options(name, modality, pool.options.get(name, {}))
                except ValueError as exc:
                    raise ValueError(f"{kind}.options.{exc}") from None
        return self


class _Secured(_Section):
    """CurveZMQ for a tcp endpoint: tandemd's secret key and the allowed client keys."""

    curve_secret_key: str = ""  # file written by `tandem keys` (NAME.key_secret)
    curve_allowed_keys: str = ""  # directory of allowed clients' public keys (*.key)
    insecure: bool = False  # allow plain tcp on a non-loopback address

    @property
    def secured(self) -> bool:
        return bool(self.curve_secret_key)

    def _check_security(self, endpoint: str) -> None:
        if bool(self.curve_secret_key) != bool(self.curve_allowed_keys):
            raise ValueError("curve_secret_key and curve_allowed_keys go together")
        if _exposed(endpoint) and not (self.secured or self.insecure):
            raise ValueError(
                f"endpoint {endpoint!r} is reachable from other hosts: set curve_secret_key "
                "and curve_allowed_keys (see `tandem keys`), or insecure = true"
            )


def _exposed(endpoint: str) -> bool:
    """True for a tcp endpoint not bound to a loopback address."""
    if not endpoint.startswith("tcp://"):
        return False
    host = endpoint.removeprefix("tcp://").rsplit(":", 1)[0].strip("[]")
    return not (host == "localhost" or host.startswith("127.") or host == "::1")


class DispatchConfig(_Secured):
    # Where workers connect. Empty: an ipc socket in the runtime directory (local only).
    # A tcp endpoint on a non-loopback address needs CURVE keys (or insecure = true).
    endpoint: Endpoint = ""
    heartbeat_interval_ms: int = Field(1000, ge=50, le=60000)
    heartbeat_liveness: int = Field(3, ge=2, le=100)  # missed heartbeats before a peer is dead
    max_message_bytes: int = Field(64 * 1024 * 1024, ge=1024)

    @model_validator(mode="after")
    def _security(self) -> Self:
        self._check_security(self.endpoint)
        return self


class FusionConfig(_Section):
    window_s: float = Field(1.0, gt=0, le=60)
    # A window is published at the latest this long after the stream moved past it,
    # even if a modality is still missing (the record then says which).
    max_delay_ms: int = Field(500, ge=0, le=60000)
    # Publish a result that arrives after its window went out on `correction.<stream>`
    # (it is counted either way: tandem_results_discarded_total{reason="late"}).
    corrections: bool = False
    # Ceiling on event-rule actions (cascades) started per stream per rolling minute.
    max_actions_per_minute: int = Field(6, ge=0, le=1000)


class PublishConfig(_Secured):
    endpoint: Annotated[Endpoint, Field(min_length=1)] = "tcp://127.0.0.1:7701"
    # Messages queued per subscriber before ZeroMQ drops for that slow subscriber.
    hwm: int = Field(10000, ge=1)

    @model_validator(mode="after")
    def _security(self) -> Self:
        self._check_security(self.endpoint)
        return self


class ControlConfig(_Secured):
    # Request/reply questions to tandemd: `tandem status`, and a late subscriber asking
    # for the events active now. Empty: ipc://<runtime dir>/control.sock (local only).
    endpoint: Endpoint = ""

    @model_validator(mode="after")
    def _security(self) -> Self:
        self._check_security(self.endpoint)
        return self


class MetricsConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(9310, ge=0, le=65535)  # 0 picks a free port (it is logged)


class ClusterConfig(_Section):
    """Several tandemd shards sharing this config, each running the streams it owns
    (daemon/cluster/: rendezvous hashing over the Ready members)."""

    # none: one tandemd runs every stream. static: the members are `peers`. kubernetes:
    # the Ready addresses of a headless Service's EndpointSlices.
    membership: Literal["none", "static", "kubernetes"] = "none"
    # This shard's member name: host:port of its metrics endpoint (which serves /healthz),
    # as the others reach it; e.g. "${POD_IP}:9310" on Kubernetes.
    self_address: str = Field("", alias="self")
    peers: list[str] = Field(default_factory=list, max_length=1024)  # static: host:port each
    probe_interval_s: float = Field(1.0, ge=0.1, le=60)  # how often membership is looked at
    max_streams_per_shard: int = Field(0, ge=0)  # 0: no cap
    kubernetes_service: str = "tandemd"  # the headless Service of the shards
    kubernetes_namespace: str = ""  # empty: the pod's own (its service account's)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.membership != "none" and not self.self_address:
            raise ValueError(f"self: required with membership = {self.membership!r}")
        if self.membership == "static" and not self.peers:
            raise ValueError("peers: required with membership = 'static' (host:port each)")
        for i, member in enumerate([self.self_address, *self.peers]):
            if member and not re.match(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$", member):
                where = "self" if i == 0 else f"peers[{i - 1}]"
                raise ValueError(f"{where}: {member!r} is not host:port")
        return self


class SnapshotsConfig(_Section):
    """A JPEG of the frame at each event's start (daemon/publishing/snapshots.py)."""

    enabled: bool = True
    directory: str = ""  # empty: <runtime_dir>/snapshots
    max_bytes: int = Field(64 * 1024 * 1024, ge=1024)  # the directory's cap, oldest first out
    # Frames kept per video stream to pick from (those an event could still start at):
    # memory at most ring_frames x width x height x 3 per video stream.
    ring_frames: int = Field(32, ge=1, le=256)
    quality: int = Field(85, ge=1, le=100)  # JPEG quality, as libjpeg's 1..100
    boxes: bool = True  # outline the box of the track that triggered a scene event
    events: list[str] = Field(default_factory=list)  # event names; empty: every event


class LogConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    # json: one JSON object per line on stdout (journald, log shippers); text: a human
    # line on stderr; auto: json when stdout is the journal ($JOURNAL_STREAM), else text.
    format: Literal["auto", "json", "text"] = "auto"
    # Seconds between one-line digests of each stream's latest results; 0 turns them off.
    digest_s: float = Field(5.0, ge=0)


class Config(_Section):
    runtime_dir: str = ""  # ipc sockets; empty: $RUNTIME_DIRECTORY, else a private temp dir
    streams: list[StreamConfig] = Field(default_factory=list)
    workers: WorkersConfig = Field(default_factory=WorkersConfig)
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig)
    fusion: FusionConfig = Field(default_factory=FusionConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    control: ControlConfig = Field(default_factory=ControlConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    snapshots: SnapshotsConfig = Field(default_factory=SnapshotsConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    # Event rules over both modalities (daemon/fusion/rules.py, docs/configuration.md).
    events: list[EventRule] = Field(default_factory=list, max_length=256)

    @model_validator(mode="after")
    def _unique_stream_ids(self) -> Self:
        seen: set[str] = set()
        for stream in self.streams:
            if stream.id in seen:
                raise ValueError(f"duplicate stream id {stream.id!r}")
            seen.add(stream.id)
        return self

    @model_validator(mode="after")
    def _cluster_members_reach_metrics(self) -> Self:
        """Members are named by the address of their /healthz, on the metrics port."""
        cluster = self.cluster
        if cluster.membership == "none":
            return self
        if not self.metrics.enabled or self.metrics.port == 0:
            raise ValueError(
                "metrics: a cluster needs each shard's /healthz on a fixed port "
                "(metrics.enabled = true, metrics.port not 0)"
            )
        port = cluster.self_address.rsplit(":", 1)[-1]
        if port != str(self.metrics.port):
            raise ValueError(
                f"cluster.self: {cluster.self_address!r} does not end in the metrics port "
                f"{self.metrics.port}"
            )
        return self

    @model_validator(mode="after")
    def _tracked_analyzers_give_boxes(self) -> Self:
        for i, stream in enumerate(self.streams):
            where = f"streams[{i}](id={stream.id!r})"
            tracked = self.tracked(stream)
            if stream.track is not None:
                for name in stream.track:
                    if name not in tracked:
                        raise ValueError(
                            f"{where}.track: {name!r} is not a vision analyzer with boxes in "
                            f"workers.vision.analyzers ({', '.join(self.box_analyzers())})"
                        )
            named: list[tuple[str, Sequence[Shape]]] = [
                ("zones", stream.zones),
                ("lines", stream.lines),
            ]
            for kind, shapes in named:
                for j, shape in enumerate(shapes):
                    for name in shape.analyzers:
                        if name not in tracked:
                            raise ValueError(
                                f"{where}.{kind}[{j}].analyzers: {name!r} is not tracked on "
                                f"this stream (track = {tracked})"
                            )
                if shapes and not tracked:
                    raise ValueError(
                        f"{where}.{kind}: this stream tracks nothing (no box analyzer in "
                        "workers.vision.analyzers, or track = [])"
                    )
        return self

    def box_analyzers(self) -> list[str]:
        """The configured vision analyzers whose outputs include `boxes`."""
        return [
            name
            for name in self.workers.vision.analyzers
            if "boxes" in analyzers.spec_for(name, "video").outputs
        ]

    def tracked(self, stream: StreamConfig) -> list[str]:
        """The analyzers whose boxes are tracked on `stream`."""
        if not stream.video:
            return []
        boxes = self.box_analyzers()
        if stream.track is None:
            return [name for name in boxes if name != "motion"]
        return [name for name in stream.track if name in boxes]

    @model_validator(mode="after")
    def _rules_name_configured_analyzers(self) -> Self:
        configured: dict[str, dict[str, str]] = {}
        on_demand: set[str] = set()
        for kind, modality in (("vision", "video"), ("audio", "audio")):
            pool = getattr(self.workers, kind)
            for name in pool.analyzers:
                spec = analyzers.spec_for(name, modality)  # type: ignore[arg-type]
                configured[name] = dict(spec.outputs)
            on_demand.update(pool.on_demand)
        zones = {f"{z.name}.*": "integer" for s in self.streams for z in s.zones}
        if zones:
            configured[ZONES_ANALYZER] = zones
        check_rules(self.events, configured, on_demand)
        return self


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config, raising ConfigError with a one-line message."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(raw, source=str(path))


def parse_config(
    raw: dict[str, Any], source: str = "<config>", environ: Mapping[str, str] | None = None
) -> Config:
    """Validate a parsed config; `${NAME}` in strings is read from `environ` (the
    process's environment by default) first."""
    try:
        raw = expand_tree(raw, os.environ if environ is None else environ)
    except UnsetVariableError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe(exc, raw, source, Config)) from exc
