// The image page (/ui/datasets/{id}/images/{image_id}): the full-size image with its overlay,
// annotations, issues and file facts; ←/→ walk the grid's filtered list (from memory when the
// grid loaded it, else page by page until found), Esc goes back to the grid.

import { getImage, getImageFileBlob, isAbort } from "./api.js";
import { swatch } from "./charts.js";
import { errorBox, h } from "./dom.js";
import { apiQuery, filtersToSearch, parseFilters } from "./filters.js";
import { fmtBytes, fmtInt, fmtPercent, round4 } from "./format.js";
import { annotationArea, browserFormat, imageAlt, noPreviewReason, unreadableCode, viewSize } from "./geometry.js";
import { knownTotal } from "./grid.js";
import { overlay } from "./overlay.js";
import { datasetHref, imageHref, navigate } from "./router.js";
import { datasetCached, imageList } from "./store.js";

const MAX_API_FILE = 32 * 1024 * 1024; // the /file route refuses larger files (422)
const WALK_PAGE = 1000; // pages fetched to find an image opened directly (fewer round trips)

const EXIF = {
  1: "normal",
  2: "mirrored horizontally",
  3: "rotated 180°",
  4: "mirrored vertically",
  5: "mirrored, rotated 90° counter-clockwise",
  6: "rotated 90° clockwise",
  7: "mirrored, rotated 90° clockwise",
  8: "rotated 90° counter-clockwise",
};

const DUPLICATE_CODES = new Set(["duplicate_image", "cross_split_duplicate"]);

const f4 = (v) => (typeof v === "number" ? String(round4(v)) : "—");
const pt = (p) => `(${f4(p[0])}, ${f4(p[1])})`;

function coordinates(ann) {
  if (Array.isArray(ann.obb)) return h("span", { class: "coords" }, ann.obb.map(pt).join(" "));
  const parts = [];
  if (Array.isArray(ann.bbox)) {
    const [cx, cy, w, hh] = ann.bbox;
    parts.push(h("span", { class: "coords" }, `cx ${f4(cx)}, cy ${f4(cy)}, w ${f4(w)}, h ${f4(hh)}`));
  }
  if (Array.isArray(ann.polygon)) {
    const text = ann.polygon.map(pt).join(" ");
    parts.push(ann.polygon.length > 6
      ? h("details", { class: "coords-more" }, h("summary", null, `${fmtInt(ann.polygon.length)} polygon points`), h("span", { class: "coords" }, text))
      : h("span", { class: "coords" }, `polygon ${text}`));
  }
  if (Array.isArray(ann.keypoints)) {
    const text = ann.keypoints.map((k) => (k.length > 2 ? `(${f4(k[0])}, ${f4(k[1])}, ${k[2]})` : pt(k))).join(" ");
    parts.push(h("details", { class: "coords-more" }, h("summary", null, `${fmtInt(ann.keypoints.length)} keypoints`), h("span", { class: "coords" }, text)));
  }
  return parts.length ? parts : h("span", { class: "muted" }, "—");
}

function shapeName(ann) {
  if (Array.isArray(ann.obb)) return "obb";
  if (Array.isArray(ann.keypoints)) return "pose";
  if (Array.isArray(ann.polygon)) return "polygon";
  if (Array.isArray(ann.bbox)) return "box";
  return "—";
}

