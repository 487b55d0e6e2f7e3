"""The web console (gateway/console) in a real browser: Debian's Chromium driven by Playwright,
presenting the test PKI's client certificates, against the session's `storecast serve all`.

The data goes in through the API first: four hours of 1 Hz production, a solar forecast with
seven vintages, a commitment with two, two tariffs. Each view is then read back from the page:
what it plots is compared with what the API answers, and the requests the page makes are
watched (Playwright sees each one) to check that the chart's aggregation period follows the zoom
and that the vintage slider asks for the vintage it shows.

Screenshots go to .dev/artifacts/console/ (printed); with STORECAST_UPDATE_SCREENSHOTS=1 the
README's copies in gateway/console/screenshots/ are replaced too.
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, Response, sync_playwright

from storecast.dev_pki import DEV_P12_PASSWORD
from tests.conftest import Storecast, assert_error, ok, put
from tests.helpers import HOUR, MINUTE, JsonObject

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / ".dev" / "artifacts" / "console"
README_SCREENSHOTS = REPO / "gateway" / "console" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# A site of its own, outside the range the `site` fixture hands out; site 100 is the one the
# "site100" certificate may read.
SITE = 4_200_000_001
LIMITED_SITE = 100
DAY = 24 * HOUR
START = 1_782_028_800_000  # 2026-06-21 08:00 UTC
HOURS = 4
END = START + HOURS * HOUR
STEP = 15 * MINUTE
VINTAGES = [START + k * HOUR for k in range(-4, 3)]
COMMITMENT_VINTAGES = [START - 2 * HOUR, START]


def pv_kw(t: int) -> float:
    """A clear-sky-like morning ramp to noon, 0 before 06:00 UTC."""
    hours = (t - START) / HOUR + 8
    return round(max(0.0, 800 * math.sin(math.pi * (hours - 6) / 12)), 3)


def load_kw(t: int) -> float:
    return round(300 + 40 * math.sin((t - START) / (7 * MINUTE)), 3)


def forecast_kw(t: int, created: int) -> float:
    """A forecast whose error grows with the horizon, so that every vintage says something else."""
    return round(pv_kw(t) * (1 + 0.04 * (t - created) / HOUR), 3)


def production_records() -> tuple[list[JsonObject], list[JsonObject]]:
    pv, meter = [], []
    for t in range(START, END, 1000):
        wobble = 15 * math.sin(t / 9_000)
        pv.append({"timestamp": t, "id": 1, "p": round(pv_kw(t) + wobble, 3), "q": 0.0})
        meter.append(
            {
                "timestamp": t,
                "id": 3,
                "p": round(load_kw(t) - pv_kw(t) - wobble, 3),
                "q": 25.0,
                "f": 50.0,
                "u": 230.0,
                "i": round(abs(load_kw(t) - pv_kw(t)) / 0.69, 3),
            }
        )
    return pv, meter


def battery_records() -> list[JsonObject]:
    """A battery going idle: its last record's powers are a negative zero and a negative that rounds to zero."""
    records: list[JsonObject] = [
        {"timestamp": t, "id": 2, "soc": 60.0, "p": round(-200 * (END - t) / (HOURS * HOUR), 3), "q": 5.0}
        for t in range(START, END - MINUTE, MINUTE)
    ]
    return [*records, {"timestamp": END - MINUTE, "id": 2, "soc": 60.0, "p": -0.0, "q": -0.0004}]


