"""deploy/kubernetes/ and the Containerfile: the kustomize base and overlay render (the
repo's own render, checked against `kubectl kustomize` where a kubectl with a recent
kustomize is installed), every manifest passes `kubernetes-validate --strict`, the
custom resources their schemas in the repo, the KEDA trigger's PromQL promtool, and the
parts agree with each other and with tandem: names, labels and selectors, ports, the
shared config (loaded as tandemd loads it), the worker containers' command lines."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from daemon.config import Config, parse_config
from daemon.workers.launch import WorkerLaunch
from tests.conftest import ROOT
from tests.support.kustomize import Manifest, key, render
from tests.test_dashboards import _metric_names

DEPLOY = ROOT / "deploy" / "kubernetes"
BASE = DEPLOY / "base"
OVERLAY = DEPLOY / "overlays" / "remote-workers"
SCHEMAS = {
    "ScaledObject": DEPLOY / "schemas" / "scaledobject.schema.json",
    "PodMonitor": DEPLOY / "schemas" / "podmonitor.schema.json",
}
KUBECTL = shutil.which("kubectl")
PROMTOOL = shutil.which("promtool")
POD_IP = "10.1.2.3"
DRAIN_BOUND_S = 15  # tandemd's stop: systemd's TimeoutStopSec, the bound it is held to


def one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind and name in (None, m["metadata"]["name"])]
    assert len(found) == 1, (kind, name, [key(m) for m in manifests])
    return found[0]


def containers(manifest: Manifest) -> dict[str, Any]:
    return {c["name"]: c for c in manifest["spec"]["template"]["spec"]["containers"]}


def shard_config(manifests: list[Manifest]) -> Config:
    """The ConfigMap's config.toml, loaded as tandemd loads it in the pod."""
    text = one(manifests, "ConfigMap", "tandemd-config")["data"]["config.toml"]
    return parse_config(tomllib.loads(text), "config.toml", {"POD_IP": POD_IP})


@pytest.fixture(scope="module", params=["base", "remote-workers"])
def rendered(request: pytest.FixtureRequest) -> list[Manifest]:
    return render(BASE if request.param == "base" else OVERLAY)


def kustomize_version() -> tuple[int, ...] | None:
    if KUBECTL is None:
        return None
    out = subprocess.run([KUBECTL, "version", "--client"], capture_output=True, text=True)
    found = re.search(r"Kustomize Version: v(\d+)\.(\d+)", out.stdout)
    return tuple(int(n) for n in found.groups()) if found else None


@pytest.mark.skipif(
    (kustomize_version() or (0,)) < (4,),
    reason="no kubectl with kustomize >= v4 (Debian's kubernetes-client 1.20 has v2.0.3): "
    "the repo's own render is checked alone",
)
@pytest.mark.parametrize("directory", [BASE, OVERLAY], ids=["base", "remote-workers"])
def test_the_render_is_what_kubectl_kustomize_renders(directory: Path) -> None:
    assert KUBECTL is not None
    out = subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    theirs = [m for m in yaml.safe_load_all(out.stdout) if m]
    assert sorted(render(directory), key=key) == sorted(theirs, key=key)


def test_every_manifest_passes_kubernetes_validate_strict(rendered: list[Manifest]) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate not installed (requirements.txt)"
    )
    builtin = [m for m in rendered if m["kind"] not in SCHEMAS]
    assert {"StatefulSet", "Service", "PodDisruptionBudget", "Role"} <= {m["kind"] for m in builtin}
    for manifest in builtin:
        version = kubernetes_validate.latest_version()
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{key(manifest)}: {exc.message} at {list(exc.path)}")


def test_custom_resources_pass_the_schemas_kept_in_the_repo(rendered: list[Manifest]) -> None:
    custom = [m for m in rendered if m["kind"] in SCHEMAS]
    assert "PodMonitor" in {m["kind"] for m in custom}
    for manifest in custom:
        schema = json.loads(SCHEMAS[manifest["kind"]].read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.validate(manifest, schema, cls=jsonschema.Draft202012Validator)
    scaled = one(render(OVERLAY), "ScaledObject")
    broken = json.loads(json.dumps(scaled))
    broken["spec"]["triggers"][0]["metadata"]["threshold"] = 8  # KEDA wants strings
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json.loads(SCHEMAS["ScaledObject"].read_text()))


