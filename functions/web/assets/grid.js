// The image grid of a dataset: thumbnail tiles with their annotation overlays, infinite scroll
// over next_cursor (100 per page), and a fresh listing whenever the filters change (the old
// listing's fetches are aborted and its pages can never land in the new one).

import { isAbort } from "./api.js";
import { errorBox, h } from "./dom.js";
import { apiQuery, filtersToSearch } from "./filters.js";
import { fmtInt } from "./format.js";
import { imageAlt, noPreviewReason, viewSize } from "./geometry.js";
import { overlay } from "./overlay.js";
import { pager } from "./pager.js";
import { imageHref } from "./router.js";
import { imageList } from "./store.js";

export const PAGE_SIZE = 100;

/** How many images match `filters`, when the Dataset object says so exactly (else null). */
export function knownTotal(dataset, filters) {
  const keys = Object.keys(filters);
  const counts = dataset.counts || {};
  if (!keys.length) return counts.images ?? null;
  if (keys.length > 1) return null;
  if (filters.split) return dataset.splits?.[filters.split]?.images ?? null;
  if (filters.class !== undefined) {
    const id = (dataset.classes || []).indexOf(filters.class);
    return dataset.class_counts?.find((c) => c.class_id === id)?.images ?? null;
  }
  if (filters.valid === "false") return counts.invalid_images ?? null;
  if (filters.valid === "true" && counts.images !== undefined) return counts.images - (counts.invalid_images || 0);
  return null;
}