def forecast_vector(created: int) -> JsonObject:
    first = max(START, -(-created // STEP) * STEP)
    periods = [{"timestamp": t, "p": forecast_kw(t, created), "quality": 1} for t in range(first, END, STEP)]
    return {"creation_timestamp": created, "id": 1, "values": periods}


@pytest.fixture(scope="module")
def console_data(storecast: Storecast, admin: httpx.Client) -> None:
    pv, meter = production_records()
    for start in range(0, len(pv), 3600):
        ok(put(admin, f"/v1/{SITE}/production/renewable", pv[start : start + 3600]), 201)
        ok(put(admin, f"/v1/{SITE}/production/meter", meter[start : start + 3600]), 201)
    ok(put(admin, f"/v1/{SITE}/forecast/solar", [forecast_vector(created) for created in VINTAGES]), 201)
    commitments = [
        {
            "creation_timestamp": created,
            "id": 1,
            "quality": quality,
            "values": [
                {"timestamp": t, "value": round(0.9 * forecast_kw(t, created), 1)} for t in range(START, END, 30 * MINUTE)
            ],
        }
        for quality, created in enumerate(COMMITMENT_VINTAGES, start=1)
    ]
    ok(put(admin, f"/v1/{SITE}/commitment", commitments), 201)
    tariffs = [
        {
            "id": 1,
            "values": [
                {"timestamp": START - HOUR, "label": "off-peak", "value": 5.2},
                {"timestamp": START + HOUR, "label": "on-peak", "value": 9.85},
                {"timestamp": START + 3 * HOUR, "label": "off-peak", "value": 5.2},
            ],
        },
        {
            "id": 2,
            "values": [
                {"timestamp": START - HOUR, "label": "standard", "value": 7.1},
                {"timestamp": START + 2 * HOUR, "label": "peak", "value": 12.0},
            ],
        },
    ]
    ok(put(admin, f"/v1/{SITE}/tariff", tariffs), 201)
    ok(put(admin, f"/v1/{SITE}/production/battery", battery_records()), 201)
    ok(put(admin, f"/v1/{LIMITED_SITE}/production/renewable", [{"timestamp": START, "id": 1, "p": 1.0}]), 201)


# --- the browser ----------------------------------------------------------------------------


@dataclass
class Console:
    """A page of the console with what it asked for and any error it logged."""

    page: Page
    context: BrowserContext
    base_url: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def open(self, hash_path: str) -> None:
        """The console loaded afresh at this view (a new hash alone would keep the page, and its last view's state)."""
        self.page.goto("about:blank")
        self.page.goto(f"{self.base_url}/console/#{hash_path}")
        self.page.wait_for_selector("body[data-view=ready]")

    def queries(self, path_part: str) -> list[dict[str, str]]:
        """The query strings of the API requests whose path contains `path_part`, in order."""
        found = []
        for url in self.requests:
            parts = urlsplit(url)
            if path_part in parts.path:
                found.append({name: values[-1] for name, values in parse_qs(parts.query).items()})
        return found

    def wait_until(self, condition: str, timeout_s: float = 30) -> None:
        """Until the JavaScript expression is true. Polled from here: Playwright's own wait_for_function
        evaluates its predicate with eval() inside the page, which the console's CSP forbids."""
        deadline = time.monotonic() + timeout_s
        while not self.page.evaluate(f"() => Boolean({condition})"):
            if time.monotonic() > deadline:
                raise AssertionError(f"not true within {timeout_s} s: {condition}; page errors: {self.errors}")
            time.sleep(0.1)

    def chart_data(self, selector: str = "#chart") -> list[list[Any]]:
        data: list[list[Any]] = self.page.eval_on_selector(selector, "element => element.uplot.data.map(c => Array.from(c))")
        return data

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        if os.environ.get("STORECAST_UPDATE_SCREENSHOTS") == "1":
            README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, README_SCREENSHOTS / path.name)
        return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (make test installs it: `make chromium`)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


def open_console(browser: Browser, storecast: Storecast, name: str, color_scheme: str = "light") -> Console:
    cert, key = storecast.pki.cert(name)
    context = browser.new_context(
        client_certificates=[{"origin": storecast.base_url, "certPath": cert, "keyPath": key}],
        # The server's certificate is the test CA's, which this browser profile does not trust.
        ignore_https_errors=True,
        viewport={"width": 1280, "height": 860},
        color_scheme=color_scheme,  # type: ignore[arg-type]
        timezone_id="Europe/Paris",
    )
    page = context.new_page()
    console = Console(page, context, storecast.base_url)

    def seen(request: Request) -> None:
        if "/v1/" in request.url:
            console.requests.append(request.url)

    def logged(message: ConsoleMessage) -> None:
        if message.type == "error":
            console.errors.append(message.text)

    page.on("request", seen)
    page.on("console", logged)
    page.on("pageerror", lambda error: console.errors.append(str(error)))
    return console


@pytest.fixture
def admin_console(browser: Browser, storecast: Storecast, console_data: None) -> Iterator[Console]:
    console = open_console(browser, storecast, "admin")
    yield console
    console.context.close()
    # A Content-Security-Policy refusal, a failed import or an uncaught error all land here.
    assert console.errors == []


# --- the files ------------------------------------------------------------------------------


def test_console_files_go_to_known_certificates_only(storecast: Storecast) -> None:
    with storecast.client("admin") as admin:
        redirect = admin.get("/console", follow_redirects=False)
        assert redirect.status_code == 308 and redirect.headers["location"] == "/console/"
        index = admin.get("/console/")
        assert index.status_code == 200
        assert index.headers["content-type"] == "text/html; charset=utf-8"
        assert index.headers["cache-control"] == "private, no-cache"
        assert "script-src 'self'" in index.headers["content-security-policy"]
        assert '<script type="module" src="js/main.js">' in index.text
        script = admin.get("/console/js/main.js")
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert admin.get("/console/console.css").headers["content-type"] == "text/css; charset=utf-8"
        uplot = admin.get("/console/vendor/uPlot.iife.min.js")
        assert uplot.status_code == 200, "uPlot is not vendored: make vendor"
        assert uplot.content.startswith(b"/*! https://github.com/leeoniya/uPlot")
        unchanged = admin.get("/console/js/main.js", headers={"if-none-match": script.headers["etag"]})
        assert unchanged.status_code == 304 and unchanged.content == b""
        assert admin.head("/console/").status_code == 200
        assert_error(admin.get("/console/secrets.py"), 404, 1101)
        assert_error(admin.get("/console/__init__.py"), 404, 1101)
        assert_error(admin.put("/console/index.html", content=b"x"), 405, 1102)
    for name in ("stranger", None):
        with storecast.client(name) as client:
            assert_error(client.get("/console/"), 403, 1400, "may not use the console")
            assert_error(client.get("/console/js/main.js"), 403, 1400)


def test_the_browser_reads_files_and_answers_encoded(admin_console: Console) -> None:
    """Chromium asks for zstd over HTTPS (docs/api/v1.md §10): the page's files and the API's larger
    answers come in it, and the page decodes them (the fixture fails on any page error)."""
    codings: dict[str, str | None] = {}

    def received(response: Response) -> None:
        codings.setdefault(urlsplit(response.url).path, response.headers.get("content-encoding"))

    admin_console.page.on("response", received)
    admin_console.open(f"/{SITE}/production/meter/3?attr=p")
    admin_console.wait_until("document.querySelector('#chart')?.uplot")
    # Playwright reports responses asynchronously: the chart may be drawn before its answers are reported.
    deadline = time.monotonic() + 10
    while "zstd" not in {coding for path, coding in codings.items() if path.startswith("/v1/")}:
        assert time.monotonic() < deadline, codings
        admin_console.page.wait_for_timeout(100)
    assert codings["/console/vendor/uPlot.iife.min.js"] == "zstd" and codings["/console/js/main.js"] == "zstd"


def test_serve_all_prints_the_console_address(storecast: Storecast) -> None:
    port = storecast.base_url.rsplit(":", 1)[1]
    assert f"web console: https://localhost:{port}/console/" in storecast.log.read_text()


def test_pki_writes_the_admin_certificate_for_browsers(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "storecast", "pki", "--out", str(tmp_path), "--permissions", str(tmp_path / "permissions.yaml")],
        check=True,
        capture_output=True,
    )
    key, certificate, extra = pkcs12.load_key_and_certificates((tmp_path / "admin.p12").read_bytes(), DEV_P12_PASSWORD.encode())
    assert certificate is not None and key is not None
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    assert certificate == x509.load_pem_x509_certificate((tmp_path / "admin.cert.pem").read_bytes())
    assert [ca.subject for ca in extra] == [x509.load_pem_x509_certificate((tmp_path / "ca.cert.pem").read_bytes()).subject]
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates((tmp_path / "admin.p12").read_bytes(), b"wrong")


