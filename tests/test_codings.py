"""HTTP content codings on every path (docs/api/v1.md §10), through the real gateway over TLS.

Answers come in gzip or zstd as Accept-Encoding asks, and standard clients (httpx for gzip,
requests/urllib3 for zstd, curl for both) decode them to the very bytes of the plain answer;
PUT bodies (and /ext/influx's line protocol) in gzip or zstd are stored as the plain ones; a bomb,
a body that does not decode and a coding not served are refused, with nothing stored.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import requests
from backports import zstd

from gateway.codings import MINIMUM_SIZE
from gateway.ext_routing import INFLUX_WRITE_V1, INFLUX_WRITE_V2
from tests.conftest import MAX_BODY_BYTES, MAX_RECORDS, Storecast, assert_error, ok, put
from tests.helpers import MINUTE, T0, JsonObject
from tests.test_memory import peak_growth

MiB = 1024 * 1024
DECODERS: dict[str, Callable[[bytes], bytes]] = {"gzip": gzip.decompress, "zstd": zstd.decompress}
CURL = shutil.which("curl")


def gzipped(body: bytes) -> bytes:
    return gzip.compress(body, mtime=0)


def zstd_compressed(body: bytes) -> bytes:
    """With the frame's checksum, which zstd leaves out by default: a corrupt body then never decodes."""
    return zstd.compress(body, options={zstd.CompressionParameter.checksum_flag: 1})


ENCODERS: dict[str, Callable[[bytes], bytes]] = {"gzip": gzipped, "zstd": zstd_compressed}


def raw_get(client: httpx.Client, url: str, accept_encoding: str, **params: str | int) -> tuple[httpx.Headers, bytes]:
    """The headers and the bytes received, not decoded."""
    with client.stream("GET", url, params=params, headers={"accept-encoding": accept_encoding}) as response:
        assert response.status_code in (200, 206), response.read()
        return response.headers, b"".join(response.iter_raw())


@pytest.fixture(scope="module")
def session(storecast: Storecast) -> Iterator[requests.Session]:
    """requests, whose urllib3 asks for and decodes gzip and zstd."""
    with requests.Session() as client:
        client.cert = storecast.pki.cert("admin")
        client.verify = str(storecast.pki.ca)
        # Else REQUESTS_CA_BUNDLE from the environment would win over the test CA.
        client.trust_env = False
        yield client


def curl(storecast: Storecast, tmp_path: Path, url: str, *options: str) -> tuple[dict[str, str], bytes]:
    """`curl --compressed` as the admin: the response's headers and its body, decoded by curl."""
    assert CURL is not None
    cert, key = storecast.pki.cert("admin")
    head, body = tmp_path / "head", tmp_path / "body"
    arguments = ["--compressed", "--cert", cert, "--key", key, "--cacert", str(storecast.pki.ca), "-D", str(head)]
    subprocess.run([CURL, "-sS", *arguments, "-o", str(body), *options, storecast.base_url + url], check=True, timeout=60)
    lines = head.read_text().splitlines()[1:]
    return {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines if line)}, body.read_bytes()


# ---- the data each category's read returns ---------------------------------------------------


def meter(site: int, spacing_ms: int = MINUTE, count: int = 300) -> list[JsonObject]:
    return [
        {"timestamp": T0 + i * spacing_ms, "id": 1, "p": 1000 + i * 0.5, "q": i % 7 * 1.25, "f": 50.0, "u": 230.1, "i": 4.0}
        for i in range(count)
    ]


def periods(count: int, attribute: str) -> list[JsonObject]:
    return [{"timestamp": T0 + i * 15 * MINUTE, attribute: 100 + i * 0.25} for i in range(count)]


def store_production(admin: httpx.Client, site: int) -> tuple[str, dict[str, str | int]]:
    ok(put(admin, f"/v1/{site}/production/meter", meter(site)), 201)
    return f"/v1/{site}/production/meter/1", {}


def store_aggregated(admin: httpx.Client, site: int) -> tuple[str, dict[str, str | int]]:
    ok(put(admin, f"/v1/{site}/production/meter", meter(site, spacing_ms=20_000, count=900)), 201)
    return f"/v1/{site}/production/meter/1", {"from": T0, "to": T0 + 300 * MINUTE, "agg": "avg", "period": "1m"}


