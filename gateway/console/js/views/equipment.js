// One equipment's attribute over time. The data follows the zoom: the raw records when the range holds
// few enough of them, else the average per period with the min–max band, at the nice period that cuts
// the range into at most BUCKETS buckets. Units come from the catalog.

import { catalogEntry, getAllResults, getResults, paths } from "../api.js";
import { TimeChart, attributeLabel, chartKey, colors, withGaps } from "../chart.js";
import { linkTo, navigateParams, rangeParam, replaceParams } from "../state.js";
import { SECOND, formatNumber, periodText, pickPeriod } from "../time.js";
import { el, fill, rangeButtons, select, setCrumbs } from "../ui.js";
import { mainAttribute } from "./overview.js";

export const BUCKETS = 1000;
// Up to this many records in range the chart shows them as they are: aggregating would hide nothing.
export const RAW_POINTS = 1500;

async function loadRaw(path, name, from, to, interval, plan) {
  const records = await getAllResults(path, { from, to });
  plan.textContent = `raw records: ${records.length.toLocaleString()}`;
  plan.dataset.period = "raw";
  const xs = records.map((record) => record.timestamp);
  const values = records.map((record) => record[name]);
  return withGaps(xs, [values, values.map(() => null), values.map(() => null)], 3 * interval);
}

async function loadAggregated(path, name, from, to, plan) {
  const period = pickPeriod(to - from, BUCKETS);
  const query = {
    from: Math.floor(from / period) * period,
    to: Math.ceil(to / period) * period,
    period: periodText(period),
  };
  const [avg, min, max] = await Promise.all(
    ["avg", "min", "max"].map((agg) => getAllResults(path, { ...query, agg })),
  );
  const byTime = (records) => new Map(records.map((record) => [record.timestamp, record[name]]));
  const mins = byTime(min);
  const maxs = byTime(max);
  const xs = avg.map((record) => record.timestamp);
  plan.textContent = `average per ${periodText(period)} with the min–max band: ${xs.length.toLocaleString()} buckets`;
  plan.dataset.period = periodText(period);
  return withGaps(
    xs,
    [avg.map((record) => record[name]), xs.map((x) => mins.get(x) ?? null), xs.map((x) => maxs.get(x) ?? null)],
    period,
  );
}

export async function render(main, { site, segments, params, tz }) {
  const [, , type, idText] = segments;
  const id = Number(idText);
  const title = `${type} ${id}`;
  setCrumbs([["Sites", linkTo([])], [`Site ${site}`, linkTo([site])], [title, ""]]);
  document.title = `${title} · site ${site} · storecast`;
  const [inventory, entry] = await Promise.all([getResults(paths.inventory(site)), catalogEntry("production", type)]);
  const series = inventory.find((s) => s.category === "production" && s.type === type && s.id === id);
  if (series === undefined) throw new Error(`Site ${site} has no equipment ${title}.`);
  const numeric = entry.attributes.filter((attribute) => attribute.kind !== "string");
  const attribute = numeric.find((a) => a.name === params.get("attr")) ?? mainAttribute(numeric);
  const full = [series.first_timestamp, series.last_timestamp + 1];
  const interval = series.count > 1 ? (series.last_timestamp - series.first_timestamp) / (series.count - 1) : SECOND;
  const path = paths.production(site, type, id);
  const plan = el("span", { class: "plan", id: "plan" });
  const chartElement = el("div", { class: "chart", id: "chart", role: "img", "aria-label": `${attribute.name} of ${title}` });
  fill(main,
    el("h1", {}, title),
    el(
      "div",
      { class: "toolbar" },
      select(
        "Attribute",
        numeric.map((a) => [a.name, `${a.name} (${a.unit}) — ${a.description}`]),
        attribute.name,
        (name) => navigateParams({ attr: name }),
        "attribute",
      ),
      rangeButtons(() => chart),
      plan,
    ),
    chartElement,
    el("p", { class: "muted" }, `${series.count.toLocaleString()} records, one every ${formatNumber(interval / SECOND)} s on average`),
  );
  const theme = colors();
  const chart = new TimeChart(chartElement, {
    tz,
    full,
    range: rangeParam(params, full),
    yLabel: attributeLabel(attribute),
    series: [
      { label: attributeLabel(attribute), stroke: theme.series[0], width: 1.5 },
      { label: "min", stroke: theme.band, width: 1 },
      { label: "max", stroke: theme.band, width: 1 },
    ],
    bands: [{ series: [3, 2], fill: theme.band }],
    onRange: (from, to) => replaceParams({ from, to }),
    load: (from, to) => {
      const covered = Math.max(0, Math.min(to, full[1]) - Math.max(from, full[0]));
      return covered / interval <= RAW_POINTS
        ? loadRaw(path, attribute.name, from, to, interval, plan)
        : loadAggregated(path, attribute.name, from, to, plan);
    },
  });
  return { destroy: () => chart.destroy(), key: (key) => chartKey(chart, key) };
}