# --- the views ------------------------------------------------------------------------------


def test_site_picker_and_overview(admin_console: Console, admin: httpx.Client) -> None:
    console = admin_console
    console.open("/")
    sites = console.page.locator("#sites a").all_inner_texts()
    assert f"Site {SITE}" in sites and f"Site {LIMITED_SITE}" in sites
    console.page.click(f"#sites a[data-site='{SITE}']")
    console.page.wait_for_selector("body[data-view=ready]")
    assert console.page.url.endswith(f"#/{SITE}")
    # Every equipment with its latest values (the last record, as the API has it) and a sparkline.
    console.wait_until("document.querySelectorAll('#equipment .sparkline canvas').length === 3")
    for equipment, (path, last) in {
        "meter:3": (f"/v1/{SITE}/production/meter/3", END - 1000),
        "renewable:1": (f"/v1/{SITE}/production/renewable/1", END - 1000),
    }.items():
        [record] = ok(admin.get(path, params={"from": last, "to": last + 1}))["results"]
        shown = console.page.locator(f"[data-equipment='{equipment}'] dd[data-attribute='p']").inner_text()
        assert shown == f"{record['p']:,.3f}".rstrip("0").rstrip(".") + " kW"
        sparkline = console.page.eval_on_selector(f"[data-equipment='{equipment}'] .sparkline", "e => e.uplot.data[1].length")
        assert sparkline > 10
    # A negative zero, and a negative that rounds to zero, show as 0: a sign says which way power flows.
    [battery] = ok(admin.get(f"/v1/{SITE}/production/battery/2", params={"from": END - MINUTE, "to": END}))["results"]
    assert math.copysign(1, battery["p"]) == -1 and battery["q"] == -0.0004, battery
    card = console.page.locator("[data-equipment='battery:2']")
    assert card.locator("dd[data-attribute='p']").inner_text() == "0 kW"
    assert card.locator("dd[data-attribute='q']").inner_text() == "0 kvar"
    assert card.locator("dd[data-attribute='soc']").inner_text() == "60 %"
    assert console.page.locator("a", has_text="solar 1").count() == 1
    assert console.page.locator("a", has_text="commitment 1").count() == 1
    assert console.page.locator("a", has_text="Tariff timeline").count() == 1
    console.screenshot("overview")


