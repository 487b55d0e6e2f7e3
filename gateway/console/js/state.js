// The whole view lives in the URL hash, so any view can be bookmarked or sent:
//   #/                                   the sites
//   #/100                                site 100's overview
//   #/100/production/meter/3?attr=p&from=…&to=…
//   #/100/forecast/solar/1?actual=meter:3:p&vintage=…&horizon=6h&bucket=1h&from=…&to=…
//   #/100/commitment/1?forecast=solar:1&vintage=…
//   #/100/tariff?from=…&to=…
// and, everywhere, tz=utc|local. Navigating pushes a history entry; a change inside a view
// (zoom, a picker) replaces the current one, so Back leaves the view rather than undoing each zoom.

export function readHash() {
  const text = window.location.hash.replace(/^#/, "") || "/";
  const at = text.indexOf("?");
  const path = at < 0 ? text : text.slice(0, at);
  const params = new URLSearchParams(at < 0 ? "" : text.slice(at + 1));
  const segments = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { segments, params };
}

export function hashFor(segments, params) {
  const path = "/" + segments.map((segment) => encodeURIComponent(String(segment))).join("/");
  const query = params.toString();
  return "#" + path + (query ? "?" + query : "");
}

/** A link to another view: its segments and parameters, keeping the time zone. */
export function linkTo(segments, params = {}) {
  const next = new URLSearchParams();
  const tz = readHash().params.get("tz");
  if (tz) next.set("tz", tz);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) next.set(name, String(value));
  }
  return hashFor(segments, next);
}

/** Changes parameters of the current view in place (null removes one). */
export function replaceParams(changes) {
  const { segments, params } = readHash();
  for (const [name, value] of Object.entries(changes)) {
    if (value === null || value === undefined) params.delete(name);
    else params.set(name, String(value));
  }
  window.history.replaceState(null, "", hashFor(segments, params));
}

export function intParam(params, name) {
  const text = params.get(name);
  if (text === null || !/^[0-9]{1,16}$/.test(text)) return null;
  return Number(text);
}

export function timeZone() {
  return readHash().params.get("tz") === "local" ? "local" : "utc";
}

/** Goes to the current view with some parameters changed: a new history entry, and the view made anew. */
export function navigateParams(changes) {
  const { segments, params } = readHash();
  for (const [name, value] of Object.entries(changes)) {
    if (value === null || value === undefined) params.delete(name);
    else params.set(name, String(value));
  }
  window.location.hash = hashFor(segments, params);
}

/** The time range in the URL, if it holds a valid one, else `fallback`. */
export function rangeParam(params, fallback) {
  const from = intParam(params, "from");
  const to = intParam(params, "to");
  return from !== null && to !== null && to > from ? [from, to] : fallback;
}
