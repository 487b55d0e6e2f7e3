// A forecast against what happened: the production attribute it forecasts, one vintage (a slider over
// the creation timestamps, the latest by default), the staircase at horizon H (for each target time,
// the value of the latest vintage created at least H before it), and the error per horizon.

import { catalogEntry, getAllResults, getResults, paths, vintage, vintagesOf } from "../api.js";
import { TimeChart, bars, vintageChartKey, colors, join, numberChart, stepSeries } from "../chart.js";
import { intParam, linkTo, navigateParams, rangeParam, replaceParams } from "../state.js";
import { HOUR, MINUTE, formatDuration, formatNumber, formatTime } from "../time.js";
import { parsePeriod, periodText, pickPeriod, typicalStep } from "../time.js";
import { el, fill, rangeButtons, select, setCrumbs, showError, vintageSlider } from "../ui.js";
import { BUCKETS } from "./equipment.js";

const HORIZONS = [0, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, 24 * HOUR, 36 * HOUR, 48 * HOUR];
const HORIZON_BUCKETS = [15 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR];

// The equipment a forecast type is usually checked against, first; then any with a `p`.
const ACTUAL_TYPES = { solar: ["renewable"], wind: ["renewable"], demand: ["meter", "meter-3p"], aggregate: ["meter", "meter-3p"] };

// The staircase takes a horizon of 0, which `period` syntax has no word for.
const horizonText = (ms) => (ms === 0 ? "0s" : periodText(ms));

/** A left-convention vector as a step line: each period's value holds until the next, the last for one step. */
export function stepColumns(periods, name, step) {
  const xs = periods.map((period) => period.timestamp);
  const ys = periods.map((period) => period[name] ?? null);
  if (xs.length > 0) {
    xs.push(xs[xs.length - 1] + step);
    ys.push(ys[ys.length - 1]);
  }
  return [xs, ys];
}

/** The production series whose attributes share the forecast's unit, as "type:id:attribute" choices. */
async function actualChoices(inventory, unit) {
  const production = inventory.filter((series) => series.category === "production");
  const entries = await Promise.all(production.map((series) => catalogEntry("production", series.type)));
  return production.flatMap((series, index) =>
    entries[index].attributes
      .filter((attribute) => attribute.kind === "float" && attribute.unit === unit)
      .map((attribute) => ({
        type: series.type,
        id: series.id,
        attribute: attribute.name,
        key: `${series.type}:${series.id}:${attribute.name}`,
      })),
  );
}

/** A small cache of the last answer per key: a zoom re-asks only what changed. */
function memo() {
  const answers = new Map();
  return (key, fetch) => {
    if (!answers.has(key)) {
      if (answers.size > 32) answers.clear();
      answers.set(key, fetch().catch((error) => {
        answers.delete(key);
        throw error;
      }));
    }
    return answers.get(key);
  };
}

function errorsTable(rows) {
  return el(
    "table",
    { class: "list", id: "errors-table" },
    el("thead", {}, el("tr", {}, ["horizon", "pairs", "MAE", "bias"].map((name) => el("th", { scope: "col" }, name)))),
    el(
      "tbody",
      {},
      rows.map((row) =>
        el(
          "tr",
          {},
          el("td", {}, formatDuration(row.horizon_ms)),
          el("td", { class: "num" }, row.count.toLocaleString()),
          el("td", { class: "num" }, formatNumber(row.mae)),
          el("td", { class: "num" }, formatNumber(row.bias)),
        ),
      ),
    ),
  );
}