def test_equipment_chart_period_follows_the_zoom(admin_console: Console) -> None:
    console = admin_console
    console.open(f"/{SITE}/production/meter/3?attr=p")
    plan = console.page.locator("#plan")
    # Four hours in at most 1000 buckets: 14.4 s each, the next nice period is 30 s.
    console.wait_until("document.querySelector('#plan').dataset.period === '30s'")
    assert {query["period"] for query in console.queries("/production/meter/3") if "agg" in query} == {"30s"}
    assert {query["agg"] for query in console.queries("/production/meter/3")} == {"avg", "min", "max"}
    data = console.chart_data()
    assert 450 <= len(data[0]) <= 481 and all(low <= high for low, high in zip(data[2], data[3]) if low is not None)
    console.screenshot("equipment")

    # Drag across an eighth of the plot (30 minutes): 1.8 s per bucket, so 2 s.
    box = console.page.locator("#chart .u-over").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    console.page.mouse.move(box["x"] + box["width"] * 0.25, y)
    console.page.mouse.down()
    console.page.mouse.move(box["x"] + box["width"] * 0.375, y, steps=5)
    console.page.mouse.up()
    console.wait_until("document.querySelector('#plan').dataset.period === '2s'")
    periods = [query["period"] for query in console.queries("/production/meter/3") if "period" in query]
    assert periods[-1] == "2s"
    hash_query = parse_qs(urlsplit(console.page.url).fragment.split("?", 1)[1])
    span = int(hash_query["to"][0]) - int(hash_query["from"][0])
    assert 25 * MINUTE < span < 35 * MINUTE

    # Zoomed in further, the range holds few records: they come raw, without agg or period.
    before = len(console.requests)
    console.page.keyboard.press("+")
    console.wait_until("document.querySelector('#plan').dataset.period === 'raw'")
    raw = console.queries("/production/meter/3")[-1]
    assert len(console.requests) > before and "agg" not in raw and "period" not in raw
    assert plan.inner_text().startswith("raw records:")

    # The URL holds the view: opened anew, it shows the same range.
    view = console.page.url.split("#", 1)[1]
    shown = parse_qs(view.split("?", 1)[1])
    console.open(view)
    console.wait_until("document.querySelector('#plan').dataset.period === 'raw'")
    scale = console.page.eval_on_selector("#chart", "e => [e.uplot.scales.x.min, e.uplot.scales.x.max]")
    assert scale == [int(shown["from"][0]), int(shown["to"][0])]

    # Panned past the last record, the chart is empty (and says so in no error); `0` resets the zoom.
    past_the_end = f"Number(new URLSearchParams(location.hash.split('?')[1]).get('from')) > {END}"
    for key in ["-", "-", "-"] + ["ArrowRight"] * 20:
        if console.page.evaluate(past_the_end):
            break
        console.page.keyboard.press(key)
    console.wait_until(past_the_end)
    console.wait_until("document.querySelector('#plan').textContent === 'raw records: 0'")
    console.page.keyboard.press("0")
    console.wait_until("document.querySelector('#plan').dataset.period === '30s'")