function annotationsTable(img, svg) {
  const anns = img.annotations || [];
  if (!anns.length) return h("p", { class: "muted", id: "annotations-empty" }, "No annotations (a background image).");
  const rows = anns.map((ann, i) => {
    const area = annotationArea(ann);
    return h("tr", { "data-annotation-row": i, "data-class-id": ann.class_id },
      h("td", { class: "num" }, String(i + 1)),
      h("td", null, h("span", { class: "class-cell" }, swatch(ann.class_id), h("span", null, ann.class_name ?? `class ${ann.class_id}`), h("span", { class: "class-id" }, `#${ann.class_id}`))),
      h("td", null, shapeName(ann)),
      h("td", { class: "c-coords" }, coordinates(ann)),
      h("td", { class: "num" }, area === null ? "—" : fmtPercent(area, 2)));
  });
  const table = h("table", { class: "table annotations-table", id: "annotations-table" },
    h("caption", { class: "sr-only" }, "Annotations, coordinates normalized to 0–1"),
    h("thead", null, h("tr", null,
      h("th", { scope: "col", class: "num" }, "#"), h("th", { scope: "col" }, "Class"), h("th", { scope: "col" }, "Shape"),
      h("th", { scope: "col" }, "Coordinates (normalized)"), h("th", { scope: "col", class: "num" }, "Area"))),
    h("tbody", null, rows));
  // Pointing at a row highlights its shape on the image.
  const highlight = (i) => {
    svg.classList.toggle("has-hl", i !== null);
    for (const el of svg.querySelectorAll(".is-hl")) el.classList.remove("is-hl");
    if (i !== null) svg.querySelector(`[data-annotation="${i}"]`)?.classList.add("is-hl");
  };
  table.addEventListener("mouseover", (e) => {
    const tr = e.target.closest("tr[data-annotation-row]");
    highlight(tr ? tr.dataset.annotationRow : null);
  });
  table.addEventListener("mouseleave", () => highlight(null));
  return table;
}

function issuesList(img, datasetId) {
  const issues = img.issues || [];
  if (!issues.length) return h("p", { class: "muted", id: "image-no-issues" }, "No issues: Ultralytics' trainer would use this image as it is.");
  return h("ul", { class: "issues", id: "image-issues" }, issues.map((issue) =>
    h("li", { "data-code": issue.code },
      h("code", { class: "issue-code" }, issue.code),
      issue.line !== undefined && issue.line !== null ? h("span", { class: "line" }, `line ${issue.line}`) : null,
      h("span", { class: "message" }, issue.message),
      DUPLICATE_CODES.has(issue.code)
        ? h("a", { class: "dup-link", href: datasetHref(datasetId, filtersToSearch({ issue: issue.code })) }, `All ${issue.code} images →`)
        : null)));
}

function meta(img) {
  const row = (label, value, id) => h("div", { id }, h("dt", null, label), h("dd", null, value));
  const orient = img.exif_orientation;
  return h("dl", { class: "meta", id: "image-meta" },
    row("File", h("span", { class: "file" }, img.file_name), "meta-file"),
    row("Split", img.split, "meta-split"),
    row("Valid", img.valid ? "yes" : "no — Ultralytics' trainer would drop it", "meta-valid"),
    row("Format", img.format || "unknown", "meta-format"),
    row("Displayed size", `${fmtInt(img.width)} × ${fmtInt(img.height)} px`, "meta-size"),
    row("Stored size", img.stored_width !== undefined ? `${fmtInt(img.stored_width)} × ${fmtInt(img.stored_height)} px` : "—", "meta-stored-size"),
    row("EXIF orientation", orient ? `${orient} (${EXIF[orient] || "?"})` : "none", "meta-exif"),
    row("Bytes", `${fmtBytes(img.size_bytes)} (${fmtInt(img.size_bytes)} bytes)`, "meta-bytes"),
    row("Content hash (BLAKE3)", h("code", { class: "hash" }, img.content_hash || "—"), "meta-hash"),
    row("Image id", h("code", null, img.id), "meta-id"),
    img.file_url ? row("Original", h("a", { href: img.file_url, target: "_blank", rel: "noopener" }, "Open the file"), "meta-original") : null);
}

/** The full-size view: the file itself when browsers decode it, else the thumbnail, else a
 * placeholder; the overlay on top, labels shown. */
