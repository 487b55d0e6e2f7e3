"""The content codings' levels on a real answer: size against the plain bytes, and CPU.

docs/api/v1.md §10 ("Content codings") explains the gateway's levels with these
figures: each coding and level of CODINGS encodes the 20,000-record answer the
bench just read, in this process, best of RUNS by the thread's CPU time.
Python's own zlib at level 5 (what the gateway used before zlib-ng) and 6 (its
default) are there for reference, and decoding the gateway's gzip answer with
either library, as a gzip request body of that size is.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from typing import Any

from backports import zstd
from zlib_ng import zlib_ng

from gateway import codings

RUNS = 9


def _gzip(module: Any, level: int) -> Callable[[bytes], bytes]:
    def encode(body: bytes) -> bytes:
        compressor = module.compressobj(level, module.DEFLATED, 16 + module.MAX_WBITS)
        return bytes(compressor.compress(body) + compressor.flush())

    return encode


def _zstd(level: int) -> Callable[[bytes], bytes]:
    return lambda body: zstd.compress(body, level=level)


# name -> encoder; "gzip_N" is zlib-ng's, as the gateway's.
CODINGS: dict[str, Callable[[bytes], bytes]] = {
    **{f"gzip_{level}": _gzip(zlib_ng, level) for level in (1, 2, 3, 4, 5, 6)},
    **{f"python_zlib_gzip_{level}": _gzip(zlib, level) for level in (5, 6)},
    **{f"zstd_{level}": _zstd(level) for level in (1, 3)},
}


def _cpu_ms(encode: Callable[[bytes], bytes], body: bytes) -> tuple[float, int]:
    best, size = float("inf"), 0
    for _ in range(RUNS):
        started = time.thread_time()
        size = len(encode(body))
        best = min(best, time.thread_time() - started)
    return best * 1000, size


def _gunzip(module: Any) -> Callable[[bytes], bytes]:
    return lambda coded: bytes(module.decompressobj(16 + module.MAX_WBITS).decompress(coded))


# name -> decoder of the gateway's gzip answer: how fast a gzip request body of its size decodes.
DECODERS: dict[str, Callable[[bytes], bytes]] = {"gunzip": _gunzip(zlib_ng), "python_zlib_gunzip": _gunzip(zlib)}


def measure(body: bytes) -> dict[str, Any]:
    """Each coding's share of the plain size (%) and best CPU (ms) on `body`, the CPU of decoding the
    gateway's gzip of it, and the levels the gateway uses."""
    figures: dict[str, Any] = {
        "plain_bytes": len(body),
        "gateway_levels": {"gzip": codings.GZIP_LEVEL, "zstd": codings.ZSTD_LEVEL},
    }
    for name, encode in CODINGS.items():
        cpu_ms, size = _cpu_ms(encode, body)
        if name.startswith("gzip"):
            assert zlib.decompress(encode(body), 16 + zlib.MAX_WBITS) == body, name
        figures[name] = {"size_percent": round(100 * size / len(body), 2), "cpu_ms": round(cpu_ms, 2)}
    coded = codings.encode(codings.GZIP, body)
    for name, decode in DECODERS.items():
        figures[name] = {"cpu_ms": round(_cpu_ms(decode, coded)[0], 2)}
    return figures
