// In-memory state shared between pages of one tab: datasets already fetched, and the image
// list of the last grid filters (so the image page finds its neighbours without refetching,
// and going back to the grid shows what was loaded, where it was).

import { getDataset, listImages } from "./api.js";
import { queryKey } from "./filters.js";

const datasets = new Map();

/** The dataset, from memory when this tab already fetched it (the image page needs only its
 * name, classes and kpt_shape, which do not change). */
export async function datasetCached(id, signal) {
  const hit = datasets.get(id);
  if (hit) return hit;
  return rememberDataset(await getDataset(id, signal));
}

export function rememberDataset(dataset) {
  if (dataset?.id) datasets.set(dataset.id, dataset);
  return dataset;
}

/** One filtered listing of a dataset's images, grown page by page through next_cursor. */
export class ImageList {
  constructor(datasetId, query) {
    this.datasetId = datasetId;
    this.query = query;
    this.key = queryKey(datasetId, query);
    this.items = [];
    this.index = new Map(); // image id → position, for O(1) neighbour lookups
    this.cursor = null;
    this.started = false;
    this.done = false;
    this.pending = null;
    this.pendingSignal = null;
    this.lastViewed = null; // the image page records where the user was
  }

  /** Fetches the next page (or joins the one in flight). Resolves to the new items. */
  loadMore(signal, limit = 100) {
    if (this.done) return Promise.resolve([]);
    // Join the request in flight unless its page was left (its signal fired): a page that
    // replaces another must not inherit the old page's abort.
    if (this.pending && !this.pendingSignal?.aborted) return this.pending;
    const p = listImages(this.datasetId, this.query, this.started ? this.cursor : undefined, limit, signal)
      .then((page) => {
        if (this.pending !== p) return []; // superseded: a newer request owns the cursor
        const fresh = [];
        for (const img of page.items || []) {
          if (this.index.has(img.id)) continue; // never twice, even if pages overlap
          this.index.set(img.id, this.items.length);
          this.items.push(img);
          fresh.push(img);
        }
        this.started = true;
        this.cursor = page.next_cursor ?? null;
        this.done = !this.cursor;
        return fresh;
      })
      .finally(() => {
        if (this.pending === p) this.pending = null;
      });
    this.pending = p;
    this.pendingSignal = signal;
    return p;
  }

  indexOf(imageId) {
    const i = this.index.get(imageId);
    return i === undefined ? -1 : i;
  }
}

let lastList = null;

/**
 * The list for these filters: the cached one when it matches (unless `fresh`), else a new one,
 * which replaces the cache.
 */
export function imageList(datasetId, query, { fresh = false } = {}) {
  const key = queryKey(datasetId, query);
  if (!fresh && lastList && lastList.key === key) return lastList;
  lastList = new ImageList(datasetId, query);
  return lastList;
}

/** The cached list, if any (to know whether the user is coming back to it). */
export function cachedList() {
  return lastList;
}

/** Forget everything (sign-out: another key may see other data). */
export function clearStore() {
  datasets.clear();
  lastList = null;
}
