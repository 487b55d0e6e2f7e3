"""Memory the C allocator holds freed, given back to the system.

glibc's malloc raises its mmap threshold to the size of each large block
freed (up to 32 MiB): from then on blocks of that size come from its heaps,
and stay resident there once freed. After a large PUT's body is decoded and
let go of, `malloc_trim` gives the free pages of every heap back. Fixing the
threshold instead (`mallopt`) would map every large block on its own: in an
A/B run of the bench's ingest (5,000-record PUTs) at 4 MiB it cost a fifth
of the throughput, the engine's blocks among them.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

_libc = ctypes.CDLL(None)
# None where the C library is not glibc: nothing to trim.
_malloc_trim: Callable[[int], int] | None = getattr(_libc, "malloc_trim", None)


def return_freed_memory() -> None:
    if _malloc_trim is not None:
        _malloc_trim(0)
