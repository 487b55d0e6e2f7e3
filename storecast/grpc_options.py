"""gRPC arguments every storecast channel and server shares.

gRPC reads a connection 8 KiB at a time at first and grows its reads slowly,
so a 1 MB message (a 5,000-record PUT) takes hundreds of reads and event-loop
wakeups. Reads of at least 1 MiB took a 1 MB call over a Unix socket between
two processes from 4.4 to 3.2 ms, and the bench's bulk JSON ingest from about
250,000 to 280,000 records/s. A small call's read fills only the pages it
receives: a 100-byte call took 0.47 ms either way.
"""

from __future__ import annotations

LARGE_READS: list[tuple[str, int]] = [
    ("grpc.experimental.tcp_read_chunk_size", 4 << 20),
    ("grpc.experimental.tcp_min_read_chunk_size", 1 << 20),
    ("grpc.experimental.tcp_max_read_chunk_size", 16 << 20),
]