export function createGrid({ dataset, signal }) {
  const kptShape = dataset.kpt_shape || null;
  const grid = h("div", { id: "image-grid", class: "grid", role: "region", "aria-label": "Images" });
  const status = h("p", { id: "grid-status", class: "grid-status muted", "aria-live": "polite" });
  const emptyTitle = h("p", { class: "empty-title" }, "No images match these filters.");
  const empty = h("div", { id: "grid-empty", class: "empty-state", hidden: true },
    emptyTitle,
    h("p", { class: "muted" }, "Change or clear the filters above."));
  const errorEl = h("div", { id: "grid-error" });
  const more = h("button", { id: "grid-more", type: "button", class: "btn", hidden: true }, "Load more");
  const sentinel = h("div", { id: "grid-sentinel", class: "sentinel", "aria-hidden": "true" });
  const el = h("div", { class: "grid-wrap" }, status, errorEl, grid, empty, h("div", { class: "pager" }, more, sentinel));

  let list = null;
  let controller = null;
  let search = "";
  let total = null;

  // A thumbnail that fails anyway (e.g. 422 for a file the thumbnailer cannot read) becomes a
  // placeholder. Error events do not bubble, hence the capturing listener.
  grid.addEventListener("error", (event) => {
    const img = event.target;
    if (img instanceof HTMLImageElement) img.closest(".tile-media")?.classList.add("img-failed");
  }, { capture: true, signal });

  // Label text and keypoint radius stay the same on screen: CSS scales them by
  // max(W, H) / --tile, the tile's width in pixels.
  if ("ResizeObserver" in window) {
    const ro = new ResizeObserver(() => {
      const media = grid.querySelector(".tile-media");
      if (media && media.clientWidth) grid.style.setProperty("--tile", String(media.clientWidth));
    });
    ro.observe(grid);
    signal.addEventListener("abort", () => ro.disconnect(), { once: true });
  }

  function tile(img) {
    const reason = noPreviewReason(img);
    const { W, H } = viewSize(img);
    const media = h("div", { class: ["tile-media", reason && "no-preview"] });
    if (!reason) {
      media.appendChild(h("img", { src: img.thumbnail_url, alt: imageAlt(img), loading: "lazy", decoding: "async", width: W, height: H }));
    } else {
      media.appendChild(h("div", { class: "placeholder", role: "img", "aria-label": `${imageAlt(img)} (no preview: ${reason})` },
        h("code", null, reason)));
    }
    media.appendChild(overlay(img, { kptShape }));
    if (!img.valid) {
      const codes = [...new Set((img.issues || []).map((i) => i.code))].join(", ");
      media.appendChild(h("span", { class: "badge badge-invalid", title: codes || "invalid" }, "invalid"));
    }
    const n = (img.annotations || []).length;
    const base = String(img.file_name).split("/").pop();
    return h("a", {
      class: ["tile", !img.valid && "is-invalid"],
      href: imageHref(dataset.id, img.id, search),
      "data-image-id": img.id,
      "data-valid": String(Boolean(img.valid)),
      "data-annotations": n,
    },
    media,
    h("span", { class: "tile-caption" },
      h("span", { class: "tile-name", title: img.file_name }, base),
      h("span", { class: "tile-meta" }, h("span", { class: "tile-split" }, img.split), h("span", null, `${n} ann.`))));
  }

  function append(items) {
    if (!items.length) return;
    const fragment = document.createDocumentFragment();
    for (const img of items) fragment.appendChild(tile(img));
    grid.appendChild(fragment); // one insertion per page: one layout
  }

  function updateStatus() {
    if (!list) return;
    const loaded = list.items.length;
    const t = list.done ? loaded : total;
    status.textContent = t === null || t === undefined
      ? `${fmtInt(loaded)} images loaded${list.done ? "" : ", more below"}`
      : `Showing ${fmtInt(loaded)} of ${fmtInt(t)} images`;
    empty.hidden = !(list.done && loaded === 0);
    emptyTitle.textContent = Object.keys(list.query).length ? "No images match these filters." : "This dataset has no images yet.";
    grid.hidden = loaded === 0;
  }

  async function loadNext() {
    const l = list;
    const c = controller;
    if (!l) return false;
    grid.setAttribute("aria-busy", "true");
    try {
      const fresh = await l.loadMore(c.signal, PAGE_SIZE);
      if (l !== list) return false; // the filters changed meanwhile
      append(fresh);
      errorEl.replaceChildren();
      return !l.done;
    } catch (err) {
      if (isAbort(err) || err.unauthorized || l !== list) return false;
      errorEl.replaceChildren(errorBox(err));
      return !l.done; // the button retries
    } finally {
      if (l === list) {
        grid.removeAttribute("aria-busy");
        updateStatus();
      }
    }
  }

  const paging = pager({ button: more, sentinel, load: loadNext, signal });

  /**
   * Shows the images matching `filters`. `reuse`: keep the cached listing of the same filters
   * (coming back from an image page, or a first page prefetched by the dataset page).
   */
  async function show(filters, { reuse = false } = {}) {
    controller?.abort();
    controller = new AbortController();
    const mine = controller;
    signal.addEventListener("abort", () => mine.abort(), { once: true });
    search = filtersToSearch(filters);
    total = knownTotal(dataset, filters);
    grid.replaceChildren();
    errorEl.replaceChildren();
    status.textContent = "Loading images…";
    empty.hidden = true;
    const { query, unknownClass } = apiQuery(filters, dataset.classes);
    if (unknownClass) {
      list = null;
      paging.reset(false);
      grid.hidden = true;
      empty.hidden = false;
      status.textContent = `No class named “${filters.class}” in this dataset.`;
      return;
    }
    list = imageList(dataset.id, query, { fresh: !reuse });
    const l = list;
    paging.reset(false);
    if (l.items.length) {
      append(l.items);
      updateStatus();
      paging.reset(!l.done);
      restoreFocus(l);
      return;
    }
    const hasMore = await loadNext();
    if (l === list) paging.reset(hasMore);
  }

  /** Back from an image page: scroll to and focus the tile of the image last viewed. */
  function restoreFocus(l) {
    const id = l.lastViewed;
    l.lastViewed = null;
    if (!id) return;
    const target = grid.querySelector(`[data-image-id="${CSS.escape(id)}"]`);
    if (target) {
      target.scrollIntoView({ block: "center" });
      target.focus({ preventScroll: true });
    }
  }

  return { el, grid, show, get list() { return list; } };
}