def store_forecast(admin: httpx.Client, site: int) -> tuple[str, dict[str, str | int]]:
    vector = {"id": 1, "creation_timestamp": T0, "values": [{**p, "quality": 1} for p in periods(200, "p")]}
    ok(put(admin, f"/v1/{site}/forecast/solar", [vector]), 201)
    return f"/v1/{site}/forecast/solar/1", {}


def store_commitment(admin: httpx.Client, site: int) -> tuple[str, dict[str, str | int]]:
    ok(
        put(
            admin, f"/v1/{site}/commitment", [{"id": 1, "creation_timestamp": T0, "quality": 2, "values": periods(200, "value")}]
        ),
        201,
    )
    return f"/v1/{site}/commitment/1", {}


def store_tariff(admin: httpx.Client, site: int) -> tuple[str, dict[str, str | int]]:
    entries = [
        {"id": 1, "values": [{**p, "label": "peak" if i % 2 else "off-peak"} for i, p in enumerate(periods(200, "value"))]}
    ]
    ok(put(admin, f"/v1/{site}/tariff", entries), 201)
    return f"/v1/{site}/tariff/1", {}


READS = {
    "production": store_production,
    "aggregated": store_aggregated,
    "forecast": store_forecast,
    "commitment": store_commitment,
    "tariff": store_tariff,
}


# ---- answers --------------------------------------------------------------------------------


@pytest.mark.parametrize("read", READS)
def test_every_read_comes_encoded_as_asked_and_decodes_to_the_plain_answer(
    storecast: Storecast, admin: httpx.Client, session: requests.Session, site: int, read: str, tmp_path: Path
) -> None:
    url, params = READS[read](admin, site)
    plain = admin.get(url, params=params, headers={"accept-encoding": "identity"})
    assert ok(plain)["results"]
    assert "content-encoding" not in plain.headers and int(plain.headers["content-length"]) == len(plain.content) > MINIMUM_SIZE
    assert plain.headers["vary"] == "Accept-Encoding"
    for coding, decode in DECODERS.items():
        headers, received = raw_get(admin, url, coding, **params)
        assert headers["content-encoding"] == coding and headers["vary"] == "Accept-Encoding"
        assert int(headers["content-length"]) == len(received) < len(plain.content) / 3
        assert decode(received) == plain.content
    # Standard clients ask for a coding and decode it themselves.
    by_httpx = admin.get(url, params=params)
    assert by_httpx.headers["content-encoding"] == "gzip" and by_httpx.content == plain.content
    by_requests = session.get(storecast.base_url + url, params=params)
    assert by_requests.headers["content-encoding"] == "zstd" and by_requests.content == plain.content
    if CURL is not None:
        query = str(httpx.QueryParams(params))
        target = f"{url}?{query}" if query else url
        for accept, coding in ((None, "zstd"), ("gzip", "gzip")):
            options = ("-H", f"Accept-Encoding: {accept}") if accept else ()
            headers_seen, body = curl(storecast, tmp_path, target, *options)
            assert headers_seen["content-encoding"] == coding and body == plain.content


def test_a_partial_answer_comes_encoded_too(admin: httpx.Client, site: int) -> None:
    ok(put(admin, f"/v1/{site}/production/meter", meter(site, count=MAX_RECORDS + 1)), 201)
    plain = admin.get(f"/v1/{site}/production/meter/1", headers={"accept-encoding": "identity"})
    assert ok(plain, 206)["next_from"] == T0 + MAX_RECORDS * MINUTE
    headers, received = raw_get(admin, f"/v1/{site}/production/meter/1", "gzip")
    assert headers["content-encoding"] == "gzip" and gzip.decompress(received) == plain.content


@pytest.mark.parametrize(
    ("accept_encoding", "coding"),
    [
        ("gzip, deflate, br, zstd", "zstd"),  # a browser's: a tie goes to zstd
        ("gzip;q=1, zstd;q=0.5", "gzip"),
        ("x-gzip", "gzip"),
        ("*", "zstd"),
        ("br, deflate", None),
        ("zstd;q=0, gzip;q=0", None),
        ("gzip;q=0.5, identity", None),
        ("", None),
    ],
)
def test_the_coding_follows_the_q_values(storecast: Storecast, accept_encoding: str, coding: str | None) -> None:
    with storecast.client(None) as anyone:
        headers, received = raw_get(anyone, "/openapi.json", accept_encoding)
        assert headers["vary"] == "Accept-Encoding" and headers.get("content-encoding") == coding
        plain = anyone.get("/openapi.json", headers={"accept-encoding": "identity"}).content
        assert (DECODERS[coding](received) if coding else received) == plain


