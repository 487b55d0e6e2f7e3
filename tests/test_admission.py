"""Admission control: PUTs beyond the in-flight body budget are refused at once (503,
Retry-After, 1500) while those admitted are stored whole, within a bounded memory;
per-certificate rate limits answer 429 with Retry-After to the one certificate over it."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.admission import RateLimit
from tests.conftest import Pki, Storecast, assert_error, ok, put, start_storecast, stop_storecast
from tests.helpers import T0

MIB = 1024 * 1024
BUDGET = 128 * MIB
PUTS = 8
# Under the 32 MiB body limit, and four of them within the budget with room for the services' framing.
BODY_BYTES = 31 * MIB
# What the process tree may grow by past the budget. Each admitted byte costs more than one: the
# gateway sends these bodies on in 1 MiB pieces (+30 MiB measured for 124 MiB admitted), the service
# gathers each once, locates its records, decodes them a slice at a time into columns, logs and
# inserts them (+367 MiB): about 3.1 times the admitted bytes in all (docs/operations/admission.md).
# The margin is 4 times the budget.
MARGIN = 4 * BUDGET


def tree_rss(root: int) -> tuple[int, int]:
    """Resident bytes of a process (`serve all`: the services) and of all its descendants (the gateway), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    rss = {}
    pending = [root]
    while pending:
        pid = pending.pop()
        pending += children.get(pid, [])
        try:
            rss[pid] = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            continue
    return rss.get(root, 0), sum(rss.values()) - rss.get(root, 0)


def production_body(equipment_id: int, size: int) -> tuple[bytes, int]:
    """A renewable PUT body of about `size` bytes, one record per second from T0; and its record count."""
    record = b'{"timestamp":%d,"id":%d,"p":%d.25,"q":-1.5}'
    parts, total, n = [], 12, 0
    while total < size:
        part = record % (T0 + n * 1000, equipment_id, n)
        parts.append(part)
        total += len(part) + 1
        n += 1
    return b'{"values":[' + b",".join(parts) + b"]}", n


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory: pytest.TempPathFactory, test_pki: Pki) -> Iterator[Storecast]:
    instance = start_storecast(
        tmp_path_factory.mktemp("admission"),
        test_pki,
        {
            "STORECAST_INFLIGHT_BODY_BYTES": str(BUDGET),
            "STORECAST_INFLIGHT_RECORDS": "10000000",
            "STORECAST_MAX_BODY_BYTES": str(32 * MIB),
            "STORECAST_MAX_RECORDS": "1000000",
            "STORECAST_GRPC_TIMEOUT_S": "180",
            "STORECAST_RATE_LIMIT": "5,10",
        },
    )
    yield instance
    stop_storecast(instance)
    assert instance.process.returncode == 0, instance.log.read_text()