def trigger_query() -> str:
    scaled = one(render(OVERLAY), "ScaledObject")
    (trigger,) = scaled["spec"]["triggers"]
    return str(trigger["metadata"]["query"])


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (scripts/system-deps)")
def test_the_trigger_query_is_valid_promql(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    rules = {"groups": [{"name": "keda", "rules": [{"record": "keda:t", "expr": trigger_query()}]}]}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    out = subprocess.run(
        [PROMTOOL, "check", "rules", "rules.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_trigger_counts_vision_work_waiting_for_a_worker() -> None:
    query = trigger_query()
    assert set(re.findall(r"\btandem_\w+", query)) == {"tandem_items_queued"}
    assert "tandem_items_queued" in _metric_names()  # a metric tandemd defines
    assert 'kind="vision"' in query and 'job="tandemd"' in query  # the PodMonitor's job


def test_names_labels_and_selectors_agree(rendered: list[Manifest]) -> None:
    shards = one(rendered, "StatefulSet", "tandemd")
    pod = shards["spec"]["template"]
    labels = pod["metadata"]["labels"]
    service = one(rendered, "Service", shards["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"  # headless: its EndpointSlices are members
    for selector in (
        shards["spec"]["selector"]["matchLabels"],
        service["spec"]["selector"],
        one(rendered, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one(rendered, "PodMonitor")["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    monitor = one(rendered, "PodMonitor")
    assert labels[monitor["spec"]["jobLabel"]] == "tandemd"  # job="tandemd", as alerts.yml
    named = {p["name"] for c in containers(shards).values() for p in c.get("ports", [])}
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= named
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= named
    for manifest in (m for m in rendered if m["kind"] in ("StatefulSet", "Deployment")):
        spec = manifest["spec"]["template"]["spec"]
        assert manifest["spec"]["selector"]["matchLabels"].items() <= (
            manifest["spec"]["template"]["metadata"]["labels"].items()
        )
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            assert {m["name"] for m in container.get("volumeMounts", [])} <= volumes.keys()
        for volume in volumes.values():
            if "configMap" in volume:
                one(rendered, "ConfigMap", volume["configMap"]["name"])


def test_rbac_lets_the_shards_read_their_endpointslices(rendered: list[Manifest]) -> None:
    shards = one(rendered, "StatefulSet", "tandemd")
    account = one(
        rendered, "ServiceAccount", shards["spec"]["template"]["spec"]["serviceAccountName"]
    )
    binding = one(rendered, "RoleBinding")
    role = one(rendered, "Role", binding["roleRef"]["name"])
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"]}]
    (rule,) = role["rules"]
    assert rule["apiGroups"] == ["discovery.k8s.io"] and rule["resources"] == ["endpointslices"]
    assert set(rule["verbs"]) == {"get", "list", "watch"}


def test_the_shared_config_loads_and_names_this_pod(rendered: list[Manifest]) -> None:
    config = shard_config(rendered)
    shards = one(rendered, "StatefulSet", "tandemd")
    tandemd = containers(shards)["tandemd"]
    assert config.cluster.membership == "kubernetes"
    assert config.cluster.kubernetes_service == shards["spec"]["serviceName"]
    assert config.cluster.self_address == f"{POD_IP}:{config.metrics.port}"
    env = {e["name"]: e for e in tandemd["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    ports = {p["name"]: p["containerPort"] for p in tandemd["ports"]}
    assert ports["metrics"] == config.metrics.port and config.metrics.host == "0.0.0.0"
    assert ports["results"] == int(config.publish.endpoint.rsplit(":", 1)[1])
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert tandemd[probe]["httpGet"] == {"path": path, "port": "metrics"}
    mounts = {m["mountPath"] for m in tandemd["volumeMounts"]}
    assert config.runtime_dir in mounts
    assert config.workers.vision.count == 0 and config.workers.audio.count == 0


def test_the_worker_containers_run_the_configs_workers(rendered: list[Manifest]) -> None:
    """The vision and audio containers are [workers.*] of the config, and connect to
    tandemd's dispatch socket: ipc on the shared emptyDir, or tcp + CURVE on loopback."""
    config = shard_config(rendered)
    pod = containers(one(rendered, "StatefulSet", "tandemd"))
    endpoint = config.dispatch.endpoint or f"ipc://{config.runtime_dir}/workers.sock"
    endpoint = endpoint.replace("0.0.0.0", "127.0.0.1")
    for kind, pool in (("vision", config.workers.vision), ("audio", config.workers.audio)):
        container = pod[kind]
        assert container["command"] == ["/opt/tandem/.venv/bin/tandem", "worker"]
        launch = WorkerLaunch.parse(container["args"])
        assert (launch.kind, launch.endpoint, launch.capacity) == (kind, endpoint, pool.capacity)
        assert launch.analyzers == tuple(pool.analyzers) and launch.options == pool.options
        assert bool(launch.key) == config.dispatch.secured
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert config.runtime_dir in mounts
        for path in (launch.key, launch.server_key):
            assert path is None or str(Path(path).parent) in mounts
        gpus = container["resources"]["limits"].get("nvidia.com/gpu")
        assert gpus == (1 if kind == "vision" else None)
    assert "nvidia.com/gpu" not in pod["tandemd"]["resources"]["limits"]


def test_stopping_a_shard_fits_its_grace_period(rendered: list[Manifest]) -> None:
    shards = one(rendered, "StatefulSet", "tandemd")
    grace = shards["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    pod = containers(shards)
    hand_over = pod["tandemd"]["lifecycle"]["preStop"]["exec"]["command"]
    assert hand_over[0] == "sleep"
    config = shard_config(rendered)
    assert int(hand_over[1]) >= 3 * config.cluster.probe_interval_s  # others took over
    assert grace >= int(hand_over[1]) + DRAIN_BOUND_S + 10
    for kind in ("vision", "audio"):  # workers wait for tandemd to be gone, within grace
        script = pod[kind]["lifecycle"]["preStop"]["exec"]["command"][-1]
        assert "127.0.0.1:9310/healthz" in script
        bound = re.search(r"time\.monotonic\(\) \+ (\d+)", script)
        assert bound, script
        wait = int(bound[1])
        assert int(hand_over[1]) + DRAIN_BOUND_S < wait <= grace - 5


def test_the_overlay_changes_dispatch_alone_and_adds_scaled_remote_workers() -> None:
    base, overlay = render(BASE), render(OVERLAY)
    before, after = shard_config(base), shard_config(overlay)
    assert before.model_copy(update={"dispatch": after.dispatch}) == after
    assert after.dispatch.secured and after.dispatch.endpoint == "tcp://0.0.0.0:7710"
    service = one(overlay, "Service", "tandemd")
    dispatch_port = {p["name"]: p["port"] for p in service["spec"]["ports"]}["dispatch"]
    workers = one(overlay, "Deployment", "tandem-vision-worker")
    scaled = one(overlay, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == workers["metadata"]["name"]
    (vision,) = workers["spec"]["template"]["spec"]["containers"]
    launch = WorkerLaunch.parse(vision["args"])
    assert launch.endpoint == f"tcp://{service['metadata']['name']}:{dispatch_port}"
    assert launch.kind == "vision" and launch.key and launch.server_key
    assert launch.analyzers == tuple(after.workers.vision.analyzers)
    assert vision["resources"]["limits"]["nvidia.com/gpu"] == 1
    secrets = {
        item["key"]
        for m in (workers, one(overlay, "StatefulSet"))
        for v in m["spec"]["template"]["spec"]["volumes"]
        if "secret" in v
        for item in v["secret"]["items"]
    }
    # `tandem keys DIR tandemd` and `tandem keys DIR worker` write exactly these.
    assert secrets == {"tandemd.key", "tandemd.key_secret", "worker.key", "worker.key_secret"}


def test_the_containerfile_installs_tandem_the_way_the_readme_does() -> None:
    text = (ROOT / "Containerfile").read_text()
    stamp = re.search(r"^STAMP := \$\(VENV\)/(\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert stamp and f"make .venv/{stamp[1]}" in text  # the Makefile's install target
    assert "-r requirements.txt" in text
    workdir = re.search(r"^WORKDIR (\S+)$", text, re.M)
    assert workdir and workdir[1] == "/opt/tandem"
    for sources in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for source in sources.split():
            assert (ROOT / source).exists(), source
    user = re.search(r"^USER (\d+):(\d+)$", text, re.M)
    for manifests in (render(BASE), render(OVERLAY)):
        for m in (m for m in manifests if m["kind"] in ("StatefulSet", "Deployment")):
            spec = m["spec"]["template"]["spec"]
            assert user and spec["securityContext"]["runAsUser"] == int(user[1])
            for container in spec["containers"]:
                assert container["command"][0].startswith(f"{workdir[1]}/.venv/bin/")


def test_the_proxy_subscribes_to_every_shard(rendered: list[Manifest]) -> None:
    shards = one(rendered, "StatefulSet", "tandemd")
    port = int(shard_config(rendered).publish.endpoint.rsplit(":", 1)[1])
    proxy = one(rendered, "Deployment", "tandem-proxy")
    (container,) = proxy["spec"]["template"]["spec"]["containers"]
    assert container["command"][-1] == "proxy"
    endpoints = [a.removeprefix("--endpoint=") for a in container["args"] if "--endpoint=" in a]
    name, service = shards["metadata"]["name"], shards["spec"]["serviceName"]
    replicas = shards["spec"]["replicas"]
    assert endpoints == [f"tcp://{name}-{n}.{service}:{port}" for n in range(replicas)]
    bind = next(a for a in container["args"] if a.startswith("--bind="))
    results = one(rendered, "Service", "tandem-results")
    assert (
        results["spec"]["selector"].items()
        <= proxy["spec"]["template"]["metadata"]["labels"].items()
    )
    assert bind == f"--bind=tcp://0.0.0.0:{results['spec']['ports'][0]['port']}"