function viewer(img, dataset, signal) {
  const { W, H } = viewSize(img);
  const svg = overlay(img, { kptShape: dataset.kpt_shape, titles: true });
  const stage = h("div", { class: "stage" });
  const note = h("figcaption", { class: "muted small" }, `${fmtInt(img.width)} × ${fmtInt(img.height)} px`);
  const alt = imageAlt(img);
  let src = null;
  // The API's own /file route refuses files over 32 MiB (a storage-signed URL does not).
  const viaApi = img.file_url && new URL(img.file_url, location.href).origin === location.origin;
  if (browserFormat(img) && img.file_url && !(viaApi && img.size_bytes > MAX_API_FILE)) {
    src = img.file_url;
  } else if (!noPreviewReason(img)) {
    src = img.thumbnail_url;
    note.append(browserFormat(img)
      ? " · preview: the file is too large to be served through the API"
      : ` · preview: browsers cannot display ${String(img.format).toUpperCase()} files`);
  }
  if (src || (browserFormat(img) && img.size_bytes <= MAX_API_FILE)) {
    const el = h("img", { id: "image-full", alt, width: W, height: H, decoding: "async" });
    el.addEventListener("error", () => stage.classList.add("img-failed"), { once: true });
    if (src) {
      el.src = src;
    } else {
      // No signed URL: fetch the bytes with the key and show them from a blob: URL.
      getImageFileBlob(dataset.id, img.id, signal).then((blob) => {
        const url = URL.createObjectURL(blob);
        signal.addEventListener("abort", () => URL.revokeObjectURL(url), { once: true });
        el.src = url;
      }).catch((err) => {
        if (!isAbort(err) && !err.unauthorized) stage.classList.add("img-failed");
      });
    }
    stage.append(el);
  } else {
    const reason = unreadableCode(img) || noPreviewReason(img) || "no_preview";
    stage.classList.add("no-preview");
    stage.style.setProperty("--ratio", `${W} / ${H}`);
    stage.append(h("div", { class: "placeholder", role: "img", "aria-label": `${alt} (no preview: ${reason})` }, h("code", null, reason)));
  }
  stage.append(svg);
  // --k: viewBox units per screen pixel, so label text and keypoints keep their screen size.
  if ("ResizeObserver" in window) {
    const ro = new ResizeObserver(() => {
      const w = stage.clientWidth;
      const hh = stage.clientHeight;
      if (w && hh) svg.style.setProperty("--k", String(Math.max(W / w, H / hh)));
    });
    ro.observe(stage);
    signal.addEventListener("abort", () => ro.disconnect(), { once: true });
  }
  return { el: h("figure", { class: "viewer" }, stage, note), svg };
}

/** Where the image is in the filtered list: {index, prev, next} (index -1 when not in it). */
async function locate(list, imageId, signal, onProgress) {
  let i = list.indexOf(imageId);
  while (i < 0 && !list.done) {
    await list.loadMore(signal, WALK_PAGE);
    onProgress(list.items.length);
    i = list.indexOf(imageId);
  }
  if (i < 0) return { index: -1, prev: null, next: null };
  if (i === list.items.length - 1 && !list.done) await list.loadMore(signal, 100);
  return { index: i, prev: list.items[i - 1] || null, next: list.items[i + 1] || null };
}

