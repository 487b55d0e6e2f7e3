// uPlot (vendor/uPlot.iife.min.js, the global `uPlot`) set up the console's way: theme colours from
// the CSS variables, times in UTC or local, and a time chart whose data follows its zoom.

import { formatTime } from "./time.js";
import { showError } from "./ui.js";

const uPlot = globalThis.uPlot;

export function available() {
  return typeof uPlot === "function";
}

export function colors() {
  const style = getComputedStyle(document.documentElement);
  const read = (name) => style.getPropertyValue(name).trim();
  return {
    fg: read("--fg"),
    muted: read("--muted"),
    grid: read("--grid"),
    band: read("--band"),
    series: [1, 2, 3, 4, 5, 6].map((n) => read(`--series-${n}`)),
  };
}

function tzDate(tz) {
  return tz === "local" ? (ms) => new Date(ms) : (ms) => uPlot.tzDate(new Date(ms), "Etc/UTC");
}

export function zoneName(tz) {
  return tz === "local" ? `local time (${Intl.DateTimeFormat().resolvedOptions().timeZone})` : "UTC";
}

// uPlot's time axis labels with 24-hour times and ISO dates: [tick increment (ms), its label, then what
// is added below the first label and wherever the year, month, day, hour, minute, second changes, mode].
const SECOND = 1000;
const DAY = 86400 * SECOND;
const TIME_LABELS = [
  [365 * DAY, "{YYYY}", null, null, null, null, null, null, 1],
  [28 * DAY, "{YYYY}-{MM}", "\n{YYYY}", null, null, null, null, null, 1],
  [DAY, "{MM}-{DD}", "\n{YYYY}", null, null, null, null, null, 1],
  [60 * SECOND, "{HH}:{mm}", "\n{YYYY}-{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
  [SECOND, "{HH}:{mm}:{ss}", "\n{YYYY}-{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
  [1, "{HH}:{mm}:{ss}.{fff}", "\n{YYYY}-{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
];

const AXIS_FONT = "12px system-ui, sans-serif";
// The least room between two time ticks: the widest line a label can have, and a gap. Each label is
// centred on its tick, so neighbours this far apart never touch (the first one's date included).
const TIME_LABEL_GAP = 10;
const TIME_SPACE = widestTimeLabel() + TIME_LABEL_GAP;

/** The width of the widest line TIME_LABELS can draw, in CSS px, every digit drawn as a 0. */
function widestTimeLabel() {
  const context = document.createElement("canvas").getContext("2d");
  context.font = AXIS_FONT;
  const patterns = TIME_LABELS.flatMap((row) => row.filter((item) => typeof item === "string"));
  const lines = patterns.flatMap((pattern) => pattern.split("\n"));
  const drawn = lines.map((line) => line.replace(/\{(\w+)\}/g, (_, token) => "0".repeat(token.length)));
  return Math.max(...drawn.map((line) => context.measureText(line).width));
}

/** An attribute as an axis or legend names it: its name, then its unit where the catalog has one. */
export function attributeLabel(attribute) {
  return attribute.unit && attribute.unit !== "-" ? `${attribute.name} (${attribute.unit})` : attribute.name;
}

function axisStyle(theme) {
  return { stroke: theme.muted, font: AXIS_FONT, grid: { stroke: theme.grid, width: 1 }, ticks: { stroke: theme.grid, width: 1 } };
}

function axes(theme, yLabel, xLabel = "") {
  const common = axisStyle(theme);
  return [
    { ...common, label: xLabel, labelSize: xLabel ? 20 : 0, values: TIME_LABELS, space: TIME_SPACE },
    { ...common, label: yLabel, labelSize: yLabel ? 20 : 0, size: 60 },
  ];
}

/** A series of a left-convention vector: each value holds from its timestamp to the next one's. */
export function stepSeries(label, stroke, options = {}) {
  return { label, stroke, width: 2, paths: uPlot.paths.stepped({ align: 1 }), points: { show: false }, ...options };
}
export const bars = () => uPlot.paths.bars({ size: [0.7, 60] });
export const join = (tables) => uPlot.join(tables);

/** Columns with a null inserted where consecutive timestamps are more than `maxStep` apart: uPlot breaks the line there. */
export function withGaps(xs, columns, maxStep) {
  const outX = [];
  const outColumns = columns.map(() => []);
  for (let i = 0; i < xs.length; i++) {
    if (i > 0 && xs[i] - xs[i - 1] > maxStep) {
      outX.push(xs[i - 1] + 1);
      outColumns.forEach((column) => column.push(null));
    }
    outX.push(xs[i]);
    columns.forEach((column, c) => outColumns[c].push(column[i]));
  }
  return [outX, ...outColumns];
}

function widthOf(element) {
  return Math.max(200, Math.floor(element.getBoundingClientRect().width));
}

function followWidth(element, plot, height) {
  const observer = new ResizeObserver(() => plot.setSize({ width: widthOf(element), height }));
  observer.observe(element);
  return observer;
}

/**
 * A time chart over [from, to[ whose data `load(from, to)` fetches again whenever the range changes:
 * drag to zoom on a span, the wheel to zoom around the pointer, double-click to reset, and pan/zoom/reset
 * from the toolbar or the keyboard. `onRange(from, to)` hears every change (the view writes it to the URL).
 */
export class TimeChart {
  constructor(element, { series, bands = [], tz, full, range, load, onRange, onDraw, height = 380, yLabel = "" }) {
    this.element = element;
    this.full = full;
    this.range = range ?? full;
    this.load = load;
    this.onRange = onRange;
    this.height = height;
    this.sequence = 0;
    this.timer = null;
    const theme = colors();
    const options = {
      width: widthOf(element),
      height,
      ms: 1,
      tzDate: tzDate(tz),
      series: [{ label: "time", value: (u, value) => (value === null ? "–" : formatTime(value, tz)) }, ...series],
      bands,
      scales: { x: { time: true } },
      axes: axes(theme, yLabel, zoneName(tz)),
      cursor: {
        drag: { x: true, y: false, setScale: true },
        bind: { dblclick: () => (event) => event.button === 0 && this.reset() },
      },
      hooks: { setScale: [(u, key) => key === "x" && this.scaled()], draw: onDraw ? [onDraw] : [] },
    };
    this.plot = new uPlot(options, [[], ...series.map(() => [])], element);
    // For the browser tests, and for anyone poking at the page from the devtools.
    element.uplot = this.plot;
    this.plot.over.addEventListener("wheel", (event) => this.wheel(event), { passive: false });
    this.observer = followWidth(element, this.plot, height);
    this.refresh();
  }

  destroy() {
    clearTimeout(this.timer);
    this.sequence++;
    this.observer.disconnect();
    this.plot.destroy();
  }

  scaled() {
    const { min, max } = this.plot.scales.x;
    if (min === null || max === null || min === undefined) return;
    if (Math.abs(min - this.range[0]) < 1 && Math.abs(max - this.range[1]) < 1) return;
    this.setRange(Math.round(min), Math.round(max));
  }

  setRange(from, to) {
    if (to - from < 1000) return; // below a second there is nothing more to see
    this.range = [from, to];
    this.onRange?.(from, to);
    this.plot.setScale("x", { min: from, max: to });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), 150);
  }

  pan(fraction) {
    const shift = Math.round((this.range[1] - this.range[0]) * fraction);
    this.setRange(this.range[0] + shift, this.range[1] + shift);
  }

  zoom(factor, centre = (this.range[0] + this.range[1]) / 2) {
    const [from, to] = this.range;
    this.setRange(Math.round(centre - (centre - from) * factor), Math.round(centre + (to - centre) * factor));
  }

  reset() {
    this.setRange(...this.full);
  }

  wheel(event) {
    event.preventDefault();
    const centre = this.plot.posToVal(event.offsetX, "x");
    this.zoom(event.deltaY < 0 ? 0.8 : 1.25, centre);
  }

  async refresh() {
    const sequence = ++this.sequence;
    const [from, to] = this.range;
    let data;
    try {
      data = await this.load(from, to);
    } catch (error) {
      if (sequence === this.sequence) showError(error);
      return;
    }
    if (sequence !== this.sequence || data === null) return; // a newer range is on its way
    this.plot.setData(data);
    // setData scaled x to the data; the view's range is what the reader chose.
    this.plot.setScale("x", { min: from, max: to });
  }
}

/** A small chart without axes or legend: the shape of one series. */
export function sparkline(element, data, tz) {
  const theme = colors();
  const height = 50;
  const plot = new uPlot(
    {
      width: widthOf(element),
      height,
      ms: 1,
      tzDate: tzDate(tz),
      legend: { show: false },
      cursor: { show: false },
      axes: [{ show: false }, { show: false }],
      scales: { x: { time: true } },
      series: [{}, { stroke: theme.series[0], width: 1.5, fill: theme.band }],
    },
    data,
    element,
  );
  element.uplot = plot;
  followWidth(element, plot, height);
  return plot;
}

/** A chart over a number axis (the horizon errors): `xLabel` says what x is. */
export function numberChart(element, { series, data, xLabel, yLabel, xValue, xPad = 0, height = 260 }) {
  const theme = colors();
  const options = {
    width: widthOf(element),
    height,
    series: [{ label: xLabel, value: (u, value) => (value === null ? "–" : xValue(value)) }, ...series],
    scales: { x: { time: false, range: (u, min, max) => [min - xPad, max + xPad] } },
    axes: [
      { ...axisStyle(theme), label: xLabel, labelSize: 20, values: (u, splits) => splits.map(xValue) },
      axes(theme, yLabel)[1],
    ],
    cursor: { drag: { x: false, y: false } },
  };
  const plot = new uPlot(options, data, element);
  element.uplot = plot;
  followWidth(element, plot, height);
  return plot;
}

/** The chart shortcuts of a view (← → pan, + − zoom, 0 reset); true when `key` was one. */
/** A view's keys with a vintage slider: [ and ] step through the vintages, the rest move the chart. */
export function vintageChartKey(vintagePicker, chart, key) {
  if (key === "[" || key === "]") {
    vintagePicker.step(key === "]" ? 1 : -1);
    return true;
  }
  return chartKey(chart, key);
}

export function chartKey(chart, key) {
  const actions = {
    ArrowLeft: () => chart.pan(-0.25),
    ArrowRight: () => chart.pan(0.25),
    "+": () => chart.zoom(0.5),
    "=": () => chart.zoom(0.5),
    "-": () => chart.zoom(2),
    0: () => chart.reset(),
  };
  const action = chart ? actions[key] : undefined;
  action?.();
  return action !== undefined;
}