def test_puts_beyond_the_in_flight_budget_are_refused_at_once_and_the_others_stored_whole(budgeted: Storecast) -> None:
    site = 500
    bodies = [production_body(equipment_id, BODY_BYTES) for equipment_id in range(1, PUTS + 1)]
    services, gateway = tree_rss(budgeted.process.pid)
    baseline = services + gateway
    peak, peak_services, peak_gateway = baseline, services, gateway
    sampling = True

    def sample() -> None:
        nonlocal peak, peak_services, peak_gateway
        while sampling:
            services, gateway = tree_rss(budgeted.process.pid)
            peak = max(peak, services + gateway)
            peak_services, peak_gateway = max(peak_services, services), max(peak_gateway, gateway)
            time.sleep(0.05)

    responses: dict[int, tuple[httpx.Response, float]] = {}
    start = threading.Barrier(PUTS)

    def send(equipment_id: int) -> None:
        body = bodies[equipment_id - 1][0]
        with budgeted.client("admin") as client:
            start.wait()
            began = time.monotonic()
            response = client.put(
                f"/v1/{site}/production/renewable", content=body, headers={"content-type": "application/json"}, timeout=300
            )
            responses[equipment_id] = (response, time.monotonic() - began)

    sampler = threading.Thread(target=sample)
    sampler.start()
    senders = [threading.Thread(target=send, args=(equipment_id,)) for equipment_id in range(1, PUTS + 1)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    sampling = False
    sampler.join()

    accepted = sorted(i for i, (response, _) in responses.items() if response.status_code == 201)
    refused = sorted(i for i, (response, _) in responses.items() if response.status_code == 503)
    assert len(accepted) + len(refused) == PUTS, {i: r.status_code for i, (r, _) in responses.items()}
    # 4 × 31 MiB fit in 128 MiB, a fifth does not; all were sent at once and each admitted one takes seconds.
    assert len(accepted) == BUDGET // BODY_BYTES, (accepted, refused)
    slowest_refusal = max(responses[i][1] for i in refused)
    fastest_acceptance = min(responses[i][1] for i in accepted)
    for i in refused:
        response = responses[i][0]
        assert_error(response, 503, 1500, "server error: the server is busy")
        assert response.headers["retry-after"] == "1"
    assert slowest_refusal < fastest_acceptance
    growth = peak - baseline
    print(
        f"\n{len(accepted)} PUTs of {BODY_BYTES / MIB:.0f} MiB admitted, {len(refused)} refused in at most "
        f"{slowest_refusal:.2f} s (first 201 after {fastest_acceptance:.2f} s); process tree RSS {baseline / MIB:.0f} MiB "
        f"before, peak {peak / MIB:.0f} MiB (+{growth / MIB:.0f} MiB; budget {BUDGET / MIB:.0f} MiB, "
        f"margin {MARGIN / MIB:.0f} MiB); "
        f"peaks: services {(peak_services - services) / MIB:+.0f} MiB, gateway {(peak_gateway - gateway) / MIB:+.0f} MiB"
    )
    assert peak < baseline + BUDGET + MARGIN
    # Nothing of a refused PUT is stored; each admitted one is, whole.
    with budgeted.client("reader") as reader:
        for equipment_id in refused:
            assert_error(reader.get(f"/v1/{site}/production/renewable/{equipment_id}"), 400, 1107)
        for equipment_id in accepted:
            count = bodies[equipment_id - 1][1]
            results = ok(reader.get(f"/v1/{site}/production/renewable/{equipment_id}"))["results"]
            assert len(results) == count
            assert results[0] == {"timestamp": T0, "id": equipment_id, "p": 0.25, "q": -1.5}
            assert results[-1] == {"timestamp": T0 + (count - 1) * 1000, "id": equipment_id, "p": count - 1 + 0.25, "q": -1.5}


def test_a_certificate_over_its_rate_limit_gets_429_and_others_do_not(budgeted: Storecast) -> None:
    # STORECAST_RATE_LIMIT=5,10: bursts of 10, then 5 requests/s, per certificate.
    with budgeted.client("admin") as admin:
        ok(put(admin, "/v1/100/production/renewable", [{"timestamp": T0, "id": 1, "p": 1.0}]), 201)
    with budgeted.client("site100") as site100, budgeted.client("reader") as reader:
        answers = [site100.get("/v1/100/production/renewable/1") for _ in range(40)]
        statuses = [response.status_code for response in answers]
        # The burst passes; past it, only what the rate refills.
        assert statuses[:10] == [200] * 10, statuses
        limited = [response for response in answers if response.status_code == 429]
        assert set(statuses) == {200, 429} and len(limited) >= 15, statuses
        for response in limited:
            assert_error(response, 429, 1500, "server error: rate limited", "site100")
            assert response.headers["retry-after"] == "1"
        # Another certificate is not affected.
        for _ in range(5):
            ok(reader.get("/v1/100/production/renewable/1"))
        # Once a token is back the certificate is served again.
        time.sleep(1)
        ok(site100.get("/v1/100/production/renewable/1"))
        # Refusals for identity come first: a certificate that may not write is refused 403, not 429.
        assert_error(put(reader, "/v1/100/production/renewable", [{"timestamp": T0, "id": 1}]), 403, 1400)


def test_rate_limit_setting() -> None:
    assert RateLimit.parse(None) is None and RateLimit.parse("") is None and RateLimit.parse("0") is None
    assert RateLimit.parse("5") == RateLimit(5.0, 5.0)
    assert RateLimit.parse("0.5") == RateLimit(0.5, 1.0)
    assert RateLimit.parse("100,400") == RateLimit(100.0, 400.0)
    for bad in ("fast", "-1", "5,0", "inf", "5,x"):
        with pytest.raises(ValueError, match="STORECAST_RATE_LIMIT"):
            RateLimit.parse(bad)