# The time axis's tick labels at each x range: per tick, its x and each line of its label with the
# line's width, both in the canvas's pixels (uPlot centres a label on its tick).
TIME_LABELS_AT = """async (element, ranges) => {
  const plot = element.uplot;
  const axis = plot.axes[0];
  const context = document.createElement("canvas").getContext("2d");
  const labels = [];
  for (const [min, max] of ranges) {
    plot.setScale("x", { min, max });
    await new Promise((resolve) => requestAnimationFrame(resolve));
    context.font = axis.font[0];
    labels.push(axis._splits.map((split, i) => [
      plot.valToPos(split, "x", true),
      String(axis._values[i] ?? "").split("\\n").map((line) => [line, context.measureText(line).width]),
    ]));
  }
  return labels;
}"""
LABEL_GAP_PX = 4


def assert_time_labels_apart(console: Console) -> None:
    """No two neighbouring time labels touch, line by line, at spans of hours to weeks starting at
    several hours before a midnight (where the first label's full date meets the next day's)."""
    midnight = START - 8 * HOUR
    ranges = [
        [midnight - before, midnight - before + span]
        for span in (6 * HOUR, DAY, 2 * DAY, 3 * DAY, 4 * DAY, 5 * DAY, 7 * DAY, 10 * DAY, 30 * DAY)
        for before in (0, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, 12 * HOUR, 16 * HOUR)
    ]
    labels = console.page.eval_on_selector("#chart", TIME_LABELS_AT, ranges)
    for (start, end), ticks in zip(ranges, labels, strict=True):
        assert len(ticks) >= 3, (start, end, ticks)
        for (x0, lines0), (x1, lines1) in itertools.pairwise(ticks):
            for (text0, width0), (text1, width1) in zip(lines0, lines1):
                if text0 and text1:
                    assert x1 - x0 >= (width0 + width1) / 2 + LABEL_GAP_PX, (start, end, text0, text1, x0, x1)


def y_label(console: Console, selector: str = "#chart") -> str:
    """The y axis's title, with the room uPlot gives it (none: drawn nowhere)."""
    label, size = console.page.eval_on_selector(selector, "e => [e.uplot.axes[1].label, e.uplot.axes[1].labelSize]")
    assert size > 0, (label, size)
    return str(label)


