"""daemon/runtime/allocator.py: what start-up built stays out of the garbage collector's scans,
and what start-up left as garbage is collected first, not frozen with it."""

from __future__ import annotations

import gc
import weakref

from daemon.runtime.allocator import freeze_startup_objects


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_startup_objects_are_frozen_and_startup_garbage_is_not() -> None:
    kept = _Node()  # alive at start-up: frozen
    cycle = _Node()
    cycle.other = _Node()
    cycle.other.other = cycle  # garbage only the cyclic collector can free
    gone = weakref.ref(cycle)
    del cycle
    try:
        freeze_startup_objects()
        assert gone() is None, "start-up's cyclic garbage was frozen instead of collected"
        assert gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects()), "a start-up object is still scanned"
    finally:
        gc.unfreeze()  # the rest of the test session runs with a normal collector