def test_every_path_encodes_and_head_says_what_get_would(storecast: Storecast, admin: httpx.Client) -> None:
    with storecast.client(None) as anyone:
        for client, url in ((admin, "/ext/v1/catalog"), (admin, "/console/js/main.js"), (anyone, "/openapi.json")):
            plain = client.get(url, headers={"accept-encoding": "identity"})
            assert plain.status_code == 200 and len(plain.content) > MINIMUM_SIZE
            for coding, decode in DECODERS.items():
                headers, received = raw_get(client, url, coding)
                assert headers["content-encoding"] == coding and decode(received) == plain.content
                head = client.head(url, headers={"accept-encoding": coding})
                assert head.status_code == 200 and head.content == b""
                for name in ("content-encoding", "content-length", "vary", "content-type", "etag"):
                    assert head.headers.get(name) == headers.get(name), name


def test_small_answers_are_not_encoded(admin: httpx.Client, site: int) -> None:
    ok(put(admin, f"/v1/{site}/production/meter", meter(site, count=2)), 201)
    small = admin.get(f"/v1/{site}/production/meter/1", headers={"accept-encoding": "gzip, zstd"})
    assert len(ok(small)["results"]) == 2 and len(small.content) < MINIMUM_SIZE
    assert "content-encoding" not in small.headers and small.headers["vary"] == "Accept-Encoding"
    assert int(small.headers["content-length"]) == len(small.content)
    refused = admin.get(f"/v1/{site}/production/meter/2", headers={"accept-encoding": "gzip"})
    assert_error(refused, 400, 1107)
    assert "content-encoding" not in refused.headers


def test_console_files_keep_their_validators(admin: httpx.Client) -> None:
    """Encoded, a file's ETag is weak (its bytes depend on the coding); either form revalidates to a 304."""
    url = "/console/js/main.js"
    plain = admin.get(url, headers={"accept-encoding": "identity"})
    strong = plain.headers["etag"]
    assert plain.status_code == 200 and not strong.startswith("W/")
    encoded = admin.get(url, headers={"accept-encoding": "gzip"})
    assert encoded.headers["content-encoding"] == "gzip" and encoded.content == plain.content
    assert encoded.headers["etag"] == f"W/{strong}"
    for accept_encoding, tag, answered_tag in (
        ("gzip", encoded.headers["etag"], f"W/{strong}"),
        ("zstd", strong, f"W/{strong}"),
        ("identity", strong, strong),
        ("identity", f"W/{strong}", strong),
    ):
        unchanged = admin.get(url, headers={"accept-encoding": accept_encoding, "if-none-match": tag})
        assert unchanged.status_code == 304 and unchanged.content == b""
        assert unchanged.headers["etag"] == answered_tag and unchanged.headers["vary"] == "Accept-Encoding"
        assert "content-encoding" not in unchanged.headers
        head = admin.head(url, headers={"accept-encoding": accept_encoding, "if-none-match": tag})
        assert head.status_code == 304
    changed = admin.get(url, headers={"accept-encoding": "gzip", "if-none-match": '"something else"'})
    assert changed.status_code == 200 and changed.content == plain.content


# ---- request bodies -------------------------------------------------------------------------


def body_of(records: list[JsonObject]) -> bytes:
    return httpx.Request("PUT", "/", json={"values": records}).read()


