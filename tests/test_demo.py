"""`storecast demo` against a real `storecast serve all`: a day of the demo site, read back through the API."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest

from storecast import demo
from storecast.cli import main
from storecast.client import Aggregation, Client, Query, Table
from tests.conftest import Storecast

# pvlib and demandlib on pandas 3.1: its deprecations of what they call, not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

# A site no other test writes to (conftest's `site` counter stops below 4e9).
SITE = 4_100_000_001
DAY = demo.DAY_MS
HOUR = demo.HOUR_MS
QUARTER = demo.QUARTER_MS


def storecast_cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    code = exited.value.code
    return code if isinstance(code, int) else 1


@dataclass
class Loaded:
    client: Client
    # The demo's "now" was in [ran_from, ran_to]: its 1 Hz data ends there.
    ran_from: int
    ran_to: int
    utc_offset_ms: int

    def read(
        self,
        series: str,
        *,
        start: int | None = None,
        end: int | None = None,
        every_vintage: bool = False,
        agg: Aggregation | None = None,
        period: int | None = None,
    ) -> Table:
        """Records of the demo's id in [start, end[ (by default the whole simulated span); for vectors the latest,
        or every vintage created up to the demo's end."""
        query = Query.of(
            start=self.ran_from - 4 * DAY if start is None else start,
            end=self.ran_to + 3 * DAY if end is None else end,
            generated_after=0 if every_vintage else None,
            generated_before=self.ran_to + 1 if every_vintage else None,
            generate_all=True if every_vintage else None,
            agg=agg,
            period=period,
        )
        return self.client.read(SITE, series, demo.DEMO_ID, query)

    def local_hours(self, timestamps: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        hours: npt.NDArray[np.int64] = (timestamps + self.utc_offset_ms) // HOUR % 24
        return hours


@pytest.fixture(scope="module")
def loaded(storecast: Storecast) -> Iterator[Loaded]:
    ran_from = int(time.time()) * 1000
    started = time.monotonic()
    assert storecast_cli("demo", "--site", str(SITE), "--days", "1", "--quiet", "--grpc", storecast.grpc_target) == 0
    print(f"storecast demo --days 1: {time.monotonic() - started:.1f} s")
    ran_to = int(time.time()) * 1000
    with Client.grpc(storecast.grpc_target) as client:
        yield Loaded(client, ran_from, ran_to, demo.Weather.bundled().utc_offset_ms)


def vectors(table: Table) -> dict[int, Table]:
    """The table's rows per creation timestamp."""
    creations = table.columns["creation_timestamp"]
    return {int(c): table.take(np.flatnonzero(creations == c)) for c in np.unique(creations)}


def test_production_at_1_hz_up_to_now(loaded: Loaded) -> None:
    for series in ("production/renewable", "production/meter-3p", "production/battery"):
        stamps = loaded.read(series).columns["timestamp"]
        assert len(stamps) == 86_400, series
        assert set(np.diff(stamps).tolist()) == {1000}, series
        # The last second before the demo's "now": the console's "last minutes" have data.
        assert loaded.ran_from - 1000 <= stamps[-1] <= loaded.ran_to, series


def test_pv_is_zero_at_night_and_positive_at_noon(loaded: Loaded) -> None:
    table = loaded.read("production/renewable")
    p, hours = table.columns["p"], loaded.local_hours(table.columns["timestamp"])
    night, noon = np.isin(hours, [0, 1, 2, 3]), np.isin(hours, [11, 12])
    assert night.sum() >= 4 * 3600 and noon.sum() >= 2 * 3600
    assert (p[night] == 0).all()
    assert (p[noon] > 0).all() and p[noon].mean() > 5.0
    assert p.max() <= demo.PV_AC_KW
    # The inverter's reactive power follows its active power.
    np.testing.assert_allclose(table.columns["q"], demo.PV_Q_RATIO * p, atol=0.002)


def test_site_meter_sees_demand_minus_pv_minus_battery(loaded: Loaded) -> None:
    meter = loaded.read("production/meter-3p").columns
    pv = loaded.read("production/renewable").columns["p"]
    battery = loaded.read("production/battery").columns["p"]
    site = meter["l1_p"] + meter["l2_p"] + meter["l3_p"]
    demand = site + pv + battery
    assert (demand > 0).all()
    # The battery's steps of BATTERY_KW are in the meter, with its sign: what is left, the load, has none.
    assert np.abs(np.diff(demand)).max() < demo.BATTERY_KW / 2
    assert 20.0 < float(np.median(demand)) < 200.0
    # Midday the PV covers the load: the site exports (negative import) at times, imports at others.
    assert site.min() < 0 < site.max()
    assert abs(meter["f"] - demo.GRID_HZ).max() < 0.2
    for pair in ("l12_u", "l23_u", "l31_u"):
        assert abs(meter[pair] / demo.LINE_VOLTS - 1).max() < 0.03
    phase_volts = meter["l12_u"] / np.sqrt(3)
    np.testing.assert_allclose(meter["l1_i"], np.hypot(meter["l1_p"], meter["l1_q"]) * 1000 / phase_volts, rtol=1e-3, atol=0.01)


def test_battery_follows_its_schedule(loaded: Loaded) -> None:
    battery = loaded.read("production/battery").columns
    p, soc, hours = battery["p"], battery["soc"], loaded.local_hours(battery["timestamp"])
    assert set(np.unique(hours[p < 0]).tolist()) <= set(demo.CHARGE_HOURS)
    assert set(np.unique(hours[p > 0]).tolist()) <= set(demo.DISCHARGE_HOURS)
    assert (p < 0).any() and (p > 0).any()
    assert soc.min() >= demo.SOC_MIN and soc.max() <= demo.SOC_MAX
    # Energy in, energy out: the SoC rises while charging and falls while discharging.
    assert (np.diff(soc)[(p[1:] < 0) & (p[:-1] < 0)] >= 0).all()
    assert (np.diff(soc)[(p[1:] > 0) & (p[:-1] > 0)] <= 0).all()
    np.testing.assert_allclose(battery["e"], soc * demo.BATTERY_KWH / 100, atol=0.002)
    assert set(np.unique(battery["state"]).tolist()) == {0.0, 1.0, 2.0}


def test_weather_sensors_every_minute(loaded: Loaded) -> None:
    irr = loaded.read("production/pyranometer")
    t = loaded.read("production/thermometer")
    for table in (irr, t):
        assert len(table) == 1440
        assert set(np.diff(table.columns["timestamp"]).tolist()) == {demo.MINUTE_MS}
    noon = np.isin(loaded.local_hours(irr.columns["timestamp"]), [11, 12])
    assert (irr.columns["irr"] >= 0).all() and (irr.columns["irr"][noon] > 0).all()
    assert -30 < t.columns["t"].min() <= t.columns["t"].max() < 45


@pytest.mark.parametrize("forecast_type", ["solar", "demand"])
def test_forecasts_every_6_hours_for_48_hours(loaded: Loaded, forecast_type: str) -> None:
    series = f"forecast/{forecast_type}"
    creations = np.array(loaded.client.vintages(SITE, series, demo.DEMO_ID))
    # From one horizon before the day to the last 6-hour step before the demo's "now".
    assert len(creations) >= 12
    assert set(np.diff(creations).tolist()) == {6 * HOUR}
    assert (creations % (6 * HOUR) == 0).all() and loaded.ran_from - 6 * HOUR < creations[-1] <= loaded.ran_to
    table = loaded.read(series, every_vintage=True)
    by_vintage = vectors(table)
    assert sorted(by_vintage) == creations.tolist()
    for creation, vintage in by_vintage.items():
        stamps = vintage.columns["timestamp"]
        np.testing.assert_array_equal(stamps, creation + np.arange(192) * QUARTER)
        quality = vintage.columns["quality"]
        assert quality[0] == 100 and quality[-1] == 50 and (np.diff(quality) <= 0).all()
        p = vintage.columns["p"]
        assert (p >= 0).all()
        if forecast_type == "solar":
            assert (p[np.isin(loaded.local_hours(stamps), [0, 1, 2, 3])] == 0).all()
            assert p.max() > 0
        else:
            assert (p > 0).all()


def test_solar_forecast_error_grows_with_the_horizon(loaded: Loaded) -> None:
    # Whole quarter hours of the 1 Hz data.
    start, end = -(-(loaded.ran_to - DAY) // QUARTER) * QUARTER, loaded.ran_from // QUARTER * QUARTER
    actual = loaded.read("production/renewable", start=start, end=end, agg="avg", period=QUARTER)
    actual_p = dict(zip(actual.columns["timestamp"].tolist(), actual.columns["p"].tolist()))
    table = loaded.read("forecast/solar", start=start, end=end, every_vintage=True)
    errors: dict[str, list[float]] = {"short": [], "long": []}
    for creation, stamp, p in zip(
        table.columns["creation_timestamp"].tolist(), table.columns["timestamp"].tolist(), table.columns["p"].tolist()
    ):
        # In daylight.
        if stamp in actual_p and actual_p[stamp] > 10.0:
            horizon = stamp - creation
            if horizon < 6 * HOUR:
                errors["short"].append(abs(p - actual_p[stamp]))
            elif horizon >= 24 * HOUR:
                errors["long"].append(abs(p - actual_p[stamp]))
    assert len(errors["short"]) >= 10 and len(errors["long"]) >= 20
    assert 3 * np.mean(errors["short"]) < np.mean(errors["long"])


def test_commitments_are_solar_minus_demand_for_the_next_day(loaded: Loaded) -> None:
    solar = vectors(loaded.read("forecast/solar", every_vintage=True))
    demand = vectors(loaded.read("forecast/demand", every_vintage=True))
    commitments = vectors(loaded.read("commitment", every_vintage=True))
    assert sorted(commitments) == sorted(solar)
    qualities = set()
    for creation, commitment in commitments.items():
        stamps = commitment.columns["timestamp"]
        # The next local day, whole.
        first = stamps[0]
        assert (first + loaded.utc_offset_ms) % DAY == 0 and 0 < first - creation <= DAY
        np.testing.assert_array_equal(stamps, first + np.arange(96) * QUARTER)
        at = np.isin(solar[creation].columns["timestamp"], stamps)
        expected = solar[creation].columns["p"][at] - demand[creation].columns["p"][at]
        np.testing.assert_allclose(commitment.columns["value"], expected, atol=0.002)
        quality = commitment.columns["quality"]
        assert len(set(quality.tolist())) == 1 and 50 <= quality[0] <= 100
        qualities.add(float(quality[0]))
    # Vintages created later in the local day commit nearer periods: better quality.
    assert len(qualities) > 1


def test_tariff_has_on_peak_and_off_peak_periods(loaded: Loaded, storecast: Storecast) -> None:
    cert, key = storecast.pki.cert("admin")
    with Client.rest(storecast.base_url, cert=cert, key=key, ca=storecast.pki.ca) as rest:
        frame = rest.get_tariff(SITE, demo.DEMO_ID, start=loaded.ran_from - 3 * DAY, end=loaded.ran_to + 3 * DAY)
    assert set(frame["label"]) == {"on-peak", "off-peak"}
    assert (frame["value"] == frame["label"].map(demo.TARIFF_PRICES)).all()
    # Labels alternate; on-peak starts at 08:00 on a weekday and ends at 20:00, site standard time (the first
    # period, in force at the start of the read, starts where the demo's span does).
    labels = frame["label"].tolist()
    assert all(a != b for a, b in zip(labels, labels[1:]))
    local = frame.index.to_numpy()[1:] + loaded.utc_offset_ms
    hours = local // HOUR % 24
    on = frame["label"].to_numpy()[1:] == "on-peak"
    assert set(hours[on].tolist()) == {8}
    assert ((local[on] // DAY + 3) % 7 < 5).all()
    assert set(hours[~on].tolist()) == {20}


def test_without_the_extra_it_says_which(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "pvlib", None)
    assert storecast_cli("demo", "--grpc", "unix:/nonexistent") == 2
    error = capsys.readouterr().err
    assert "pvlib is not installed" in error and "storecast[demo]" in error


# --- the simulation's pieces, without a server ------------------------------------------------------------------


def test_forecast_error_std_is_proportional_to_the_horizon() -> None:
    vintages = np.arange(2000, dtype=np.int64) * QUARTER
    quarters = np.arange(2000 + 192, dtype=np.int64) * QUARTER
    forecast = demo.forecast(vintages, quarters, np.ones(len(quarters)), 0.005, np.random.default_rng(3))
    relative = forecast.p - 1.0
    for period in (3, 47, 95, 191):
        hours = (period + 1) / 4
        assert relative[:, period].std() == pytest.approx(0.005 * hours, rel=0.1)
    # Smooth along a vintage: neighbouring periods' errors are correlated.
    assert np.corrcoef(relative[:, 100], relative[:, 101])[0, 1] > 0.8


def test_tmy_rows_map_the_hour_of_the_year() -> None:
    weather = demo.Weather.bundled()
    offset = weather.utc_offset_ms
    new_year = int(np.datetime64("2027-01-01T00:00", "ms").astype(np.int64)) - offset
    july = int(np.datetime64("2026-07-01T13:00", "ms").astype(np.int64)) - offset
    rows = weather.rows(np.array([new_year + HOUR, new_year, july], dtype=np.int64))
    assert rows.tolist() == [0, 8759, (31 + 28 + 31 + 30 + 31 + 30) * 24 + 12]


def test_battery_stays_within_its_soc_bounds() -> None:
    weather = demo.Weather.bundled()
    seconds = np.arange(0, 3 * DAY, 1000, dtype=np.int64)
    battery = demo.simulate_battery(weather, seconds, np.random.default_rng(1))
    assert battery.soc.min() == demo.SOC_MIN and battery.soc.max() == demo.SOC_MAX
    # Full before the charging hours end: it stops charging.
    hours = weather.local_hours(seconds)
    assert (battery.p[np.isin(hours, demo.CHARGE_HOURS)] == 0).any()
