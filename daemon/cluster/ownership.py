"""Which shard owns which stream: rendezvous (highest-random-weight) hashing.

Every shard computes the same answer from the same inputs (the stream ids, their pins,
the Ready members), with no coordination: a stream goes to the member with the highest
weight hash(member, stream). When a member joins or leaves, only the streams it wins or
held move (about 1/N of them). A stream pinned to a member (`shard = "..."`) goes there
while that member is Ready, and by the hash among the others while it is not.

Loads are bounded (bounded-load rendezvous): no member takes more than BALANCE times its
fair share (nor more than a configured cap); a stream whose first choice is full goes to
its next. Plain hashing leaves members up to ~25% over their share at 1,000 streams over
7 members; the bound keeps every member within 15% at the cost of a few more moves on a
change. Still deterministic: streams fill in id order, pinned ones first.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping

BALANCE = 1.15  # a member takes at most this times its fair share of the streams


def weight(member: str, stream: str) -> int:
    """A stable 64-bit weight: the same on every shard, every Python, every run."""
    digest = hashlib.blake2b(f"{member}\0{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def ranked(members: Iterable[str], stream: str) -> list[str]:
    """Members in the order `stream` prefers them (highest weight first)."""
    return sorted(members, key=lambda m: (weight(m, stream), m), reverse=True)


def assign(
    streams: Iterable[str],
    members: Iterable[str],
    pins: Mapping[str, str] | None = None,
    cap: int = 0,
) -> dict[str, str | None]:
    """stream -> owning member (None when there is no member, or every one is at its
    `cap`). `cap` 0: no configured limit (the balance bound still holds)."""
    ready = sorted(set(members))
    pins = pins or {}
    load = dict.fromkeys(ready, 0)
    owners: dict[str, str | None] = {}
    # Pinned streams first (they choose no other while their member is up), then the
    # rest in id order, so the bounds fill the same way on every shard.
    ordered = sorted(streams, key=lambda s: (pins.get(s) not in load, s))
    fair = math.ceil(BALANCE * len(ordered) / len(ready)) if ready else 0
    bound = min(cap, fair) if cap else fair
    for stream in ordered:
        pinned = pins.get(stream)
        choices = [pinned] if pinned in load else ranked(ready, stream)
        owner = next((m for m in choices if load[m] < bound), None)
        if owner is None and pinned in load:
            owner = pinned  # a pin is honoured even past the cap
        if owner is not None:
            load[owner] += 1
        owners[stream] = owner
    return owners
