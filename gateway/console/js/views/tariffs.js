// A site's tariffs on one time axis: each tariff's value as a step line, and under the chart a row per
// tariff of labelled periods (on-peak, off-peak, …) that follows the chart's zoom, then the periods as a table.

import { catalogEntry, getResults, paths } from "../api.js";
import { TimeChart, attributeLabel, chartKey, colors, join, stepSeries } from "../chart.js";
import { linkTo, rangeParam, replaceParams } from "../state.js";
import { DAY, formatNumber, formatTime, typicalStep } from "../time.js";
import { el, fill, rangeButtons, setCrumbs } from "../ui.js";
import { stepColumns } from "./forecast.js";

const TABLE_ROWS = 200;

/** The rows of labelled periods, placed with the chart's own scale so that they line up with it. */
function drawTimeline(plot, container, tariffs, labels) {
  const left = plot.over.offsetLeft;
  const width = plot.over.clientWidth;
  const [from, to] = [plot.scales.x.min, plot.scales.x.max];
  container.style.marginLeft = `${left}px`;
  container.style.width = `${width}px`;
  container.replaceChildren(
    ...tariffs.map(({ id, periods, end }) =>
      el(
        "div",
        { class: "timeline-row", dataset: { tariff: id } },
        rowName(`tariff ${id}`, left),
        periods.flatMap((period, i) => {
          const start = period.timestamp;
          const stop = i + 1 < periods.length ? periods[i + 1].timestamp : end;
          if (stop <= from || start >= to) return [];
          const x0 = plot.valToPos(Math.max(start, from), "x");
          const x1 = plot.valToPos(Math.min(stop, to), "x");
          const segment = el(
            "div",
            {
              class: `timeline-segment label-${labels.indexOf(period.label) % 6}`,
              title: `tariff ${id}: ${period.label}, ${period.value}`,
            },
            period.label,
          );
          segment.style.left = `${x0}px`;
          segment.style.width = `${Math.max(1, x1 - x0)}px`;
          return [segment];
        }),
      ),
    ),
  );
}

function rowName(text, width) {
  const name = el("span", { class: "row-name" }, text);
  name.style.left = `-${width}px`;
  name.style.width = `${width - 6}px`;
  return name;
}

export async function render(main, { site, params, tz }) {
  setCrumbs([["Sites", linkTo([])], [`Site ${site}`, linkTo([site])], ["Tariffs", ""]]);
  document.title = `Tariffs · site ${site} · storecast`;
  const [inventory, entry] = await Promise.all([getResults(paths.inventory(site)), catalogEntry("tariff", null)]);
  const series = inventory.filter((s) => s.category === "tariff");
  if (series.length === 0) throw new Error(`Site ${site} has no tariff.`);
  const tariffs = await Promise.all(
    series.map(async (s) => {
      const [result] = await getResults(paths.tariff(site, s.id));
      const periods = result?.values ?? [];
      const step = typicalStep(periods.map((p) => p.timestamp)) ?? DAY;
      return { id: s.id, periods, step, end: s.last_timestamp + step };
    }),
  );
  const labels = [...new Set(tariffs.flatMap((t) => t.periods.map((p) => p.label)))].sort();
  const full = [Math.min(...series.map((s) => s.first_timestamp)), Math.max(...tariffs.map((t) => t.end))];
  const chartElement = el("div", { class: "chart", id: "chart", role: "img", "aria-label": "Tariff values over time" });
  const timeline = el("div", { class: "timeline", id: "timeline" });
  const rows = tariffs.flatMap((t) => t.periods.map((p) => ({ id: t.id, ...p }))).sort((a, b) => a.timestamp - b.timestamp);
  fill(main,
    el("h1", {}, "Tariffs"),
    el("div", { class: "toolbar" }, rangeButtons(() => chart)),
    chartElement,
    timeline,
    el("h2", {}, "Periods"),
    el(
      "table",
      { class: "list", id: "periods" },
      el("thead", {}, el("tr", {}, ["from", "tariff", "label", "value"].map((name) => el("th", { scope: "col" }, name)))),
      el(
        "tbody",
        {},
        rows.slice(0, TABLE_ROWS).map((row) =>
          el(
            "tr",
            {},
            el("td", {}, formatTime(row.timestamp, tz)),
            el("td", {}, row.id),
            el("td", {}, row.label),
            el("td", { class: "num" }, formatNumber(row.value)),
          ),
        ),
      ),
    ),
    rows.length > TABLE_ROWS ? el("p", { class: "muted" }, `The first ${TABLE_ROWS} of ${rows.length} periods.`) : null,
  );
  const theme = colors();
  const data = join(tariffs.map((t) => stepColumns(t.periods, "value", t.end - (t.periods.at(-1)?.timestamp ?? 0))));
  const chart = new TimeChart(chartElement, {
    tz,
    full,
    range: rangeParam(params, full),
    height: 260,
    yLabel: `tariff ${attributeLabel(entry.attributes.find((a) => a.name === "value"))}`,
    series: tariffs.map((t, i) => stepSeries(`tariff ${t.id}`, theme.series[i % 6])),
    onRange: (from, to) => replaceParams({ from, to }),
    load: async () => data,
    onDraw: (plot) => drawTimeline(plot, timeline, tariffs, labels),
  });
  return { destroy: () => chart.destroy(), key: (key) => chartKey(chart, key) };
}
