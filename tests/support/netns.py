"""Test hosts in network namespaces: each a namespace with a veth link to this host.

Only addresses inside 10.213.0.0/16 on links these helpers create are used, and they are
removed afterwards. Needs root (CAP_NET_ADMIN) and iproute2; callers skip otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class TestHost:
    namespace: str
    address: str  # the namespace's own address
    gateway: str  # this host's address on the link

    def command(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *argv]


def netns_available() -> str | None:
    """None when test hosts can be made here, else the reason they cannot."""
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"tndprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], check=False)
    return None


def make_host(index: int) -> TestHost:
    tag = f"{os.getpid() % 10000}x{index}"
    ns, here, there = f"tnd{tag}", f"tndh{tag}", f"tndn{tag}"
    subnet = f"10.213.{index}"
    for cmd in (
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", here, "type", "veth", "peer", "name", there],
        ["ip", "link", "set", there, "netns", ns],
        ["ip", "addr", "add", f"{subnet}.1/24", "dev", here],
        ["ip", "link", "set", here, "up"],
        ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{subnet}.2/24", "dev", there],
        ["ip", "netns", "exec", ns, "ip", "link", "set", there, "up"],
        ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
    ):
        subprocess.run(cmd, check=True, capture_output=True)
    return TestHost(ns, f"{subnet}.2", f"{subnet}.1")


def remove_host(host: TestHost) -> None:
    # Deleting the namespace deletes its end of the veth pair, and with it ours.
    subprocess.run(["ip", "netns", "del", host.namespace], check=False, capture_output=True)
