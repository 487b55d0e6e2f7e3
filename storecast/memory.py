"""The C allocator's thresholds, and memory it holds freed given back to the system.

glibc's malloc maps a block of 128 KiB or more on its own, and gives back the
top of a heap once 128 KiB of it is free. It raises both thresholds (up to
32 MiB and 64 MiB) only as mapped blocks are freed. A 5,000-record PUT allocates and frees some 5 MB of blocks
(its body, the message around it, its table of values, its log entry), so
their pages kept coming fresh from the kernel: about 1,200 page faults per PUT
in the services. With both thresholds at 32 MiB from the start
(`reuse_freed_blocks`), 290, and a 1 MB gRPC call between two processes takes
1.1 ms instead of 3.5 (docs/architecture/data-paths.md).

What that keeps is at most 32 MiB free at the top of each heap. Once a large
PUT's body is decoded and let go of, `return_freed_memory` gives the free
pages of every heap back at once. Lowering the mmap threshold instead would
map every large block on its own: at 4 MiB it cost a fifth of the bench's
ingest throughput, the engine's blocks among them.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

_libc = ctypes.CDLL(None)
# None where the C library is not glibc.
_malloc_trim: Callable[[int], int] | None = getattr(_libc, "malloc_trim", None)
_mallopt: Callable[[int, int], int] | None = getattr(_libc, "mallopt", None)
# glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
REUSED_BLOCK_BYTES = 32 << 20


def reuse_freed_blocks() -> None:
    """Both thresholds at REUSED_BLOCK_BYTES, before the process allocates its large blocks."""
    if _mallopt is not None:
        _mallopt(_M_MMAP_THRESHOLD, REUSED_BLOCK_BYTES)
        _mallopt(_M_TRIM_THRESHOLD, REUSED_BLOCK_BYTES)


def return_freed_memory() -> None:
    if _malloc_trim is not None:
        _malloc_trim(0)