def vintage_in_chart(console: Console) -> list[float]:
    """The values of the vintage series (the chart's second), without the join's gaps."""
    return [value for value in console.chart_data()[2] if value is not None]


def test_forecast_vintages_staircase_and_errors(admin_console: Console, admin: httpx.Client) -> None:
    console = admin_console
    console.open(f"/{SITE}/forecast/solar/1?actual=renewable:1:p")
    console.wait_until("document.querySelector('#errors-table tbody tr') !== null")
    latest = forecast_vector(VINTAGES[-1])["values"]
    # The chart's step lines repeat the last value one step on.
    assert vintage_in_chart(console) == [period["p"] for period in latest] + [latest[-1]["p"]]
    assert console.page.locator("#vintage-label").inner_text().startswith("2026-06-21 10:00:00 UTC (7 of 7)")
    staircase = console.queries("/staircase")
    assert staircase and staircase[-1]["horizon"] == "6h"
    console.screenshot("forecast")

    # The slider, from the keyboard: one step back is the vintage created an hour before.
    console.page.focus("#vintage")
    console.page.keyboard.press("ArrowLeft")
    earlier = forecast_vector(VINTAGES[-2])["values"]
    console.wait_until(f"document.querySelector('#chart').uplot.data[2].filter(v => v != null).length === {len(earlier) + 1}")
    asked = [q for q in console.queries("/forecast/solar/1") if q.get("generated-before") == str(VINTAGES[-2] + 1)]
    assert asked and asked[-1]["generated-after"] == str(VINTAGES[-2])
    assert vintage_in_chart(console) == [period["p"] for period in earlier] + [earlier[-1]["p"]]
    assert f"vintage={VINTAGES[-2]}" in console.page.url
    # `]`, outside the slider, goes to the next vintage: the latest again.
    console.page.locator("h1").click()
    console.page.keyboard.press("]")
    console.wait_until(f"location.hash.includes('vintage={VINTAGES[-1]}')")
    assert console.page.locator("#vintage-label").inner_text().endswith("(7 of 7)")

    # The staircase at another horizon, and the errors per horizon as the API computes them.
    console.page.select_option("#horizon", "1h")
    console.page.wait_for_selector("body[data-view=ready]")
    console.wait_until("document.querySelector('#chart').uplot.data[0].length > 0")
    assert console.queries("/staircase")[-1]["horizon"] == "1h"
    [errors_query] = console.queries("/horizon-errors")[-1:]
    assert errors_query["equipment"] == "renewable" and errors_query["attribute"] == "p" and errors_query["period"] == "15m"
    expected = ok(admin.get(f"/ext/v1/{SITE}/forecast/solar/1/horizon-errors", params=errors_query))["results"]
    console.page.wait_for_selector("#errors-table tbody tr")
    assert console.page.locator("#errors-table tbody tr").count() == len(expected) > 1
    assert console.chart_data("#errors-chart")[1] == [row["mae"] for row in expected]
    assert y_label(console) == "kW"
    assert_time_labels_apart(console)


def test_commitment_over_its_forecast(admin_console: Console) -> None:
    console = admin_console
    console.open(f"/{SITE}/commitment/1")
    console.wait_until("document.querySelector('#chart').uplot.data[0].length > 0")
    data = console.chart_data()
    commitment = [value for value in data[1] if value is not None]
    assert commitment[:-1] == [round(0.9 * forecast_kw(t, START), 1) for t in range(START, END, 30 * MINUTE)]
    # The forecast it was made from: the latest vintage created at or before it.
    assert [value for value in data[2] if value is not None][:-1] == [p["p"] for p in forecast_vector(START)["values"]]
    assert "quality 2" in console.page.locator("#details").inner_text()
    assert y_label(console) == "commitment value · forecast p (kW)"
    console.screenshot("commitment")