@pytest.mark.parametrize("coding", ["gzip", "zstd", "x-gzip"])
def test_a_coded_put_is_stored_as_the_plain_one(admin: httpx.Client, site: int, coding: str) -> None:
    records = meter(site)
    plain_site, coded_site, chunked_site = site, site + 1_000_000, site + 2_000_000
    ok(put(admin, f"/v1/{plain_site}/production/meter", records), 201)
    coded = ENCODERS["gzip" if coding == "x-gzip" else coding](body_of(records))
    headers = {"content-type": "application/json", "content-encoding": coding}
    ok(admin.put(f"/v1/{coded_site}/production/meter", content=coded, headers=headers), 201)
    # Without a Content-Length, in chunks that cut the coding anywhere.
    chunks = [coded[i : i + 100] for i in range(0, len(coded), 100)]
    ok(admin.put(f"/v1/{chunked_site}/production/meter", content=iter(chunks), headers=headers), 201)
    stored = [
        admin.get(f"/v1/{s}/production/meter/1", headers={"accept-encoding": "identity"}).content
        for s in (plain_site, coded_site, chunked_site)
    ]
    assert stored[0] == stored[1] == stored[2]
    assert ok(admin.get(f"/v1/{coded_site}/production/meter/1"))["results"] == records


def test_a_body_of_several_gzip_members_or_zstd_frames_is_one_body(admin: httpx.Client, site: int) -> None:
    records = meter(site)
    body = body_of(records)
    half = len(body) // 2
    for coding, encode in ENCODERS.items():
        coded = encode(body[:half]) + encode(body[half:])
        headers = {"content-type": "application/json", "content-encoding": coding}
        ok(admin.put(f"/v1/{site}/production/meter", content=coded, headers=headers), 201)
        assert ok(admin.get(f"/v1/{site}/production/meter/1"))["results"] == records


