"""The content codings' negotiation and body decoders without a server (gateway/codings.py);
tests/test_codings.py checks them end to end."""

from __future__ import annotations

import gzip
import itertools
import random
from collections.abc import Callable

import pytest
from backports import zstd

from gateway import codings
from storecast.status import ApiFailure, ApiStatus

ENCODERS: dict[str, Callable[[bytes], bytes]] = {"gzip": gzip.compress, "zstd": zstd.compress}


@pytest.mark.parametrize(
    ("accept_encoding", "coding"),
    [
        ("gzip", "gzip"),
        ("GZip", "gzip"),
        ("gzip, deflate", "gzip"),
        ("deflate, gzip, br, zstd", "zstd"),
        ("zstd;q=0.5, gzip", "gzip"),
        ("zstd;q=0.5, gzip;q=0.4", "zstd"),
        ("gzip; q=0.9, zstd ;Q=0.1", "gzip"),
        ("x-gzip;q=0.3", "gzip"),
        ("*", "zstd"),
        ("*;q=0.2, zstd;q=0", "gzip"),
        ("gzip;q=0.5, *;q=0.6", "zstd"),
        ("gzip;q=0", None),
        ("*;q=0", None),
        ("gzip;q=0.5, identity", None),
        ("gzip, identity;q=0.5", "gzip"),
        ("identity", None),
        ("br", None),
        ("", None),
        (",, ;", None),
        # A q value outside RFC 9110's grammar refuses its coding rather than guess.
        ("gzip;q=2", None),
        ("gzip;q=nan", None),
        ("gzip;q=0.0001", None),
        ("zstd;q=abc, gzip", "gzip"),
    ],
)
def test_negotiation(accept_encoding: str, coding: str | None) -> None:
    assert codings.negotiate(accept_encoding) == coding


@pytest.mark.parametrize("coding", ["gzip", "zstd"])
def test_members_and_frames_decode_whatever_the_chunks(coding: str) -> None:
    parts = [b'{"values": [', b"1, 2, 3" * 1000, b"]}"]
    body = b"".join(ENCODERS[coding](part) for part in parts)
    for size in (1, 7, 4096, len(body)):
        decoder = codings.decoder([coding])
        decoded = b"".join(piece for start in range(0, len(body), size) for piece in decoder.feed(body[start : start + size]))
        decoder.finish()
        assert decoded == b"".join(parts)


@pytest.mark.parametrize("coding", ["gzip", "zstd"])
def test_a_bomb_decodes_lazily_in_pieces(coding: str) -> None:
    """Pieces of at most PIECE bytes, decoded only as they are asked for: the reader that counts them stops the bomb."""
    decoded = 64 * codings.PIECE
    bomb = ENCODERS[coding](bytes(decoded))
    assert len(bomb) < decoded // 500
    pieces = codings.decoder([coding]).feed(bomb)
    taken = list(itertools.islice(pieces, 3))
    assert [len(piece) for piece in taken] == [codings.PIECE] * 3
    assert sum(len(piece) for piece in pieces) == decoded - 3 * codings.PIECE


@pytest.mark.parametrize(
    ("content_encoding", "coding"), [([], None), (["identity"], None), (["X-GZIP"], "gzip"), ([" zstd "], "zstd")]
)
def test_codings_taken(content_encoding: list[str], coding: str | None) -> None:
    decoder = codings.decoder(content_encoding)
    assert getattr(decoder, "coding", None) == coding


@pytest.mark.parametrize("content_encoding", [["br"], ["deflate"], ["gzip, zstd"], ["gzip", "gzip"], ["compress"]])
def test_codings_not_served(content_encoding: list[str]) -> None:
    with pytest.raises(codings.UnsupportedCoding) as refused:
        codings.decoder(content_encoding)
    assert refused.value.http_status == 415 and refused.value.code == ApiStatus.INVALID_HEADER


@pytest.mark.parametrize("coding", ["gzip", "zstd"])
def test_bodies_that_do_not_decode(coding: str) -> None:
    body = ENCODERS[coding](b"{}" * 100)
    for bad in (b"", body[:-1], body + b"junk", b"junk" + body):
        decoder = codings.decoder([coding])
        with pytest.raises(ApiFailure) as refused:
            list(decoder.feed(bad))
            decoder.finish()
        assert refused.value.code == ApiStatus.PAYLOAD_ENCODING_ERROR and refused.value.http_status == 400


def test_a_zstd_window_over_8_mib_does_not_decode() -> None:
    """RFC 9659's bound: a decoder of HTTP bodies need not hold more of the past than 8 MiB."""
    body = random.Random(0).randbytes(1 << 20) * 12
    for window_log, decodes in ((23, True), (24, False)):
        coded = zstd.compress(body, options={zstd.CompressionParameter.window_log: window_log})
        decoder = codings.decoder(["zstd"])
        if decodes:
            assert b"".join(decoder.feed(coded)) == body
        else:
            with pytest.raises(ApiFailure, match="too much memory"):
                list(decoder.feed(coded))
