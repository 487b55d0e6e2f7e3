"""`storecast demo`: one realistic site, loaded through the public API, so that the console has something to show.

The site (docs/getting-started.md, "Demo site"), all ids 1:

- production at 1 Hz: a PV inverter (`renewable`) simulated with pvlib's
  ModelChain over the TMY3 year the pvlib wheel ships (Greensboro, NC; the
  TMY's hours mapped onto the demo's dates), a battery (`battery`) on a fixed
  daily schedule, and the site meter (`meter-3p`) that sees the commercial
  load of demandlib's BDEW G25 profile, the PV and the battery; a pyranometer
  and a thermometer at 1 min, from the same weather;
- `solar` and `demand` forecasts issued every 6 h for the next 48 h at
  15 min, whose error grows with the horizon;
- a commitment per forecast vintage: the export committed for the next local
  day, solar forecast minus demand forecast;
- one tariff of on-peak and off-peak periods.

It puts through `storecast.client` (gRPC typed batches or REST), never into
the store. pvlib and demandlib are the `demo` extra, imported only when the
command runs; pandas and the client too, so that the binary's other commands
never load them.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from storecast.client.series import CREATION_TIMESTAMP, ID, TIMESTAMP, Series
from storecast.client.table import Table
from storecast.env import dev_dir, optional_setting, setting

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

    from storecast.client.client import Client

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
QUARTER_MS = 15 * MINUTE_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
QUARTERS_PER_HOUR = HOUR_MS // QUARTER_MS

# Every series of the demo site has this id.
DEMO_ID = 1
# Puts: large ones cost the services least per record, within the message limit of a server at the smallest
# body limit the tests use (4 MiB), and within one insert of the services' group commit (STORECAST_BATCH_MAX_ROWS).
PUT_BYTES = 4_000_000
MAX_PUT_ROWS = 100_000

# The plant: a 250 kWp roof behind a 230 kW inverter, facing south.
PV_DC_KW = 250.0
PV_AC_KW = 230.0
PV_TILT = 25.0
# The inverter absorbs a little reactive power (voltage support): q = ratio * p.
PV_Q_RATIO = -0.1
# A commercial load of 500 MWh a year; demandlib's BDEW 2025 profiles are in kW per GWh a year.
ANNUAL_DEMAND_GWH = 0.5
LOAD_Q_RATIO = math.tan(math.acos(0.95))
# The battery: charged late morning, discharged in the evening peak (site standard time), within SoC bounds.
BATTERY_KWH = 200.0
BATTERY_KW = 60.0
SOC_MIN, SOC_MAX, SOC_START = 10.0, 95.0, 40.0
CHARGE_HOURS = range(10, 14)
DISCHARGE_HOURS = range(17, 21)
BATTERY_STATE = {"idle": 0, "charging": 1, "discharging": 2}
# The meter: 480 V three-phase at 60 Hz (a US site), the load a little unbalanced between phases.
PHASE_SHARES = (0.345, 0.33, 0.325)
LINE_VOLTS = 480.0
GRID_HZ = 60.0
# Forecasts: issued every 6 h, 48 h ahead at 15 min; the error's standard deviation, relative to the actual value,
# grows by this much per hour of horizon.
FORECAST_EVERY_MS = 6 * HOUR_MS
FORECAST_HORIZON_MS = 48 * HOUR_MS
SOLAR_ERROR_PER_HOUR = 0.008
DEMAND_ERROR_PER_HOUR = 0.003
# Tariff: on-peak on weekdays from 08:00 to 20:00 site standard time, per kWh.
ON_PEAK_HOURS = range(8, 20)
TARIFF_PRICES = {"on-peak": 0.28, "off-peak": 0.11}


# --- the command line --------------------------------------------------------------------------------------


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`storecast demo`, with the connection options of the client's commands (storecast/client/commands.py)."""
    parser = commands.add_parser(
        "demo",
        help="load a realistic demo site (PV, meter, battery at 1 Hz; forecasts, commitments, tariffs)",
        description="Simulate one site and put it through the API: a PV inverter (pvlib over its bundled TMY3 year), "
        "a battery and the site meter at 1 Hz, a pyranometer and a thermometer at 1 min, for the DAYS up to now; "
        "solar and demand forecasts every 6 h, commitments and tariffs. Needs the demo extra "
        "(pip install 'storecast[demo]'). By default it calls make run's gRPC socket if it is there, else its gateway "
        "with the dev PKI's admin certificate.",
    )
    parser.add_argument("--site", type=int, default=1, help="site id (default 1)")
    parser.add_argument("--days", type=float, default=7.0, help="days of 1 Hz data up to now (default 7)")
    parser.add_argument("--workers", type=int, default=4, help="requests in flight (default 4)")
    parser.add_argument("--batch-size", type=int, help="records per Put (default: about 4 MB per Put, at most 100000)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    group = parser.add_argument_group("connection")
    group.add_argument("--url", help="the REST gateway (default https://localhost:$STORECAST_HTTP_PORT, 8443)")
    group.add_argument("--cert", type=Path, help="client certificate, PEM (default: the dev PKI's admin.cert.pem)")
    group.add_argument("--key", type=Path, help="its private key, PEM (default: the dev PKI's admin.key.pem)")
    group.add_argument("--ca", type=Path, help="CA certificate(s) the server's must chain to (default: the dev PKI's)")
    group.add_argument(
        "--grpc", metavar="TARGET", help="the gRPC services (default: make run's socket, when there and no --url is given)"
    )
    group.add_argument("--tls", action="store_true", help="gRPC over TLS (with --ca, and --cert/--key for mutual TLS)")
    group.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default 120)")
    parser.set_defaults(client_command=run)


