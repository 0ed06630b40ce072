"""Rendezvous hashing: balanced, stable, and moving little when members come and go."""

from __future__ import annotations

from collections import Counter

import pytest

from daemon.cluster.ownership import assign, weight

STREAMS = [f"cam-{i:04d}" for i in range(1000)]


def shards(n: int) -> list[str]:
    return [f"10.0.0.{i + 1}:9310" for i in range(n)]


@pytest.mark.parametrize("n", range(3, 11))
def test_balanced_within_20_percent(n: int) -> None:
    load = Counter(assign(STREAMS, shards(n)).values())
    assert set(load) == set(shards(n))
    fair = len(STREAMS) / n
    assert all(abs(count - fair) <= 0.2 * fair for count in load.values()), load


@pytest.mark.parametrize("n", range(3, 11))
def test_a_join_or_a_leave_moves_at_most_1_2_over_n(n: int) -> None:
    before = assign(STREAMS, shards(n))
    joined = assign(STREAMS, shards(n + 1))
    moved = [s for s in STREAMS if before[s] != joined[s]]
    assert len(moved) <= 1.2 * len(STREAMS) / (n + 1)
    newcomer = shards(n + 1)[-1]  # what moves goes to the newcomer, but for a few
    assert sum(joined[s] == newcomer for s in moved) >= 0.9 * len(moved)
    gone = shards(n)[0]
    left = assign(STREAMS, [m for m in shards(n) if m != gone])
    moved = [s for s in STREAMS if before[s] != left[s]]
    assert len(moved) <= 1.2 * len(STREAMS) / n
    assert sum(before[s] == gone for s in moved) >= 0.9 * len(moved)


def test_every_shard_computes_the_same_owners_in_any_order() -> None:
    members = shards(5)
    assert assign(STREAMS, members) == assign(reversed(STREAMS), list(reversed(members)))
    assert weight("a:1", "s") == weight("a:1", "s") != weight("a:1", "t")


def test_pins_and_caps() -> None:
    members = shards(3)
    pins = {"cam-0001": members[2], "cam-0002": "10.9.9.9:9310"}  # the second is down
    owners = assign(STREAMS[:30], members, pins, cap=10)
    assert owners["cam-0001"] == members[2]
    assert owners["cam-0002"] in members  # its member is not ready: hashed elsewhere
    assert Counter(owners.values()) == Counter(dict.fromkeys(members, 10))
    full = assign(STREAMS[:40], members, cap=10)
    assert list(full.values()).count(None) == 10  # every shard at its cap: owned by none
    assert assign(STREAMS[:5], []) == dict.fromkeys(STREAMS[:5])
