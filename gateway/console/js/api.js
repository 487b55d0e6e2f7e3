// The API as the console reads it: GETs on /v1 and /ext/v1 with the page's own client certificate
// (the browser presents it in the TLS handshake; nothing here holds a credential).

export class ApiError extends Error {
  constructor(httpStatus, code, message) {
    super(code ? `${message} (${code})` : message);
    this.httpStatus = httpStatus;
    this.code = code;
  }
}

function urlOf(path, query = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
  }
  return url;
}

/** One GET: the v1 envelope of a 200 or 206, else an ApiError with the API's status. */
export async function getEnvelope(path, query = {}) {
  const response = await fetch(urlOf(path, query), { headers: { accept: "application/json" } });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(response.status, null, `HTTP ${response.status} from ${path}`);
  }
  if (!response.ok) throw new ApiError(response.status, body.status_code, body.status_message);
  return body;
}

export async function getResults(path, query = {}) {
  return (await getEnvelope(path, query)).results;
}

/** Every record of a range, following next_from through partial (206) answers, at most maxPages requests. */
export async function getAllResults(path, query, maxPages = 20) {
  let results = [];
  let current = { ...query };
  for (let page = 0; page < maxPages; page++) {
    const body = await getEnvelope(path, current);
    results = results.concat(body.results);
    if (body.next_from === undefined) return results;
    current = { ...current, from: body.next_from };
  }
  return results;
}

const cache = new Map();

/** Answers that do not change while the page is open (the catalog), fetched once. */
export function getCached(path) {
  if (!cache.has(path)) {
    cache.set(
      path,
      getResults(path).catch((error) => {
        cache.delete(path);
        throw error;
      }),
    );
  }
  return cache.get(path);
}

export const paths = {
  sites: () => "/ext/v1/sites",
  catalog: () => "/ext/v1/catalog",
  inventory: (site) => `/ext/v1/${site}/inventory`,
  production: (site, type, id) => `/v1/${site}/production/${encodeURIComponent(type)}/${id}`,
  forecast: (site, type, id) => `/v1/${site}/forecast/${encodeURIComponent(type)}/${id}`,
  commitment: (site, id) => `/v1/${site}/commitment/${id}`,
  tariff: (site, id) => `/v1/${site}/tariff/${id}`,
  staircase: (site, type, id) => `/ext/v1/${site}/forecast/${encodeURIComponent(type)}/${id}/staircase`,
  horizonErrors: (site, type, id) => `/ext/v1/${site}/forecast/${encodeURIComponent(type)}/${id}/horizon-errors`,
};

/** The attributes of a catalog entry by name: {name: {kind, unit, description}}. */
export async function catalogEntry(category, type) {
  const catalog = await getCached(paths.catalog());
  const entry = catalog.find((item) => item.category === category && (type === null || item.type === type));
  return entry ?? { attributes: [] };
}

/** The vintages (creation timestamps, ascending) of a forecast or commitment, without their periods. */
export async function vintagesOf(path, series) {
  const vectors = await getResults(
    path,
    {
      "generated-after": series.first_creation_timestamp,
      "generated-before": series.last_creation_timestamp + 1,
      "generate-all": "true",
      // Periods in [0, 1[: none, so each vector comes back with "values": [] (docs/api/v1.md §7).
      from: 0,
      to: 1,
    },
  );
  return vectors.map((vector) => vector.creation_timestamp);
}

/** The one vector created at `creation` (the latest one when creation is null). */
export async function vintage(path, creation) {
  const query = creation === null ? {} : { "generated-after": creation, "generated-before": creation + 1 };
  const vectors = await getResults(path, query);
  return vectors[0] ?? null;
}
