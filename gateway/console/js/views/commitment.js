// A commitment over the forecast it was made from: a commitment vintage (slider) and, for it, the
// latest vintage of the chosen forecast created at or before the commitment.

import { catalogEntry, getResults, paths, vintage, vintagesOf } from "../api.js";
import { TimeChart, attributeLabel, vintageChartKey, colors, join, stepSeries } from "../chart.js";
import { intParam, linkTo, navigateParams, rangeParam, replaceParams } from "../state.js";
import { HOUR, formatTime, typicalStep } from "../time.js";
import { el, fill, rangeButtons, select, setCrumbs, vintageSlider } from "../ui.js";
import { stepColumns } from "./forecast.js";

// What the chart plots of each vector: the commitment's value over the forecast's active power.
const COMMITTED = "value";
const FORECAST = "p";

export async function render(main, { site, segments, params, tz }) {
  const id = Number(segments[2]);
  const title = `commitment ${id}`;
  setCrumbs([["Sites", linkTo([])], [`Site ${site}`, linkTo([site])], [title, ""]]);
  document.title = `${title} · site ${site} · storecast`;
  const inventory = await getResults(paths.inventory(site));
  const series = inventory.find((s) => s.category === "commitment" && s.id === id);
  if (series === undefined) throw new Error(`Site ${site} has no ${title}.`);
  const forecasts = inventory.filter((s) => s.category === "forecast");
  const forecast = forecasts.find((s) => `${s.type}:${s.id}` === params.get("forecast")) ?? forecasts[0] ?? null;
  const commitmentPath = paths.commitment(site, id);
  const vintages = await vintagesOf(commitmentPath, series);
  const wanted = intParam(params, "vintage");
  let index = vintages.includes(wanted) ? vintages.indexOf(wanted) : vintages.length - 1;

  const vectors = new Map();
  const once = (key, fetch) => {
    if (!vectors.has(key)) vectors.set(key, fetch());
    return vectors.get(key);
  };
  const commitmentAt = (creation) => once(`c ${creation}`, () => vintage(commitmentPath, creation));
  // The forecast the commitment could have been made from: the latest created at or before it.
  const forecastFor = (creation) =>
    once(`f ${creation}`, async () => {
      const vectors = await getResults(paths.forecast(site, forecast.type, forecast.id), {
        "generated-after": 0,
        "generated-before": creation + 1,
      });
      return vectors[0] ?? null;
    });
  // The chart spans the commitment vintage on show (its periods, the last for one step).
  const extentOf = (vector) => {
    const times = (vector?.values ?? []).map((period) => period.timestamp);
    const step = typicalStep(times) ?? HOUR;
    return { step, range: times.length ? [times[0], times.at(-1) + step] : [series.first_timestamp, series.last_timestamp + step] };
  };
  const { step, range: full } = extentOf(await commitmentAt(vintages[index]));

  const details = el("p", { class: "plan", id: "details" });
  const vintagePicker = vintageSlider(vintages, index, (creation) => formatTime(creation, tz), async (chosen) => {
    index = chosen;
    chart.full = extentOf(await commitmentAt(vintages[index])).range;
    replaceParams({ vintage: vintages[index] });
    chart.reset();
  });
  const chartElement = el("div", { class: "chart", id: "chart", role: "img", "aria-label": `${title} over its forecast` });
  fill(main,
    el("h1", {}, title),
    el("div", { class: "toolbar" }, vintagePicker.element),
    el(
      "div",
      { class: "toolbar" },
      forecast
        ? select(
            "Forecast",
            forecasts.map((s) => [`${s.type}:${s.id}`, `${s.type} ${s.id}`]),
            `${forecast.type}:${forecast.id}`,
            (key) => navigateParams({ forecast: key }),
            "forecast",
          )
        : el("span", { class: "muted" }, "This site has no forecast."),
      rangeButtons(() => chart),
    ),
    chartElement,
    details,
  );
  const theme = colors();
  const [commitmentEntry, forecastEntry] = await Promise.all([
    catalogEntry("commitment", null),
    forecast ? catalogEntry("forecast", forecast.type) : null,
  ]);
  const labelOf = (entry, name) => attributeLabel(entry.attributes.find((a) => a.name === name));
  const chart = new TimeChart(chartElement, {
    tz,
    full,
    range: rangeParam(params, full),
    yLabel: [`commitment ${labelOf(commitmentEntry, COMMITTED)}`, forecast ? `forecast ${labelOf(forecastEntry, FORECAST)}` : null]
      .filter(Boolean)
      .join(" · "),
    series: [
      stepSeries("commitment", theme.series[3], { width: 2.5 }),
      stepSeries(forecast ? `forecast ${forecast.type} ${forecast.id}` : "forecast", theme.series[0], { width: 1.5, dash: [6, 4] }),
    ],
    onRange: (from, to) => replaceParams({ from, to }),
    load: async () => {
      const creation = vintages[index];
      const [commitment, basis] = await Promise.all([commitmentAt(creation), forecast ? forecastFor(creation) : null]);
      details.textContent =
        `commitment created ${formatTime(creation, tz)}, quality ${commitment?.quality ?? "–"}` +
        (basis ? `; forecast vintage created ${formatTime(basis.creation_timestamp, tz)}` : "; no forecast created before it");
      return join([stepColumns(commitment?.values ?? [], COMMITTED, step), stepColumns(basis?.values ?? [], FORECAST, step)]);
    },
  });
  return {
    destroy: () => {
      vintagePicker.destroy();
      chart.destroy();
    },
    key: (key) => vintageChartKey(vintagePicker, chart, key),
  };
}
