// The dataset page (/ui/datasets/{id}): header, statistics as pictures, the class legend, and
// the image grid with its filters bound to the URL (?split=&class=&valid=&issue=).

import { getDataset, getJob, isAbort } from "./api.js";
import { classChart, duplicatesCard, findingsList, issueChart, legend, splitChart } from "./charts.js";
import { h } from "./dom.js";
import { apiQuery, filtersToSearch, parseFilters, queryKey } from "./filters.js";
import { fmtDate, fmtInt, timeAgo } from "./format.js";
import { createGrid, PAGE_SIZE } from "./grid.js";
import { watchJob } from "./jobs.js";
import { datasetActions } from "./manage.js";
import { failureReason, progressView, statusBadge } from "./progress.js";
import { datasetHref, replaceUrl } from "./router.js";
import { cachedList, imageList, rememberDataset } from "./store.js";

const LABELS_KEY = "yds.labels";

function labelsPreference() {
  try {
    return localStorage.getItem(LABELS_KEY) !== "off";
  } catch {
    return true;
  }
}

function saveLabelsPreference(on) {
  try {
    localStorage.setItem(LABELS_KEY, on ? "on" : "off");
  } catch {
    /* a preference only */
  }
}

// Codes about the dataset as a whole (besides its findings' codes): no image carries them.
const DATASET_LEVEL = new Set(["class_without_instances"]);

function stat(label, value, id, extraClass) {
  return h("div", { class: ["stat", extraClass], id }, h("div", { class: "stat-value" }, fmtInt(value ?? 0)), h("div", { class: "stat-label" }, label));
}

function card(id, title, ...content) {
  return h("section", { class: "card", id, "aria-labelledby": `${id}-title` }, h("h2", { id: `${id}-title` }, title), ...content);
}

function select(id, name, label, options, value) {
  const el = h("select", { id, name },
    options.map(([v, text]) => h("option", { value: v, selected: v === (value ?? "") }, text)));
  return h("div", { class: "field field-inline" }, h("label", { for: id }, label), el);
}

