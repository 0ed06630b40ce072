"""The repo's own kustomize render, for the simple case deploy/kubernetes/ uses: a
kustomization's `resources` (files, or directories with a kustomization of their own)
and `patches` (strategic merge patches by path). Used where no kubectl with a recent
kustomize is installed (Debian's kubernetes-client is 1.20, whose kustomize v2.0.3 does
not know `patches`), and checked against `kubectl kustomize` where one is.

A strategic merge patch, as Kubernetes defines it for these fields: maps merge key by
key; lists of containers, volumes, env, volume mounts and ports merge item by item on
their merge key (name, mountPath, containerPort or port), the patch's items first; any
other list, and any scalar, is replaced. Anything else a kustomization could say is
refused, not ignored.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

KNOWN_FIELDS = {"apiVersion", "kind", "resources", "patches"}
MERGE_KEYS = {
    "containers": ("name",),
    "initContainers": ("name",),
    "volumes": ("name",),
    "env": ("name",),
    "volumeMounts": ("mountPath",),
    "ports": ("containerPort", "port"),
}


class RenderError(Exception):
    pass


def load_all(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def render(directory: Path) -> list[Manifest]:
    """The manifests `kubectl kustomize directory` would print (in file order)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KNOWN_FIELDS
    if unknown:
        raise RenderError(f"{directory}: kustomization fields this render lacks: {unknown}")
    manifests: list[Manifest] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        manifests += render(path) if path.is_dir() else load_all(path)
    for entry in kustomization.get("patches", []):
        if set(entry) != {"path"}:
            raise RenderError(f"{directory}: only patches by path: {entry}")
        for patch in load_all(directory / entry["path"]):
            merge(target(manifests, patch), patch)
    return manifests


def key(manifest: Manifest) -> tuple[str, str]:
    return manifest["kind"], manifest["metadata"]["name"]


def target(manifests: list[Manifest], patch: Manifest) -> Manifest:
    found = [m for m in manifests if key(m) == key(patch)]
    if len(found) != 1:
        raise RenderError(f"patch {key(patch)} matches {len(found)} resources")
    return found[0]


def merge(base: dict[str, Any], patch: dict[str, Any]) -> None:
    for field, value in patch.items():
        current = base.get(field)
        if isinstance(value, dict) and isinstance(current, dict):
            merge(current, value)
        elif isinstance(value, list) and isinstance(current, list) and field in MERGE_KEYS:
            merge_list(current, value, MERGE_KEYS[field])
        else:
            base[field] = copy.deepcopy(value)


def merge_list(base: list[Any], patch: list[Any], keys: tuple[str, ...]) -> None:
    """Items of the patch first, in its order (merged into the base's item of the same
    key, or new), then the base's other items: the order kustomize prints."""
    merged: list[Any] = []
    for item in patch:
        name = next((k for k in keys if k in item), None)
        if name is None:
            raise RenderError(f"list item without a merge key {keys}: {item}")
        same = [b for b in base if b.get(name) == item[name]]
        if same:
            merge(same[0], item)
            base.remove(same[0])
            merged.append(same[0])
        else:
            merged.append(copy.deepcopy(item))
    base[:] = merged + base
