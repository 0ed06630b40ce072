"""Heap tuning for processes that pass frames around: reuse freed frame buffers.

ZeroMQ allocates a new buffer for every message it receives. glibc serves blocks over
its mmap threshold (128 KiB at start, a 360p RGB frame is 675 KiB) with a fresh mmap
and returns them with munmap, and trims the heap top back to the kernel at 128 KiB
free: either way every frame's pages are faulted in and zeroed again. That costs more
than the copy off the socket (bench/transport.py: tcp throughput of 720p frames to a
worker rose by about a quarter). So blocks up to 32 MiB come from the heap, and up to
`KEEP_FREE_BYTES` of freed heap stay mapped for the next frames: the price is at most
that much extra resident memory per heap arena of a process.

The same processes also keep the cyclic garbage collector off what they built at start
(`freeze_startup_objects`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger("tandem")

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's own ceiling for its dynamic threshold
KEEP_FREE_BYTES = 128 << 20


def keep_frame_buffers() -> bool:
    """Tune glibc's malloc (no-op elsewhere, e.g. musl); True when it took."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    took = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, KEEP_FREE_BYTES)
    )
    if not took:
        log.debug("mallopt refused the frame buffer settings; using the allocator's defaults")
    return took


def freeze_startup_objects() -> None:
    """Take every object alive now out of the cyclic garbage collector's scans.

    What a process built to start (torch, the models, pydantic's schemas: about 200,000
    objects in a worker) lives as long as the process. A full collection walks all of it,
    and under a frame stream one runs every few seconds: about 50 ms each in a worker
    with no model, a stall no item's latency should carry, and a few percent of its CPU.
    Call once, after start-up and warm-up: what is frozen is never collected.
    """
    gc.collect()  # what start-up left as garbage goes now, not frozen with the rest
    gc.freeze()