export async function render(main, route, ctx) {
  const { signal } = ctx;
  update = null;
  const filters = parseFilters(ctx.search);

  // The first page of images needs the class names only for a class filter: otherwise it is
  // fetched alongside the dataset, so both arrive in one round trip.
  const unfilteredQuery = apiQuery({ ...filters, class: undefined }, []).query;
  const previous = cachedList();
  const comingBack = Boolean(previous?.lastViewed) && filters.class === undefined
    && previous.key === queryKey(route.id, unfilteredQuery);
  let prefetched = false;
  if (filters.class === undefined && !comingBack) {
    imageList(route.id, unfilteredQuery, { fresh: true }).loadMore(signal, PAGE_SIZE).catch(() => {});
    prefetched = true;
  }

  const dataset = rememberDataset(await getDataset(route.id, signal));
  document.title = `${dataset.name} — YDS`;
  const hrefWith = (f) => datasetHref(dataset.id, filtersToSearch(f));
  // Codes no image carries (dataset findings, unused classes): no grid filter for them.
  const datasetLevel = new Set([...DATASET_LEVEL, ...(dataset.findings || []).map((f) => f.code)]);
  const isImageCode = (code) => !datasetLevel.has(code);
  // Only the codes images carry filter the grid (the API refuses the others with a 400).
  const issueCodes = Object.keys(dataset.statistics?.issues || {}).filter(isImageCode).sort();

  // --- header -------------------------------------------------------------------------------
  const counts = dataset.counts || {};
  const st = dataset.statistics || {};
  const title = h("h1", { id: "dataset-name" }, dataset.name);
  const crumb = h("span", { "aria-current": "page", id: "crumb-name" }, dataset.name);
  const actions = datasetActions(dataset, {
    title,
    signal,
    onRenamed: (renamed) => {
      crumb.textContent = renamed.name;
      rememberDataset({ ...dataset, name: renamed.name });
    },
  });
  const head = h("header", { class: "ds-head" },
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: "/ui/" }, "Datasets"), h("span", { "aria-hidden": "true" }, " / "),
      crumb),
    h("div", { class: "title-row" },
      title,
      actions.form,
      statusBadge(dataset.status, { id: "dataset-status", "data-status": dataset.status }),
      dataset.task ? h("span", { class: "tag", id: "dataset-task" }, dataset.task) : null,
      dataset.trainable === false ? h("span", { class: "badge status-failed", id: "dataset-not-trainable", title: "No train split: Ultralytics cannot train on it" }, "not trainable") : null,
      actions.buttons),
    actions.message,
    h("p", { class: "muted small" },
      "Created ", h("time", { datetime: dataset.created_at, title: fmtDate(dataset.created_at) }, timeAgo(dataset.created_at)),
      " · ", fmtInt(dataset.classes?.length || 0), " classes",
      dataset.kpt_shape ? ` · keypoints ${dataset.kpt_shape.join("×")}` : "",
      " · id ", h("code", null, dataset.id)),
    h("div", { class: "stats-row", id: "dataset-counts" },
      stat("Images", counts.images, "count-images"),
      stat("Annotations", counts.annotations, "count-annotations"),
      stat("Background images", counts.background_images, "count-background"),
      stat("Invalid images", counts.invalid_images, "count-invalid", counts.invalid_images > 0 && "stat-warn"),
      stat("Label files", st.labels, "count-labels"),
      stat("Invalid labels", st.invalid_labels, "count-invalid-labels", st.invalid_labels > 0 && "stat-warn"),
      stat("Duplicate rows removed", st.duplicate_rows_removed, "count-duplicate-rows")));

  if (dataset.status === "importing" && dataset.job_id) {
    const view = progressView({ id: "dataset-progress" });
    head.appendChild(view.el);
    watchJob(dataset.job_id, (state) => {
      view.update(state);
      // Done: show the final statistics (a fresh render refetches the dataset).
      if (state.terminal && !state.error) setTimeout(() => !signal.aborted && ctx.rerender(), 300);
    }, signal);
  } else if (dataset.status === "failed") {
    const reason = h("p", { class: "alert alert-error", id: "dataset-failure", role: "alert" }, "The import failed.");
    head.appendChild(reason);
    if (dataset.failure?.message) {
      reason.textContent = `The import failed: ${dataset.failure.message}`;
    } else if (dataset.job_id) {
      getJob(dataset.job_id, signal).then((job) => {
        reason.textContent = `The import failed: ${failureReason(job) || "no error was recorded"}`;
      }).catch((err) => {
        if (!isAbort(err) && !err.unauthorized) reason.textContent = `The import failed (status unavailable: ${err.detail || err.message}).`;
      });
    }
  }

  // --- statistics ---------------------------------------------------------------------------
  const unused = st.classes_without_instances || [];
  const cards = h("div", { class: "cards" },
    card("classes", "Classes",
      classChart(dataset.class_counts, { hrefFor: (name) => hrefWith({ class: name }), unused }),
      unused.length ? h("p", { class: "muted small", id: "classes-unused" }, `${fmtInt(unused.length)} classes have no instances.`) : null),
    h("div", { class: "card-stack" },
      card("splits", "Splits", splitChart(dataset.splits, { hrefFor: (split) => hrefWith({ split }) })),
      card("duplicates-card", "Duplicates and leakage", duplicatesCard(st.duplicates, { hrefFor: (issue) => hrefWith({ issue }) }))),
    h("div", { class: "card-stack" },
      card("issues", "Issues", issueChart(st.issues, { hrefFor: (issue) => hrefWith({ issue }), isImageCode })),
      card("findings-card", "Findings", findingsList(dataset.findings))));

  // --- filters + grid -----------------------------------------------------------------------
  const grid = createGrid({ dataset, signal });
  const labelsOn = labelsPreference();
  grid.grid.classList.toggle("labels-hidden", !labelsOn);
  const labelsToggle = h("input", { type: "checkbox", id: "toggle-labels", name: "labels", checked: labelsOn, role: "switch" });

  const splitNames = Object.keys(dataset.splits || {});
  const form = h("form", { id: "filters", class: "filters", role: "search", "aria-label": "Filter images" },
    select("filter-split", "split", "Split", [["", "All splits"], ...splitNames.map((s) => [s, s])], filters.split),
    select("filter-class", "class", "Class", [["", "All classes"], ...(dataset.classes || []).map((c) => [c, c])], filters.class),
    select("filter-valid", "valid", "Validity", [["", "All images"], ["true", "Valid only"], ["false", "Invalid only"]], filters.valid),
    select("filter-issue", "issue", "Issue", [["", "Any"], ...issueCodes.map((c) => [c, c])], filters.issue),
    h("label", { class: "toggle", for: "toggle-labels" }, labelsToggle, h("span", null, "Labels")),
    h("a", { id: "filter-reset", class: "btn btn-ghost", href: datasetHref(dataset.id) }, "Clear filters"));

  /** Sets the controls to `f` (adding an option for a value the dataset does not list). */
  function syncControls(f) {
    for (const [name, value] of Object.entries({ split: f.split, class: f.class, valid: f.valid, issue: f.issue })) {
      const control = form.elements.namedItem(name);
      const v = value ?? "";
      if (v && ![...control.options].some((o) => o.value === v)) control.appendChild(h("option", { value: v }, v));
      control.value = v;
    }
  }
  syncControls(filters);

  function readControls() {
    const f = {};
    for (const name of ["split", "class", "valid", "issue"]) {
      const v = form.elements.namedItem(name).value;
      if (v) f[name] = v;
    }
    return f;
  }

  form.addEventListener("submit", (e) => e.preventDefault(), { signal });
  form.addEventListener("change", (event) => {
    if (event.target === labelsToggle) {
      grid.grid.classList.toggle("labels-hidden", !labelsToggle.checked);
      saveLabelsPreference(labelsToggle.checked);
      return;
    }
    const f = readControls();
    replaceUrl(datasetHref(dataset.id, filtersToSearch(f)));
    grid.show(f).catch(() => {});
  }, { signal });

  const imagesSection = h("section", { class: "images-section", id: "images", "aria-labelledby": "images-title" },
    h("div", { class: "section-head" }, h("h2", { id: "images-title" }, "Images")),
    form,
    legend(dataset.classes),
    grid.el);

  main.replaceChildren(h("div", { class: "page page-dataset" }, head, cards, imagesSection));

  // Same page, new query (an issue, class or split link was followed): refilter in place.
  update = ({ search }) => {
    const f = parseFilters(search);
    syncControls(f);
    grid.show(f).catch(() => {});
    imagesSection.scrollIntoView({ block: "start" });
  };
  signal.addEventListener("abort", () => {
    update = null;
  }, { once: true });

  await grid.show(filters, { reuse: prefetched || comingBack });
}

let update = null;

/** Called by the app when only the query string changed; false when the page cannot (still
 * loading), so the app renders it afresh. */
function updateProxy(args) {
  if (!update) return false;
  update(args);
  return true;
}
export { updateProxy as update };