def run(args: argparse.Namespace) -> int:
    """Simulate, then put; the exit code."""
    if args.days <= 0 or args.workers < 1 or (args.batch_size is not None and args.batch_size < 1):
        print("storecast demo: --days, --workers and --batch-size must be positive", file=sys.stderr)
        return 2
    try:
        import demandlib  # noqa: F401
        import pvlib  # noqa: F401
    except ImportError as missing:
        print(
            f"storecast demo: {missing.name or 'pvlib or demandlib'} is not installed: it comes with the demo extra, "
            "pip install 'storecast[demo]' (make run's .venv has it)",
            file=sys.stderr,
        )
        return 2
    from rich.console import Console

    from storecast.client.actions import connect
    from storecast.client.errors import StorecastError

    if args.grpc is None and args.url is None and _dev_socket().exists():
        args.grpc = f"unix:{_dev_socket()}"
    console = Console(stderr=True, soft_wrap=True)
    end = int(time.time()) * SECOND_MS
    window = Window(end - round(args.days * DAY_MS / SECOND_MS) * SECOND_MS, end)
    where = args.grpc or args.url or f"https://localhost:{setting('STORECAST_HTTP_PORT')}"
    console.print(f"demo site {args.site}: {args.days:g} days up to now, through {where}", highlight=False)
    started = time.monotonic()
    tables = simulate(window, np.random.default_rng(args.site))
    simulated = time.monotonic() - started
    with connect(args) as client:
        try:
            stored = put_tables(
                client,
                args.site,
                tables,
                batch_size=args.batch_size,
                workers=args.workers,
                console=console,
                show_progress=not args.quiet,
            )
        except StorecastError as error:
            print(f"storecast demo: {error}", file=sys.stderr)
            return 1
    seconds = time.monotonic() - started
    console.print(
        f"demo site {args.site}: {stored:,} records in {seconds:.1f} s (simulated in {simulated:.1f} s, "
        f"put at {stored / max(seconds - simulated, 1e-9):,.0f} records/s): "
        + ", ".join(f"{table.series} {table.rows:,}" for table in tables),
        highlight=False,
    )
    return 0


def _dev_socket() -> Path:
    """Where `make run`'s services listen (serve.py, `_internal_socket`)."""
    return Path(optional_setting("STORECAST_GRPC_SOCKET") or dev_dir() / "run" / "grpc.sock")


