// A site at a glance: every equipment with its latest values and a sparkline, then the site's
// forecasts, commitments and tariffs (GET /ext/v1/{site}/inventory), each a link to its view.

import { catalogEntry, getResults, paths } from "../api.js";
import { sparkline } from "../chart.js";
import { linkTo } from "../state.js";
import { DAY, MINUTE, formatDuration, formatNumber, formatTime, periodText, pickPeriod } from "../time.js";
import { el, fill, setCrumbs, showError } from "../ui.js";

const SPARK_WINDOW = DAY;
const SPARK_BUCKETS = 120;

/** The attribute a sparkline shows: active power when the type has it, else its first number. */
export function mainAttribute(attributes) {
  const numbers = attributes.filter((attribute) => attribute.kind !== "string");
  return numbers.find((attribute) => attribute.name === "p") ?? numbers[0] ?? null;
}

async function fillCard(card, site, series, tz) {
  const { attributes } = await catalogEntry("production", series.type);
  const path = paths.production(site, series.type, series.id);
  const last = series.last_timestamp;
  const [latest] = await getResults(path, { from: last, to: last + 1 });
  const values = card.querySelector(".latest");
  values.replaceChildren(
    ...attributes.flatMap((attribute) => [
      el("dt", {}, attribute.name),
      el("dd", { dataset: { attribute: attribute.name } }, formatNumber(latest?.[attribute.name], attribute.unit)),
    ]),
  );
  const shown = mainAttribute(attributes);
  if (shown === null) return;
  const window = Math.min(SPARK_WINDOW, last + 1 - series.first_timestamp);
  const period = pickPeriod(window, SPARK_BUCKETS);
  const from = Math.floor((last + 1 - window) / period) * period;
  const to = Math.ceil((last + 1) / period) * period;
  const points = await getResults(path, { from, to, agg: "avg", period: periodText(period) });
  const spark = card.querySelector(".sparkline");
  const caption = `${shown.name} (${shown.unit}), the last ${formatDuration(Math.round(window / MINUTE) * MINUTE)}`;
  spark.setAttribute("aria-label", caption);
  card.querySelector(".spark-caption").textContent = caption;
  sparkline(spark, [points.map((point) => point.timestamp), points.map((point) => point[shown.name])], tz);
}

function equipmentCard(site, series, tz) {
  const title = `${series.type} ${series.id}`;
  const card = el(
    "article",
    { class: "card", dataset: { equipment: `${series.type}:${series.id}` } },
    el("h3", {}, el("a", { href: linkTo([site, "production", series.type, series.id]) }, title)),
    el("div", { class: "when" }, `latest ${formatTime(series.last_timestamp, tz)} · ${series.count.toLocaleString()} records`),
    el("dl", { class: "latest" }),
    el("div", { class: "sparkline", role: "img" }),
    el("div", { class: "when spark-caption" }),
  );
  fillCard(card, site, series, tz).catch(showError);
  return card;
}

function vectorTable(site, rows, columns) {
  return el(
    "table",
    { class: "list" },
    el("thead", {}, el("tr", {}, columns.map(([name]) => el("th", { scope: "col" }, name)))),
    el("tbody", {}, rows.map((row) => el("tr", {}, columns.map(([, cell]) => el("td", {}, cell(row)))))),
  );
}

export async function render(main, { site, tz }) {
  setCrumbs([["Sites", linkTo([])], [`Site ${site}`, linkTo([site])]]);
  document.title = `Site ${site} · storecast`;
  const inventory = await getResults(paths.inventory(site));
  const of = (category) => inventory.filter((series) => series.category === category);
  const production = of("production");
  const forecasts = of("forecast");
  const commitments = of("commitment");
  const tariffs = of("tariff");
  const vintageColumns = [
    ["vintages", (s) => s.count.toLocaleString()],
    ["first created", (s) => formatTime(s.first_creation_timestamp, tz)],
    ["last created", (s) => formatTime(s.last_creation_timestamp, tz)],
    ["periods up to", (s) => formatTime(s.last_timestamp, tz)],
  ];
  fill(main,
    el("h1", {}, `Site ${site}`),
    inventory.length === 0 ? el("p", { class: "muted" }, "Nothing is stored for this site.") : null,
    production.length ? el("h2", {}, "Equipment") : null,
    production.length ? el("div", { class: "cards", id: "equipment" }, production.map((s) => equipmentCard(site, s, tz))) : null,
    forecasts.length ? el("h2", {}, "Forecasts") : null,
    forecasts.length
      ? vectorTable(site, forecasts, [
          ["forecast", (s) => el("a", { href: linkTo([site, "forecast", s.type, s.id]) }, `${s.type} ${s.id}`)],
          ...vintageColumns,
        ])
      : null,
    commitments.length ? el("h2", {}, "Commitments") : null,
    commitments.length
      ? vectorTable(site, commitments, [
          ["commitment", (s) => el("a", { href: linkTo([site, "commitment", s.id]) }, `commitment ${s.id}`)],
          ...vintageColumns,
        ])
      : null,
    tariffs.length ? el("h2", {}, "Tariffs") : null,
    tariffs.length
      ? el(
          "p",
          {},
          el("a", { href: linkTo([site, "tariff"]) }, "Tariff timeline"),
          ` · ${tariffs.map((s) => `tariff ${s.id} (${s.count} periods)`).join(", ")}`,
        )
      : null,
  );
  return {};
}
