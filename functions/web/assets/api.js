// The one way to call the API: adds the key header, turns problem+json answers into ApiError
// (so pages can show `detail`), drops the key on 401, and passes AbortSignals through.

const KEY_NAME = "yds.api_key";

export function getKey() {
  try {
    return sessionStorage.getItem(KEY_NAME) || null;
  } catch {
    return null; // storage disabled: the user signs in again each load
  }
}

export function setKey(key) {
  try {
    sessionStorage.setItem(KEY_NAME, key);
  } catch {
    /* ignored: see getKey */
  }
}

export function clearKey() {
  try {
    sessionStorage.removeItem(KEY_NAME);
  } catch {
    /* ignored */
  }
}

export class ApiError extends Error {
  constructor(status, title, detail, type) {
    super(detail || title);
    this.name = "ApiError";
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.type = type;
    this.unauthorized = status === 401;
  }
}

let unauthorizedHandler = () => {};

/** Called once per 401 with the problem's detail (the app shows the sign-in form). */
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

export function isAbort(err) {
  return err?.name === "AbortError";
}

/** "?a=1&b=x" from an object, skipping empty values (the API refuses empty parameters). */
export function queryString(query) {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `?${qs}` : "";
}

/**
 * fetch with the key. Resolves to the parsed JSON body; rejects with ApiError (or an
 * AbortError when `signal` fired, which callers ignore).
 */
export async function api(path, { method = "GET", query, body, signal, headers: extra } = {}) {
  const key = getKey();
  if (!key) {
    unauthorizedHandler("Sign in with an API key.");
    throw new ApiError(401, "Not signed in", "Sign in with an API key.");
  }
  const headers = { "x-api-key": key, accept: "application/json, application/problem+json", ...extra };
  if (body !== undefined) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(path + queryString(query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (err) {
    if (isAbort(err) || signal?.aborted) throw err;
    throw new ApiError(0, "Network error", "The service could not be reached. Check your connection and retry.");
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.status === 401) {
    const detail = data?.detail || "The API key was refused.";
    clearKey();
    unauthorizedHandler(detail);
    throw new ApiError(401, data?.title || "Unauthorized", detail, data?.type);
  }
  if (!res.ok) {
    const title = data?.title || res.statusText || `HTTP ${res.status}`;
    throw new ApiError(res.status, title, data?.detail || title, data?.type);
  }
  return data;
}

// Route helpers: one place that knows the paths.
const enc = encodeURIComponent;

export const listDatasets = (cursor, signal, limit = 50, name = undefined) =>
  api("/datasets", { query: { limit, cursor, name }, signal });
export const getDataset = (id, signal) => api(`/datasets/${enc(id)}`, { signal });
export const getJob = (jobId, signal) => api(`/datasets/import/${enc(jobId)}/status`, { signal });
export const getImage = (id, imageId, signal) => api(`/datasets/${enc(id)}/images/${enc(imageId)}`, { signal });
export const listImages = (id, query, cursor, limit, signal) =>
  api(`/datasets/${enc(id)}/images`, { query: { ...query, limit, cursor }, signal });
export const renameDataset = (id, name, signal) => api(`/datasets/${enc(id)}`, { method: "PATCH", body: { name }, signal });
export const deleteDataset = (id, signal) => api(`/datasets/${enc(id)}`, { method: "DELETE", signal });
export const startImport = (body, idempotencyKey, signal) =>
  api("/datasets/import", { method: "POST", body, signal, headers: idempotencyKey ? { "idempotency-key": idempotencyKey } : {} });

/** An image's bytes through the API (with the key), as a Blob: the fallback when an image
 * carries no signed file_url. */
export async function getImageFileBlob(id, imageId, signal) {
  const key = getKey();
  const res = await fetch(`/datasets/${enc(id)}/images/${enc(imageId)}/file`, { headers: { "x-api-key": key || "" }, signal });
  if (!res.ok) {
    let problem = null;
    try {
      problem = await res.json();
    } catch {
      problem = null;
    }
    if (res.status === 401) {
      clearKey();
      unauthorizedHandler(problem?.detail || "The API key was refused.");
    }
    throw new ApiError(res.status, problem?.title || `HTTP ${res.status}`, problem?.detail || res.statusText, problem?.type);
  }
  return res.blob();
}
