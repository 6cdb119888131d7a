// The grid's filters: the page URL (?split=&class=NAME&valid=&issue=) ↔ the API query
// (split, class_id, valid, issue). Pure, so the image page and the grid agree exactly.

export const FILTER_KEYS = ["split", "class", "valid", "issue"];

/** Filters from a query string ("?split=train&class=cat"); unknown keys are dropped. */
export function parseFilters(search) {
  const params = new URLSearchParams(search || "");
  const f = {};
  for (const key of FILTER_KEYS) {
    const v = params.get(key);
    if (v !== null && v !== "") f[key] = v;
  }
  if (f.valid !== undefined && f.valid !== "true" && f.valid !== "false") delete f.valid;
  return f;
}

/** "?split=train&class=cat" (keys in a fixed order), or "" when no filter is set. */
export function filtersToSearch(filters) {
  const params = new URLSearchParams();
  for (const key of FILTER_KEYS) {
    const v = filters?.[key];
    if (v !== undefined && v !== null && v !== "") params.set(key, v);
  }
  const qs = params.toString();
  return qs ? `?${qs}` : "";
}

/**
 * The API query of filters, given the dataset's class names. `unknownClass` is set when the
 * class name is not one of the dataset's: nothing can match, so callers show the empty state.
 */
export function apiQuery(filters, classes) {
  const q = {};
  if (filters.split) q.split = filters.split;
  if (filters.valid) q.valid = filters.valid;
  if (filters.issue) q.issue = filters.issue;
  if (filters.class !== undefined) {
    const id = (classes || []).indexOf(filters.class);
    if (id < 0) return { query: q, unknownClass: true };
    q.class_id = id;
  }
  return { query: q, unknownClass: false };
}

/** A stable key of an API query, for the in-memory image list cache. */
export function queryKey(datasetId, query) {
  const parts = Object.keys(query).sort().map((k) => `${k}=${query[k]}`);
  return `${datasetId}?${parts.join("&")}`;
}