def test_tariffs_as_a_labelled_timeline(admin_console: Console) -> None:
    console = admin_console
    console.open(f"/{SITE}/tariff")
    console.page.wait_for_selector("#timeline .timeline-segment")
    rows = console.page.locator("#timeline .timeline-row")
    assert rows.count() == 2
    assert rows.nth(0).locator(".timeline-segment").all_inner_texts() == ["off-peak", "on-peak", "off-peak"]
    assert rows.nth(1).locator(".timeline-segment").all_inner_texts() == ["standard", "peak"]
    assert console.page.locator("#periods tbody tr").count() == 5
    assert y_label(console) == "tariff value"
    console.screenshot("tariffs")
    assert_time_labels_apart(console)


def test_keyboard_time_zone_and_theme(admin_console: Console) -> None:
    console = admin_console
    console.open(f"/{SITE}/tariff")
    first_cell = console.page.locator("#periods tbody td").first
    assert first_cell.inner_text() == "2026-06-21 07:00:00 UTC"
    console.page.keyboard.press("t")
    console.page.wait_for_selector("body[data-view=ready]")
    assert "tz=local" in console.page.url
    # The context runs in Paris: 07:00 UTC is 09:00 there.
    assert "09:00:00" in first_cell.inner_text()
    console.page.keyboard.press("?")
    assert console.page.locator("#help").is_visible()
    console.page.keyboard.press("Escape")
    assert console.page.locator("#help").is_hidden()
    console.page.keyboard.press("d")
    assert console.page.evaluate("document.documentElement.dataset.theme") == "dark"
    background = console.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 20, 24)"
    console.page.keyboard.press("g")
    console.page.wait_for_selector("#sites")
    # A new view takes the focus to its content, and Tab goes on from there to the sites' links.
    assert console.page.evaluate("document.activeElement.id") == "main"
    console.page.keyboard.press("Tab")
    assert console.page.evaluate("document.activeElement.closest('#sites') !== null")
    console.page.keyboard.press("Enter")
    console.wait_until("/^#\\/[0-9]+([?]|$)/.test(location.hash) && document.body.dataset.view === 'ready'")


def test_dark_screenshot_follows_the_system(browser: Browser, storecast: Storecast, console_data: None) -> None:
    console = open_console(browser, storecast, "admin", color_scheme="dark")
    try:
        console.open(f"/{SITE}/forecast/solar/1?actual=renewable:1:p&horizon=1h")
        console.page.wait_for_selector("#errors-table tbody tr")
        assert console.page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(17, 20, 24)"
        console.screenshot("forecast-dark")
    finally:
        console.context.close()
    assert console.errors == []


def test_a_site_limited_certificate_sees_its_site_only(browser: Browser, storecast: Storecast, console_data: None) -> None:
    console = open_console(browser, storecast, "site100")
    try:
        console.open("/")
        assert console.page.locator("#sites a").all_inner_texts() == [f"Site {LIMITED_SITE}"]
        console.page.goto(f"{storecast.base_url}/console/#/{SITE}")
        console.page.wait_for_selector("body[data-view=error]")
        assert "1400" in console.page.locator("#status").inner_text()
        assert console.page.locator("#equipment").count() == 0
        # The same refusal at the endpoints, asked from the page itself.
        for path in (
            f"/ext/v1/{SITE}/inventory",
            f"/ext/v1/{SITE}/forecast/solar/1/staircase?horizon=1h",
            f"/v1/{SITE}/production/meter/3",
        ):
            answer = console.page.evaluate("path => fetch(path).then(async r => [r.status, await r.json()])", path)
            assert answer[0] == 403 and answer[1]["status_code"] == 1400, (path, answer)
        console.open(f"/{LIMITED_SITE}")
        console.page.wait_for_selector("[data-equipment='renewable:1']")
    finally:
        console.context.close()
    with storecast.client("site100") as limited:
        assert_error(limited.get(f"/ext/v1/{SITE}/inventory"), 403, 1400)
        assert_error(limited.get(f"/ext/v1/{SITE}/forecast/solar/1/staircase", params={"horizon": "1h"}), 403, 1400)
        sites = ok(limited.get("/ext/v1/sites"))["results"]
        assert sites == [{"site_id": LIMITED_SITE}]
