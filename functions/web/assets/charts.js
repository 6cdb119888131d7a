// Statistics drawn with HTML/CSS bars (widths through the --v custom property, which the CSP
// allows): classes, splits, issue codes, duplicates, findings, and the class colour legend.
// Everything comes from the Dataset object: nothing here scans images.

import { h } from "./dom.js";
import { fmtInt, humanize } from "./format.js";
import { classColor } from "./geometry.js";

const frac = (v, max) => (max > 0 ? Math.max(0, Math.min(1, v / max)) : 0);

export function swatch(classId) {
  return h("span", { class: "swatch", "aria-hidden": "true", vars: { "--c": classColor(classId) } });
}

function bar(kind, value, max, color) {
  return h("div", { class: "bar-track" },
    h("span", { class: ["bar", `bar-${kind}`], vars: { "--v": frac(value, max), ...(color ? { "--c": color } : {}) } }),
    h("span", { class: "bar-value" }, fmtInt(value)));
}

const SORTS = {
  name: (a, b) => String(a.name).localeCompare(String(b.name)) || a.class_id - b.class_id,
  instances: (a, b) => b.instances - a.instances || a.class_id - b.class_id,
  images: (a, b) => b.images - a.images || a.class_id - b.class_id,
};

/**
 * Instances and images per class as horizontal bars, sortable by name / instances / images.
 * `hrefFor(name)` links each class to the grid filtered by it.
 */
export function classChart(classCounts, { hrefFor, unused = [] }) {
  const unusedSet = new Set(unused);
  const counts = (classCounts || []).map((c) => ({ ...c, instances: c.instances || 0, images: c.images || 0 }));
  const maxInst = Math.max(0, ...counts.map((c) => c.instances));
  const maxImg = Math.max(0, ...counts.map((c) => c.images));
  const items = counts.map((c) => ({
    c,
    el: h("li", { class: ["bar-row", unusedSet.has(c.class_id) && "unused"], "data-class-id": c.class_id },
      h("a", { class: "bar-label", href: hrefFor(c.name), title: `Show images with ${c.name}` },
        swatch(c.class_id), h("span", { class: "name" }, c.name), h("span", { class: "class-id" }, `#${c.class_id}`)),
      h("div", { class: "bar-tracks" },
        bar("instances", c.instances, maxInst, classColor(c.class_id)),
        bar("images", c.images, maxImg, classColor(c.class_id)))),
  }));
  const list = h("ol", { id: "class-bars", class: "bars", "aria-label": "Instances and images per class" });
  const buttons = Object.keys(SORTS).map((key) =>
    h("button", { type: "button", class: "seg", "data-sort": key, "aria-pressed": "false", id: `class-sort-${key}` }, humanize(key)));
  function sortBy(key) {
    const sorted = [...items].sort((a, b) => SORTS[key](a.c, b.c));
    const fragment = document.createDocumentFragment();
    for (const item of sorted) fragment.appendChild(item.el);
    list.appendChild(fragment); // moves the existing rows: no rebuild
    for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.sort === key));
    list.dataset.sort = key;
  }
  for (const b of buttons) b.addEventListener("click", () => sortBy(b.dataset.sort));
  sortBy("instances");
  return h("div", { class: "class-chart", id: "class-chart" },
    h("div", { class: "chart-toolbar" },
      h("div", { class: "segmented", role: "group", "aria-label": "Sort classes by", id: "class-sort" },
        h("span", { class: "muted small" }, "Sort by"), buttons),
      h("div", { class: "chart-key", "aria-hidden": "true" },
        h("span", { class: "key key-instances" }, "instances"), h("span", { class: "key key-images" }, "images"))),
    counts.length ? list : h("p", { class: "muted" }, "No classes."));
}

