// Times, periods and the choice of an aggregation period.

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

// Periods a chart may ask for: round numbers a reader recognises, each 2 to 3 times the last.
export const NICE_PERIODS = [
  SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 6 * HOUR, 12 * HOUR,
  DAY, 7 * DAY, 28 * DAY,
];

/** The smallest nice period that cuts `span` into at most `buckets` buckets. */
export function pickPeriod(span, buckets) {
  const wanted = span / buckets;
  return NICE_PERIODS.find((period) => period >= wanted) ?? Math.ceil(wanted / DAY) * DAY;
}

/** A period in the API's syntax (15m, 1h, 2d); whole seconds only, as the API takes. */
export function periodText(ms) {
  for (const [unit, size] of [["d", DAY], ["h", HOUR], ["m", MINUTE]]) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.max(1, Math.round(ms / SECOND))}s`;
}

export function parsePeriod(text) {
  const match = /^([0-9]{1,9})([smhd])$/.exec(text ?? "");
  if (match === null) return null;
  return Number(match[1]) * { s: SECOND, m: MINUTE, h: HOUR, d: DAY }[match[2]];
}

const utcFormat = new Intl.DateTimeFormat("en-GB", {
  timeZone: "UTC", year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});
const localFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
});

/** A timestamp for people: ISO-like with a trailing "UTC", or in the browser's own zone. */
export function formatTime(ms, tz) {
  if (ms === null || ms === undefined) return "–";
  if (tz === "local") return localFormat.format(new Date(ms));
  const parts = Object.fromEntries(utcFormat.formatToParts(new Date(ms)).map((part) => [part.type, part.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} UTC`;
}

export function formatDuration(ms) {
  if (ms === 0) return "0";
  const sign = ms < 0 ? "−" : "";
  let rest = Math.abs(ms);
  const parts = [];
  for (const [unit, size] of [["d", DAY], ["h", HOUR], ["m", MINUTE], ["s", SECOND]]) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return sign + (parts.join(" ") || `${ms}ms`);
}

export function formatNumber(value, unit = "") {
  if (value === null || value === undefined) return "–";
  // "negative": no sign on a zero, even a negative one or one rounded from a negative (a battery at rest is 0 kW).
  const text =
    typeof value === "number"
      ? value.toLocaleString(undefined, { maximumFractionDigits: 3, signDisplay: "negative" })
      : String(value);
  return unit && unit !== "-" ? `${text} ${unit}` : text;
}

/** The most common step between ascending timestamps (a forecast's period length). */
export function typicalStep(timestamps) {
  const counts = new Map();
  for (let i = 1; i < timestamps.length; i++) {
    const step = timestamps[i] - timestamps[i - 1];
    counts.set(step, (counts.get(step) ?? 0) + 1);
  }
  let best = null;
  for (const [step, count] of counts) if (best === null || count > counts.get(best)) best = step;
  return best;
}
