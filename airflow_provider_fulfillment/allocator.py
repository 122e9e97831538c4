"""Cap glibc's malloc arenas before a concurrent read, so a long read's peak RSS stays flat.

glibc gives each thread that allocates its own arena (up to 8 per core) and every arena keeps
what it once held. The paging threads read bodies (~3.4 MB) and cut record bytes in theirs and the
consumer frees them, so each arena sits at its own high-water mark (7-14 MB measured). Their number
follows the paging threads, which follow the concurrency the controller reaches, which grows with
the length of a read: 8 arenas at 100,000 orders, 13-16 at 1,000,000, and the peak RSS with them,
while what Python holds stays at 30-38 MB (benchmarks/README.md, "Memory"). Two arenas keep the
peak flat, at no CPU cost measured.

The cap is process-wide, so it is opt-out: `FULFILLMENT_MALLOC_ARENA_MAX=0` leaves the allocator
alone, a number sets another cap, and glibc's own `MALLOC_ARENA_MAX`, when set, always wins. On
another C library nothing is done. glibc fixes its arena limit once more than 8 arenas exist, so
in a process that already had that many allocating threads the cap changes nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

OPT_OUT_VARIABLE = "FULFILLMENT_MALLOC_ARENA_MAX"
GLIBC_VARIABLE = "MALLOC_ARENA_MAX"
DEFAULT_ARENA_MAX = 2
M_ARENA_MAX = -8  # <malloc.h>

_lock = threading.Lock()
_decided = False
_cap_set: int | None = None


def wanted_arena_cap(environ: Mapping[str, str]) -> int | None:
    """The cap this process asks for, or None: glibc's variable is set, or the opt-out says 0."""
    if environ.get(GLIBC_VARIABLE, "").strip():
        return None  # the deployment chose: glibc read it at start-up
    text = environ.get(OPT_OUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_ARENA_MAX
    try:
        cap = int(text)
    except ValueError:
        log.warning("%s=%r is not a whole number; the allocator is left alone", OPT_OUT_VARIABLE, text)
        return None
    return cap if cap > 0 else None


def glibc_mallopt() -> Callable[[int, int], int] | None:
    """glibc's `mallopt`, or None on another C library (musl, macOS, Windows)."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, ValueError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt


def cap_malloc_arenas() -> int | None:
    """Set the arena cap once per process (glibc only); return the cap set, or None."""
    global _decided, _cap_set
    with _lock:
        if not _decided:
            _decided = True
            cap = wanted_arena_cap(os.environ)
            mallopt = glibc_mallopt() if cap is not None else None
            if mallopt is not None and cap is not None and mallopt(M_ARENA_MAX, cap) == 1:
                _cap_set = cap
                log.debug("malloc arenas capped at %d (%s=0 to leave them alone)", cap, OPT_OUT_VARIABLE)
        return _cap_set