def zstd_bomb(size: int) -> bytes:
    """`size` zero bytes in zstd: about 32 bytes a MiB."""
    compressor, chunk = zstd.ZstdCompressor(level=1), bytes(MiB)
    return b"".join([*(compressor.compress(chunk) for _ in range(size // MiB)), compressor.flush()])


def gzip_bomb(records: int) -> bytes:
    """A PUT body of `records` copies of one record in gzip: valid, were it not too large once decoded."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    record = b'{"timestamp":%d,"id":1,"p":1.5},' % T0
    parts = [compressor.compress(b'{"values":[')]
    parts += [compressor.compress(record * 1000) for _ in range(records // 1000)]
    parts += [compressor.compress(record[:-1] + b"]}"), compressor.flush()]
    return b"".join(parts)


def test_a_bomb_is_stopped_at_the_limit_and_nothing_is_stored(storecast: Storecast, admin: httpx.Client, site: int) -> None:
    valid_bomb = gzip_bomb(MAX_BODY_BYTES // 30)
    assert len(valid_bomb) < 32 * 1024 and len(gzip.decompress(valid_bomb)) > MAX_BODY_BYTES
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    refused = admin.put(f"/v1/{site}/production/meter", content=valid_bomb, headers=headers)
    assert_error(refused, 413, 1303, f"larger than {MAX_BODY_BYTES} bytes once decoded")
    assert_error(admin.get(f"/v1/{site}/production/meter/1"), 400, 1107)
    # 1 GiB of zeros in 32 KiB: decoded no further than the limit, so the memory of the
    # gateway and its services grows by about the limit, not by the GiB.
    bomb = zstd_bomb(1024 * MiB)
    assert len(bomb) < 64 * 1024
    zstd_headers = {**headers, "content-encoding": "zstd"}
    response, growth = peak_growth(
        storecast.process.pid, lambda: admin.put(f"/v1/{site}/production/meter", content=bomb, headers=zstd_headers)
    )
    print(f"\na zstd bomb of {len(bomb)} bytes (1 GiB decoded): peak RSS growth {growth / MiB:.1f} MiB")
    assert_error(response, 413, 1303, "once decoded")
    assert growth < 64 * MiB
    assert_error(admin.get(f"/v1/{site}/production/meter/1"), 400, 1107)


@pytest.mark.parametrize("coding", ["gzip", "zstd"])
def test_a_body_that_does_not_decode_is_1301(admin: httpx.Client, site: int, coding: str) -> None:
    body = ENCODERS[coding](body_of(meter(site)))
    headers = {"content-type": "application/json", "content-encoding": coding}
    corrupt = body[:20] + bytes(b ^ 0xFF for b in body[20:40]) + body[40:]
    for bad, why in ((b"not coded at all", ""), (corrupt, ""), (body[:-4], "truncated"), (b"", "truncated")):
        assert_error(
            admin.put(f"/v1/{site}/production/meter", content=bad, headers=headers), 400, 1301, f"decode as {coding}", why
        )
    # Garbage after a complete member or frame.
    assert_error(admin.put(f"/v1/{site}/production/meter", content=body + b"junk", headers=headers), 400, 1301)
    assert_error(admin.get(f"/v1/{site}/production/meter/1"), 400, 1107)


@pytest.mark.parametrize("content_encoding", ["br", "deflate", "compress", "gzip, zstd", "gzip, gzip"])
def test_a_coding_not_served_is_415(admin: httpx.Client, site: int, content_encoding: str) -> None:
    headers = {"content-type": "application/json", "content-encoding": content_encoding}
    refused = admin.put(f"/v1/{site}/production/meter", content=gzipped(body_of(meter(site))), headers=headers)
    assert_error(refused, 415, 1103, f"Content-Encoding {content_encoding!r} is not served")
    assert refused.headers["accept-encoding"] == "zstd, gzip"
    assert_error(admin.get(f"/v1/{site}/production/meter/1"), 400, 1107)


def test_identity_is_no_coding(admin: httpx.Client, site: int) -> None:
    headers = {"content-type": "application/json", "content-encoding": "identity"}
    ok(admin.put(f"/v1/{site}/production/meter", content=body_of(meter(site)), headers=headers), 201)


def test_the_v1_checks_come_first(admin: httpx.Client, site: int) -> None:
    """A coding not served is checked after the query string and the Content-Type, before the body's size."""
    url = f"/v1/{site}/production/meter"
    br = {"content-encoding": "br", "content-type": "application/json"}
    assert_error(admin.put(url, params={"x": 1}, content=b"{}", headers=br), 400, 1200)
    assert_error(admin.put(url, content=b"{}", headers={**br, "content-type": "text/plain"}), 400, 1103, "Content-Type")
    assert_error(admin.put(url, content=b" " * (MAX_BODY_BYTES + 1), headers=br), 415, 1103)
    oversized = admin.put(url, content=b" " * (MAX_BODY_BYTES + 1), headers={**br, "content-encoding": "gzip"})
    assert_error(oversized, 413, 1303, f"larger than {MAX_BODY_BYTES} bytes")


@pytest.mark.parametrize(("path", "site_parameter"), [(INFLUX_WRITE_V1, "db"), (INFLUX_WRITE_V2, "bucket")])
def test_coded_line_protocol_is_decoded_too(admin: httpx.Client, site: int, path: str, site_parameter: str) -> None:
    """/ext/influx reads its body as /v1 does: Telegraf's gzip is decoded, with Influx's answers to what is refused."""
    lines = b"\n".join(b"meter,id=1,host=edge p=%d.5,q=1 %d" % (i, T0 + i * MINUTE) for i in range(300))
    codings: dict[str, Callable[[bytes], bytes]] = {"identity": lambda body: body, **ENCODERS}
    stored = []
    for offset, (coding, encode) in enumerate(codings.items()):
        written = site + offset * 1_000_000
        params: dict[str, str | int] = {site_parameter: written, "precision": "ms"}
        response = admin.post(path, params=params, content=encode(lines), headers={"content-encoding": coding})
        assert response.status_code == 204, response.text
        stored.append(admin.get(f"/v1/{written}/production/meter/1", headers={"accept-encoding": "identity"}))
    assert len(ok(stored[0])["results"]) == 300 and stored[0].content == stored[1].content == stored[2].content
    params = {site_parameter: site + 3_000_000}
    refused = admin.post(path, params=params, content=gzipped(lines), headers={"content-encoding": "br"})
    assert refused.status_code == 415 and refused.headers["accept-encoding"] == "zstd, gzip"
    assert "Content-Encoding 'br' is not served" in refused.json()["error"]
    if path == INFLUX_WRITE_V2:
        assert refused.json()["code"] == "unsupported media type"
    corrupt = admin.post(path, params=params, content=gzipped(lines)[:-8], headers={"content-encoding": "gzip"})
    assert corrupt.status_code == 400 and "does not decode as gzip" in corrupt.json()["error"]
    bomb = admin.post(path, params=params, content=zstd_bomb(64 * MiB), headers={"content-encoding": "zstd"})
    assert bomb.status_code == 413 and "once decoded" in bomb.json()["error"]
    assert_error(admin.get(f"/v1/{site + 3_000_000}/production/meter/1"), 400, 1107)