/** Per-split counts: a table with a bar per column. */
export function splitChart(splits, { hrefFor }) {
  const names = Object.keys(splits || {});
  if (!names.length) return h("p", { class: "muted" }, "No splits.");
  const cols = [
    ["images", "Images"],
    ["annotations", "Annotations"],
    ["background_images", "Background"],
    ["invalid_images", "Invalid"],
  ];
  const max = Object.fromEntries(cols.map(([k]) => [k, Math.max(0, ...names.map((n) => splits[n]?.[k] || 0))]));
  return h("div", { class: "table-scroll" }, h("table", { class: "table split-table", id: "split-table" },
    h("caption", { class: "sr-only" }, "Counts per split"),
    h("thead", null, h("tr", null, h("th", { scope: "col" }, "Split"), cols.map(([, label]) => h("th", { scope: "col", class: "num" }, label)))),
    h("tbody", null, names.map((n) => h("tr", { "data-split": n },
      h("th", { scope: "row" }, h("a", { href: hrefFor(n) }, n)),
      cols.map(([k]) => h("td", { class: ["num", `c-${k}`] },
        h("span", { class: "cell-bar", vars: { "--v": frac(splits[n]?.[k] || 0, max[k]) } }),
        h("span", { class: "cell-value" }, fmtInt(splits[n]?.[k] || 0)))))))));
}

/** Issue codes with counts, most frequent first, each linking to the grid filtered by it. */
export function issueChart(issues, { hrefFor, isImageCode }) {
  const entries = Object.entries(issues || {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (!entries.length) return h("p", { class: "muted", id: "issue-list-empty" }, "No issues found.");
  const max = entries[0][1];
  return h("ul", { class: "issue-list", id: "issue-list" }, entries.map(([code, n]) =>
    h("li", { "data-issue": code },
      // Every code filters the grid; a dataset-level one (no image carries it) says so.
      h("a", {
        class: ["issue-link", !isImageCode(code) && "dataset-level"],
        href: hrefFor(code),
        "data-issue": code,
        title: isImageCode(code) ? `Show images with ${code}` : "A finding about the dataset itself (see Findings): no image carries it",
      }, h("code", null, code)),
      h("span", { class: "cell-bar", vars: { "--v": frac(n, max) } }),
      h("span", { class: "cell-value" }, fmtInt(n)))));
}

/** Exact duplicate files within a split and across splits (train/val leakage). */
export function duplicatesCard(duplicates, { hrefFor }) {
  const within = duplicates?.within_split || 0;
  const cross = duplicates?.cross_split || 0;
  const stat = (id, label, n, code, note) =>
    h("div", { class: ["stat", n > 0 && "stat-warn"], id },
      h("div", { class: "stat-value" }, fmtInt(n)),
      h("div", { class: "stat-label" }, label),
      h("div", { class: "stat-note" }, n > 0 ? h("a", { href: hrefFor(code) }, `Show ${code}`) : note));
  return h("div", { class: "stats-row", id: "duplicates" },
    stat("duplicates-within", "Duplicate images within a split", within, "duplicate_image", "None"),
    stat("duplicates-cross", "Images also in another split (leakage)", cross, "cross_split_duplicate", "No leakage"));
}

/** Dataset-level findings (orphan labels, missing list entries, …). */
export function findingsList(findings) {
  if (!findings?.length) return h("p", { class: "muted", id: "findings-empty" }, "No dataset-level findings.");
  return h("ul", { class: "findings issues", id: "findings" }, findings.map((f) =>
    h("li", { "data-code": f.code },
      h("code", null, f.code), " ",
      f.file ? h("span", { class: "file" }, f.file, ": ") : null,
      h("span", { class: "message" }, f.message))));
}

/** One colour per class with its name. Long lists fold into a <details>. */
export function legend(classes) {
  const items = (classes || []).map((name, id) =>
    h("li", { class: "legend-item", "data-class-id": id }, swatch(id), h("span", null, name)));
  const list = h("ul", { class: "legend", id: "legend", "aria-label": "Class colours" }, items);
  if (items.length <= 40) return list;
  return h("details", { class: "legend-details" }, h("summary", null, `Legend: ${fmtInt(items.length)} classes`), list);
}