export async function render(main, { site, segments, params, tz }) {
  const [, , type, idText] = segments;
  const id = Number(idText);
  const title = `${type} forecast ${id}`;
  setCrumbs([["Sites", linkTo([])], [`Site ${site}`, linkTo([site])], [title, ""]]);
  document.title = `${title} · site ${site} · storecast`;
  const [inventory, entry] = await Promise.all([getResults(paths.inventory(site)), catalogEntry("forecast", type)]);
  const series = inventory.find((s) => s.category === "forecast" && s.type === type && s.id === id);
  if (series === undefined) throw new Error(`Site ${site} has no ${title}.`);
  const forecastPath = paths.forecast(site, type, id);
  const forecastAttribute = entry.attributes.find((a) => a.name === "p") ?? entry.attributes[0];
  const unit = forecastAttribute.unit;
  const [vintages, choices] = await Promise.all([vintagesOf(forecastPath, series), actualChoices(inventory, unit)]);
  const preferred = (ACTUAL_TYPES[type] ?? []).map((kind) => choices.find((c) => c.type === kind)).find(Boolean);
  const actual =
    choices.find((c) => c.key === params.get("actual")) ??
    preferred ??
    choices.find((c) => c.attribute === "p") ??
    choices[0] ??
    null;
  const horizon = params.get("horizon") === "0s" ? 0 : (parsePeriod(params.get("horizon")) ?? 6 * HOUR);
  const bucket = parsePeriod(params.get("bucket")) ?? HOUR;
  const wanted = intParam(params, "vintage");
  let index = vintages.includes(wanted) ? vintages.indexOf(wanted) : vintages.length - 1;

  const cached = memo();
  const vectorOf = (creation) => cached(`vintage ${creation}`, () => vintage(forecastPath, creation));
  const latest = await vectorOf(vintages[index]);
  const step = typicalStep((latest?.values ?? []).map((period) => period.timestamp)) ?? HOUR;
  const full = [series.first_timestamp, series.last_timestamp + step];

  const vintagePicker = vintageSlider(vintages, index, (creation) => formatTime(creation, tz), (chosen) => {
    index = chosen;
    replaceParams({ vintage: vintages[index] });
    chart.refresh();
  });

  const errorsPanel = el("div", { id: "errors" });
  const plan = el("span", { class: "plan", id: "plan" });
  const chartElement = el("div", { class: "chart", id: "chart", role: "img", "aria-label": `${title} against actuals` });
  fill(main,
    el("h1", {}, title),
    el("div", { class: "toolbar" }, vintagePicker.element),
    el(
      "div",
      { class: "toolbar" },
      actual
        ? select(
            "Actual",
            choices.map((c) => [c.key, `${c.type} ${c.id} · ${c.attribute}`]),
            actual.key,
            (key) => navigateParams({ actual: key }),
            "actual",
          )
        : el("span", { class: "muted" }, `No production attribute in ${unit} to compare with.`),
      select(
        "Staircase horizon H",
        [...new Set([...HORIZONS, horizon])].sort((a, b) => a - b).map((h) => [horizonText(h), formatDuration(h)]),
        horizonText(horizon),
        (h) => navigateParams({ horizon: h }),
        "horizon",
      ),
      rangeButtons(() => chart),
      plan,
    ),
    chartElement,
    el("h2", {}, "Error per horizon"),
    el(
      "div",
      { class: "toolbar" },
      select(
        "Horizon bucket",
        HORIZON_BUCKETS.map((b) => [periodText(b), formatDuration(b)]),
        periodText(bucket),
        (b) => navigateParams({ bucket: b }),
        "bucket",
      ),
      el("span", { class: "plan" }, `actual: the average over each forecast period (${periodText(step)}); error: forecast − actual`),
    ),
    errorsPanel,
  );

  let errorsPlot = null;
  const showErrors = (rows) => {
    errorsPlot?.destroy();
    errorsPlot = null;
    const chartBox = el("div", { class: "chart", id: "errors-chart", role: "img", "aria-label": "MAE and bias per horizon" });
    errorsPanel.replaceChildren(
      chartBox,
      el("div", { class: "table-scroll", tabindex: 0, role: "region", "aria-label": "Errors per horizon" }, errorsTable(rows)),
    );
    if (rows.length === 0) {
      chartBox.replaceWith(el("p", { class: "muted" }, "No forecast period in this range has an actual."));
      return;
    }
    const theme = colors();
    errorsPlot = numberChart(chartBox, {
      xLabel: "horizon",
      yLabel: unit,
      // In hours, so that the axis splits fall on round numbers of them.
      xValue: (hours) => formatDuration(Math.round(hours * HOUR)),
      xPad: bucket / HOUR / 2,
      data: [rows.map((r) => r.horizon_ms / HOUR), rows.map((r) => r.mae), rows.map((r) => r.bias)],
      series: [
        { label: "MAE", stroke: theme.series[0], fill: theme.band, paths: bars() },
        { label: "bias", stroke: theme.series[1], width: 2, points: { show: true } },
      ],
    });
  };

  const theme = colors();
  const chart = new TimeChart(chartElement, {
    tz,
    full,
    range: rangeParam(params, full),
    yLabel: unit,
    series: [
      { label: actual ? `actual ${actual.type} ${actual.id} ${actual.attribute}` : "actual", stroke: theme.series[2], width: 1.5 },
      stepSeries("vintage", theme.series[0]),
      stepSeries(`staircase H=${formatDuration(horizon)}`, theme.series[1], { dash: [6, 4] }),
    ],
    onRange: (from, to) => replaceParams({ from, to }),
    load: async (from, to) => {
      const period = pickPeriod(to - from, BUCKETS);
      const aligned = { from: Math.max(0, Math.floor(from / period) * period), to: Math.ceil(to / period) * period };
      const actualPromise = actual
        ? cached(`actual ${actual.key} ${aligned.from} ${aligned.to}`, () =>
            getResults(paths.production(site, actual.type, actual.id), { ...aligned, agg: "avg", period: periodText(period) }),
          )
        : Promise.resolve([]);
      const staircasePromise = cached(`staircase ${horizon} ${aligned.from} ${aligned.to}`, () =>
        getAllResults(paths.staircase(site, type, id), { horizon: horizonText(horizon), ...aligned }),
      );
      const errorsPromise = actual
        ? cached(`errors ${actual.key} ${periodText(bucket)} ${aligned.from} ${aligned.to}`, () =>
            getResults(paths.horizonErrors(site, type, id), {
              equipment: actual.type,
              equipment_id: actual.id,
              attribute: actual.attribute,
              forecast_attribute: forecastAttribute.name,
              period: periodText(step),
              horizon_bucket: periodText(bucket),
              ...aligned,
            }),
          )
        : Promise.resolve([]);
      const [actuals, staircase, vector] = await Promise.all([actualPromise, staircasePromise, vectorOf(vintages[index])]);
      errorsPromise.then(showErrors, showError);
      plan.textContent = `actual: average per ${periodText(period)}`;
      plan.dataset.period = periodText(period);
      return join([
        [actuals.map((r) => r.timestamp), actuals.map((r) => r[actual.attribute])],
        stepColumns(vector?.values ?? [], forecastAttribute.name, step),
        stepColumns(staircase, forecastAttribute.name, step),
      ]);
    },
  });
  return {
    destroy: () => {
      vintagePicker.destroy();
      errorsPlot?.destroy();
      chart.destroy();
    },
    key: (key) => vintageChartKey(vintagePicker, chart, key),
  };
}