export async function render(main, route, ctx) {
  const { signal } = ctx;
  const filters = parseFilters(ctx.search);
  const search = filtersToSearch(filters);
  const backHref = datasetHref(route.id, search);
  // Keys work from the first moment of the page (a quick → then Esc must not be lost while the
  // image loads); ←/→ wait for the neighbours inside `go`.
  let go = async () => {};
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    const t = e.target;
    if (t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName))) return;
    if (e.key === "ArrowLeft") {
      e.preventDefault();
      go(-1);
    } else if (e.key === "ArrowRight") {
      e.preventDefault();
      go(1);
    } else if (e.key === "Escape") {
      e.preventDefault();
      navigate(backHref);
    }
  }, { signal });
  const [dataset, img] = await Promise.all([datasetCached(route.id, signal), getImage(route.id, route.imageId, signal)]);
  document.title = `${img.file_name} — ${dataset.name} — YDS`;

  const prev = h("button", { type: "button", id: "image-prev", class: "btn", disabled: true, "aria-keyshortcuts": "ArrowLeft" }, "← Previous");
  const next = h("button", { type: "button", id: "image-next", class: "btn", disabled: true, "aria-keyshortcuts": "ArrowRight" }, "Next →");
  const position = h("span", { id: "image-position", class: "muted small", "aria-live": "polite" }, "Finding the image in the list…");
  const filterNote = Object.keys(filters).length
    ? h("span", { class: "filter-note muted small" }, "Filtered by ", Object.entries(filters).map(([k, v]) => h("span", { class: "tag" }, `${k}: ${v}`)))
    : null;

  const { el: figure, svg } = viewer(img, dataset, signal);
  const anns = img.annotations || [];

  main.replaceChildren(h("div", { class: "page page-image" },
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: "/ui/" }, "Datasets"), h("span", { "aria-hidden": "true" }, " / "),
      h("a", { href: backHref, id: "image-dataset-link" }, dataset.name), h("span", { "aria-hidden": "true" }, " / "),
      h("span", { "aria-current": "page" }, img.file_name)),
    h("div", { class: "image-toolbar" },
      h("a", { id: "image-back", class: "btn", href: backHref, "aria-keyshortcuts": "Escape" }, "↑ Grid"),
      prev, next, position, filterNote),
    h("div", { class: "title-row" },
      h("h1", { id: "image-name" }, img.file_name),
      h("span", { class: "tag" }, img.split),
      img.valid ? h("span", { class: "badge status-ready", id: "image-valid" }, "valid") : h("span", { class: "badge badge-invalid", id: "image-valid" }, "invalid")),
    figure,
    h("div", { class: "image-details" },
      h("section", { class: "card card-wide", "aria-labelledby": "annotations-title" },
        h("h2", { id: "annotations-title" }, `Annotations (${fmtInt(anns.length)})`),
        annotationsTable(img, svg)),
      h("section", { class: "card", "aria-labelledby": "issues-title" },
        h("h2", { id: "issues-title" }, `Issues (${fmtInt((img.issues || []).length)})`),
        issuesList(img, dataset.id)),
      h("section", { class: "card", "aria-labelledby": "file-title" },
        h("h2", { id: "file-title" }, "File"),
        meta(img)))));

  // --- neighbours in the current filter ------------------------------------------------------
  const { query, unknownClass } = apiQuery(filters, dataset.classes);
  let where = Promise.resolve({ index: -1, prev: null, next: null });
  if (!unknownClass) {
    const list = imageList(dataset.id, query);
    list.lastViewed = img.id; // the grid scrolls back to this tile
    where = locate(list, img.id, signal, (n) => {
      position.textContent = `Finding the image in the list… (${fmtInt(n)} scanned)`;
    });
    where.then(({ index, prev: p, next: n }) => {
      prev.disabled = !p;
      next.disabled = !n;
      if (p) prev.dataset.targetId = p.id;
      if (n) next.dataset.targetId = n.id;
      const total = list.done ? list.items.length : knownTotal(dataset, filters);
      const of = total === null || total === undefined ? fmtInt(list.items.length) + "+" : fmtInt(total);
      position.textContent = index < 0 ? "This image is not in the filtered list." : `${fmtInt(index + 1)} of ${of}`;
    }).catch((err) => {
      if (isAbort(err) || err.unauthorized) return;
      position.replaceChildren(errorBox(err));
    });
  } else {
    position.textContent = "";
  }

  go = async (direction) => {
    try {
      const w = await where;
      const target = direction < 0 ? w.prev : w.next;
      if (target && !signal.aborted) navigate(imageHref(dataset.id, target.id, search));
    } catch {
      /* shown in the toolbar already */
    }
  };
  prev.addEventListener("click", () => go(-1), { signal });
  next.addEventListener("click", () => go(1), { signal });
}