def batch_rows(table: Table) -> int:
    """Rows of about PUT_BYTES in a typed batch: 8 bytes per number and per key, at most MAX_PUT_ROWS."""
    return min(MAX_PUT_ROWS, PUT_BYTES // (8 * len(table.columns)))


def put_tables(
    client: Client,
    site: int,
    tables: list[Table],
    *,
    batch_size: int | None,
    workers: int,
    console: Console,
    show_progress: bool,
) -> int:
    """Every table in Puts of `batch_size` rows (by default `batch_rows`; never splitting a vector) from `workers`
    threads; the records stored."""
    from concurrent.futures import Future, ThreadPoolExecutor, as_completed

    from storecast.client.client import entry_chunks
    from storecast.client.progress import progress_bar

    stored = 0
    with progress_bar(console, show_progress) as progress, ThreadPoolExecutor(workers, thread_name_prefix="demo") as pool:
        tasks = [progress.add_task(str(table.series), total=table.rows, records=0) for table in tables]
        done = dict.fromkeys(tasks, 0)
        futures: dict[Future[int], TaskID] = {
            pool.submit(client.put_table, site, table.take(rows)): task
            for table, task in zip(tables, tasks)
            for rows in entry_chunks(table, batch_size or batch_rows(table))
        }
        try:
            for future in as_completed(futures):
                task = futures[future]
                records = future.result()
                done[task] += records
                stored += records
                progress.update(task, advance=records, records=done[task])
        finally:
            for future in futures:
                future.cancel()
    return stored


# --- the simulation ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """The 1 Hz records' [start, end[, and the simulated span around it, whole 6-hour steps: from the first forecast
    vintage that reaches the start (one horizon before) to the end of the last vintage's horizon."""

    start: int
    end: int

    @property
    def first_vintage(self) -> int:
        return self.start // FORECAST_EVERY_MS * FORECAST_EVERY_MS - FORECAST_HORIZON_MS

    @property
    def last_vintage(self) -> int:
        return self.end // FORECAST_EVERY_MS * FORECAST_EVERY_MS

    @property
    def simulated_end(self) -> int:
        return self.last_vintage + FORECAST_HORIZON_MS

    def grid(self, step_ms: int) -> Ints:
        """The simulated span at `step_ms`."""
        return np.arange(self.first_vintage, self.simulated_end, step_ms, dtype=np.int64)

    def seconds(self) -> Ints:
        return np.arange(self.start, self.end, SECOND_MS, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Weather:
    """The site's location and its TMY3 year: hourly values, row k the hour ending k + 1 h after Jan 1 00:00 local
    standard time (`utc_offset_ms` from UTC)."""

    latitude: float
    longitude: float
    altitude: float
    utc_offset_ms: int
    hourly: dict[str, Floats]

    @classmethod
    def bundled(cls) -> Weather:
        """Greensboro, NC: the TMY3 file the pvlib wheel ships (pvlib/data/723170TYA.CSV)."""
        import pvlib
        from pvlib.iotools import read_tmy3

        path = Path(pvlib.__file__).parent / "data" / "723170TYA.CSV"
        data, meta = read_tmy3(path, map_variables=True)
        columns = ("ghi", "dni", "dhi", "temp_air", "wind_speed")
        return cls(
            float(meta["latitude"]),
            float(meta["longitude"]),
            float(meta["altitude"]),
            round(float(meta["TZ"]) * HOUR_MS),
            {name: data[name].to_numpy(dtype=np.float64) for name in columns},
        )

    def rows(self, hour_ends: Ints) -> Ints:
        """The TMY rows of the hours ending at `hour_ends` (UTC): the same hour of the same day of the year (in a
        leap year, from Feb 29 on, of the next day; Dec 31 then takes the TMY's Jan 1)."""
        local = (hour_ends + self.utc_offset_ms).astype("datetime64[ms]")
        hours = (local - local.astype("datetime64[Y]")).astype(np.int64) // HOUR_MS
        rows: Ints = (hours - 1) % len(self.hourly["ghi"])
        return rows

    def local_hours(self, times: Ints) -> Ints:
        """The hour of the day (0-23) at `times`, site standard time."""
        hours: Ints = (times + self.utc_offset_ms) // HOUR_MS % 24
        return hours


@dataclass(frozen=True, slots=True)
class Plant:
    """The PV plant over the simulated span, at 1 min: AC power (kW), plane-of-array irradiance (W/m²), air
    temperature (°C)."""

    minutes: Ints
    ac_kw: Floats
    poa: Floats
    temp_air: Floats


def simulate_plant(weather: Weather, window: Window) -> Plant:
    """pvlib's ModelChain at 1 min. The TMY's hourly irradiance becomes minutes by its clear-sky index: each hour's
    ratio to the clear sky's mean over that hour, interpolated between hours, times the clear sky of the minute
    (a ramp at sunrise that a linear interpolation of the hours would smear into the night)."""
    import pandas as pd
    from pvlib.location import Location
    from pvlib.modelchain import ModelChain
    from pvlib.pvsystem import PVSystem
    from pvlib.temperature import TEMPERATURE_MODEL_PARAMETERS

    minutes = window.grid(MINUTE_MS)
    index = pd.DatetimeIndex(pd.to_datetime(minutes, unit="ms", utc=True))
    location = Location(weather.latitude, weather.longitude, altitude=weather.altitude)
    clear = location.get_clearsky(index, model="ineichen")
    hour_ends = window.grid(HOUR_MS) + HOUR_MS
    middles = hour_ends - HOUR_MS // 2
    rows = weather.rows(hour_ends)
    frame: dict[str, Any] = {}
    for name in ("ghi", "dni", "dhi"):
        sky = clear[name].to_numpy(dtype=np.float64)
        hourly_sky = sky.reshape(-1, HOUR_MS // MINUTE_MS).mean(axis=1)
        measured = weather.hourly[name][rows]
        index_of_hour = np.divide(measured, hourly_sky, out=np.zeros_like(measured), where=hourly_sky > 1.0)
        frame[name] = sky * np.interp(minutes, middles, np.clip(index_of_hour, 0.0, 1.2))
    for name in ("temp_air", "wind_speed"):
        frame[name] = np.interp(minutes, middles, weather.hourly[name][rows])
    system = PVSystem(
        surface_tilt=PV_TILT,
        surface_azimuth=180.0,
        module_parameters={"pdc0": PV_DC_KW * 1000.0, "gamma_pdc": -0.0037},
        inverter_parameters={"pdc0": PV_AC_KW * 1000.0 / 0.96},
        temperature_model_parameters=TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_polymer"],
    )
    chain = ModelChain(system, location, aoi_model="physical", spectral_model="no_loss")
    chain.run_model(pd.DataFrame(frame, index=index))
    ac = np.clip(chain.results.ac.to_numpy(dtype=np.float64) / 1000.0, 0.0, PV_AC_KW)
    poa = np.clip(chain.results.total_irrad["poa_global"].to_numpy(dtype=np.float64), 0.0, None)
    return Plant(minutes, np.nan_to_num(ac), np.nan_to_num(poa), np.asarray(frame["temp_air"], dtype=np.float64))


def demand_quarters(weather: Weather, quarters: Ints) -> Floats:
    """The site's demand (kW) per quarter hour starting at `quarters`: demandlib's BDEW 2025 commercial
    profile (G25, by month, weekday and time of day in site standard time), scaled to ANNUAL_DEMAND_GWH."""
    import pandas as pd
    from demandlib.bdew import G25

    local = pd.date_range(pd.Timestamp(int(quarters[0]) + weather.utc_offset_ms, unit="ms"), periods=len(quarters), freq="15min")
    profile = G25(local).to_numpy(dtype=np.float64)
    demand: Floats = profile * ANNUAL_DEMAND_GWH
    return demand


def ar1(rng: np.random.Generator, shape: tuple[int, ...], phi: float) -> Floats:
    """Noise of unit variance along the last axis, each step `phi` of the one before: a wander, not a jitter."""
    shocks = rng.standard_normal(shape)
    noise = np.empty(shape)
    noise[..., 0] = shocks[..., 0]
    scale = math.sqrt(1.0 - phi * phi)
    for k in range(1, shape[-1]):
        noise[..., k] = phi * noise[..., k - 1] + scale * shocks[..., k]
    return noise


def wander(rng: np.random.Generator, window: Window, seconds: Ints, phi: float = 0.9) -> Floats:
    """A slow unit-variance wander at 1 Hz: per-minute AR(1) noise, interpolated."""
    minutes = window.grid(MINUTE_MS)
    return np.interp(seconds, minutes, ar1(rng, (len(minutes),), phi))


@dataclass(frozen=True, slots=True)
class Battery:
    """The battery at 1 Hz: power (kW, p > 0 discharging), state of charge (%) and state."""

    p: Floats
    soc: Floats
    state: Floats


def simulate_battery(weather: Weather, seconds: Ints, rng: np.random.Generator) -> Battery:
    """The schedule minute by minute: charge at BATTERY_KW through CHARGE_HOURS, discharge through DISCHARGE_HOURS,
    each only as far as the SoC bounds allow."""
    first = int(seconds[0]) // MINUTE_MS * MINUTE_MS
    minutes = np.arange(first, int(seconds[-1]) + MINUTE_MS, MINUTE_MS, dtype=np.int64)
    hours = weather.local_hours(minutes)
    wanted = np.where(np.isin(hours, CHARGE_HOURS), -BATTERY_KW, np.where(np.isin(hours, DISCHARGE_HOURS), BATTERY_KW, 0.0))
    soc = np.empty(len(minutes) + 1)
    soc[0] = SOC_START
    percent_per_kw_minute = 100.0 / BATTERY_KWH / 60.0
    for k, power in enumerate(wanted.tolist()):
        soc[k + 1] = min(SOC_MAX, max(SOC_MIN, soc[k] - power * percent_per_kw_minute))
    power_minutes = -np.diff(soc) / percent_per_kw_minute
    minute_of = (seconds - first) // MINUTE_MS
    # A little noise that keeps the sign, and an idle battery at exactly 0.
    p = power_minutes[minute_of] * (1.0 + rng.normal(0.0, 0.0025, len(seconds)))
    state = np.where(p < 0, BATTERY_STATE["charging"], np.where(p > 0, BATTERY_STATE["discharging"], BATTERY_STATE["idle"]))
    return Battery(p, np.interp(seconds, np.append(minutes, minutes[-1] + MINUTE_MS), soc), state.astype(np.float64))


def simulate(window: Window, rng: np.random.Generator) -> list[Table]:
    """Every table of the demo site."""
    weather = Weather.bundled()
    plant = simulate_plant(weather, window)
    quarters = window.grid(QUARTER_MS)
    demand_q = demand_quarters(weather, quarters)
    seconds = window.seconds()

    pv = np.interp(seconds, plant.minutes, plant.ac_kw) * (1.0 + 0.01 * wander(rng, window, seconds))
    pv = np.clip(pv * (1.0 + rng.normal(0.0, 0.002, len(seconds))), 0.0, PV_AC_KW)
    pv_q = PV_Q_RATIO * pv
    demand = np.interp(seconds, quarters + QUARTER_MS // 2, demand_q) * (1.0 + 0.04 * wander(rng, window, seconds, 0.95))
    demand *= 1.0 + rng.normal(0.0, 0.01, len(seconds))
    battery = simulate_battery(weather, seconds, rng)
    site_p = demand - pv - battery.p
    site_q = LOAD_Q_RATIO * demand - pv_q

    meter: dict[str, Floats] = {"f": GRID_HZ + 0.012 * wander(rng, window, seconds) + rng.normal(0.0, 0.002, len(seconds))}
    volts = LINE_VOLTS * (1.0 + 0.004 * wander(rng, window, seconds))
    for phase, (share, pair) in enumerate(zip(PHASE_SHARES, ("l12", "l23", "l31")), start=1):
        meter[f"{pair}_u"] = volts + rng.normal(0.0, 0.3, len(seconds))
        meter[f"l{phase}_p"] = share * site_p + rng.normal(0.0, 0.2, len(seconds))
        meter[f"l{phase}_q"] = share * site_q + rng.normal(0.0, 0.1, len(seconds))
        phase_volts = meter[f"{pair}_u"] / math.sqrt(3.0)
        meter[f"l{phase}_i"] = np.hypot(meter[f"l{phase}_p"], meter[f"l{phase}_q"]) * 1000.0 / phase_volts

    in_window = (plant.minutes >= window.start) & (plant.minutes < window.end)
    tables = [
        production("renewable", seconds, p=pv, q=pv_q),
        production("meter-3p", seconds, **meter),
        production(
            "battery",
            seconds,
            p=battery.p,
            soc=battery.soc,
            e=battery.soc * BATTERY_KWH / 100.0,
            p_ch=np.where(battery.soc < SOC_MAX, BATTERY_KW, 0.0),
            p_disch=np.where(battery.soc > SOC_MIN, BATTERY_KW, 0.0),
            state=battery.state,
        ),
        production("pyranometer", plant.minutes[in_window], irr=plant.poa[in_window]),
        production("thermometer", plant.minutes[in_window], t=plant.temp_air[in_window]),
    ]
    pv_quarters = plant.ac_kw.reshape(-1, QUARTER_MS // MINUTE_MS).mean(axis=1)
    vintages = np.arange(window.first_vintage, window.last_vintage + 1, FORECAST_EVERY_MS, dtype=np.int64)
    solar = forecast(vintages, quarters, pv_quarters, SOLAR_ERROR_PER_HOUR, rng, upper=PV_AC_KW)
    demand_fc = forecast(vintages, quarters, demand_q, DEMAND_ERROR_PER_HOUR, rng)
    tables += [
        solar.table("solar"),
        demand_fc.table("demand"),
        commitments(solar, demand_fc, weather.utc_offset_ms),
        tariff(weather, window.grid(HOUR_MS)),
    ]
    return tables


def production(equipment_type: str, timestamps: Ints, **attributes: Floats) -> Table:
    """Records of the demo's equipment of this type, values rounded as a device would report them."""
    columns: dict[str, npt.NDArray[Any]] = {TIMESTAMP: timestamps, ID: np.full(len(timestamps), DEMO_ID, dtype=np.int64)}
    columns.update({name: np.round(values, 3) for name, values in attributes.items()})
    return Table(Series.parse(f"production/{equipment_type}"), columns)


@dataclass(frozen=True, slots=True)
class Forecast:
    """Vintages (rows) of one forecast, each of FORECAST_HORIZON_MS at 15 min (columns) from its creation."""

    creations: Ints
    timestamps: Ints
    p: Floats
    quality: Floats

    def table(self, forecast_type: str) -> Table:
        columns: dict[str, npt.NDArray[Any]] = {
            CREATION_TIMESTAMP: np.repeat(self.creations, self.timestamps.shape[1]),
            ID: np.full(self.timestamps.size, DEMO_ID, dtype=np.int64),
            TIMESTAMP: self.timestamps.ravel(),
            "p": np.round(self.p.ravel(), 3),
            "quality": self.quality.ravel(),
        }
        return Table(Series.parse(f"forecast/{forecast_type}"), columns)


def forecast(
    vintages: Ints, quarters: Ints, actual: Floats, error_per_hour: float, rng: np.random.Generator, upper: float = math.inf
) -> Forecast:
    """The actual value per quarter hour times (1 + e), e of standard deviation `error_per_hour` × the horizon in
    hours, smooth along each vintage; quality 100 at no horizon down to 50 at FORECAST_HORIZON_MS."""
    periods = FORECAST_HORIZON_MS // QUARTER_MS
    offsets = np.arange(periods, dtype=np.int64)
    first = (vintages - quarters[0]) // QUARTER_MS
    positions = first[:, None] + offsets[None, :]
    horizon_hours = np.broadcast_to((offsets + 1) / QUARTERS_PER_HOUR, positions.shape)
    error = error_per_hour * horizon_hours * ar1(rng, positions.shape, 0.9)
    p = np.clip(actual[positions] * (1.0 + error), 0.0, upper)
    quality = np.round(100.0 - 50.0 * horizon_hours * HOUR_MS / FORECAST_HORIZON_MS)
    return Forecast(vintages, quarters[positions], p, quality)


def commitments(solar: Forecast, demand: Forecast, utc_offset_ms: int) -> Table:
    """Per forecast vintage, the export committed for the next local day (from the first local midnight after the
    vintage's creation, within its horizon by construction): solar minus demand forecast (kW, < 0 an import). Its
    quality, the vector's own, is the mean quality of the forecast periods it covers."""
    day = DAY_MS // QUARTER_MS
    local = solar.creations + utc_offset_ms
    first = ((local // DAY_MS + 1) * DAY_MS - local) // QUARTER_MS
    positions = first[:, None] + np.arange(day)[None, :]
    rows = np.arange(len(solar.creations))[:, None]
    quality = np.round(solar.quality[rows, positions].mean(axis=1))
    columns: dict[str, npt.NDArray[Any]] = {
        CREATION_TIMESTAMP: np.repeat(solar.creations, day),
        ID: np.full(positions.size, DEMO_ID, dtype=np.int64),
        TIMESTAMP: solar.timestamps[rows, positions].ravel(),
        "quality": np.repeat(quality, day),
        "value": np.round(solar.p[rows, positions] - demand.p[rows, positions], 3).ravel(),
    }
    return Table(Series.parse("commitment"), columns)


def tariff(weather: Weather, hours: Ints) -> Table:
    """On-peak through ON_PEAK_HOURS on weekdays (site standard time), off-peak otherwise: a period at each change."""
    weekday = ((hours + weather.utc_offset_ms) // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    on_peak = (weekday < 5) & np.isin(weather.local_hours(hours), ON_PEAK_HOURS)
    changes = np.flatnonzero(np.r_[True, on_peak[1:] != on_peak[:-1]])
    labels = np.array(["on-peak" if on else "off-peak" for on in on_peak[changes].tolist()], dtype=object)
    columns: dict[str, npt.NDArray[Any]] = {
        ID: np.full(len(changes), DEMO_ID, dtype=np.int64),
        TIMESTAMP: hours[changes],
        "label": labels,
        "value": np.array([TARIFF_PRICES[label] for label in labels.tolist()]),
    }
    return Table(Series.parse("tariff"), columns)
