// The datasets page (/ui/): every dataset in a table, paged through next_cursor, importing rows
// live (progress from their job), failed rows with their job's reason, and the Import panel.

import { getDataset, getJob, isAbort, listDatasets } from "./api.js";
import { errorBox, h } from "./dom.js";
import { fmtDate, fmtInt, timeAgo } from "./format.js";
import { importPanel } from "./importer.js";
import { watchJob } from "./jobs.js";
import { pager } from "./pager.js";
import { failureReason, progressView, statusBadge } from "./progress.js";
import { takeNotice } from "./manage.js";
import { datasetHref, replaceUrl } from "./router.js";
import { rememberDataset } from "./store.js";

const PAGE_SIZE = 50;

export async function render(main, _route, { signal, search }) {
  document.title = "Datasets — YDS";
  const rows = new Map(); // dataset id → row controller
  let cursor = null;
  // The name filter (a prefix, as the API takes it), kept in the URL's `?name=`.
  let nameFilter = new URLSearchParams(search || "").get("name") || "";

  const body = h("tbody", { id: "datasets-body" });
  const table = h("table", { id: "datasets-table", class: "table datasets-table" },
    h("caption", { class: "sr-only" }, "Datasets, newest first"),
    h("thead", null, h("tr", null,
      h("th", { scope: "col" }, "Name"),
      h("th", { scope: "col" }, "Status"),
      h("th", { scope: "col" }, "Task"),
      h("th", { scope: "col", class: "num" }, "Images"),
      h("th", { scope: "col", class: "num" }, "Annotations"),
      h("th", { scope: "col", class: "num" }, "Invalid"),
      h("th", { scope: "col" }, "Created"))),
    body);
  const empty = h("div", { id: "datasets-empty", class: "empty-state", hidden: true },
    h("p", null, "No datasets yet."), h("p", { class: "muted" }, "Import one with the Import dataset button."));
  const listError = h("div", { id: "datasets-error" });
  const more = h("button", { id: "datasets-more", type: "button", class: "btn", hidden: true }, "Load more");
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });

  const panel = importPanel({
    signal,
    onStarted(accepted, name) {
      addNewDataset(accepted, name);
    },
  });
  const openButton = h("button", {
    id: "import-open",
    type: "button",
    class: "btn btn-primary",
    "aria-expanded": "false",
    "aria-controls": "import-panel",
  }, "Import dataset");
  openButton.addEventListener("click", () => {
    panel.hidden = !panel.hidden;
    openButton.setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) panel.querySelector("#import-name").focus();
  }, { signal });

  const searchBox = h("input", {
    id: "datasets-search", type: "search", name: "name", value: nameFilter, placeholder: "Name starts with…",
    "aria-label": "Filter datasets by the start of their name", autocomplete: "off",
  });
  const left = takeNotice();
  const notice = left
    ? h("p", { id: "datasets-notice", class: "alert alert-info", role: "status" },
      "Deleting “", left.name, "” (job ", h("code", null, left.jobId), "): it is gone from the list and its files are being removed.")
    : null;

  main.replaceChildren(h("section", { class: "page page-datasets", "aria-labelledby": "datasets-title" },
    h("div", { class: "page-head" }, h("h1", { id: "datasets-title" }, "Datasets"), searchBox, openButton),
    notice,
    panel,
    listError,
    h("div", { class: "table-wrap" }, table),
    empty,
    h("div", { class: "pager" }, more, sentinel)));

  // --- rows ---------------------------------------------------------------------------------

  function makeRow(dataset) {
    const tr = h("tr");
    const row = { tr, dataset, controller: null, refreshing: false };
    rows.set(dataset.id, row);
    signal.addEventListener("abort", () => row.controller?.abort(), { once: true });
    fillRow(row, dataset);
    return tr;
  }

  /** (Re)renders a row from its dataset and starts what its status needs. */
  function fillRow(row, dataset) {
    row.controller?.abort();
    row.controller = new AbortController();
    const rowSignal = row.controller.signal;
    row.dataset = dataset;
    rememberDataset(dataset);
    const { tr } = row;
    tr.dataset.datasetId = dataset.id;
    tr.dataset.status = dataset.status;
    const counts = dataset.counts || {};
    const status = h("td", { class: "c-status" }, statusBadge(dataset.status, { "data-role": "status" }));
    const images = h("td", { class: "num c-images" }, fmtInt(counts.images ?? 0));
    const annotations = h("td", { class: "num c-annotations" }, fmtInt(counts.annotations ?? 0));
    const invalid = h("td", { class: ["num", "c-invalid", counts.invalid_images > 0 && "has-invalid"] }, fmtInt(counts.invalid_images ?? 0));
    const time = h("time", { datetime: dataset.created_at, title: fmtDate(dataset.created_at), "data-created": dataset.created_at }, timeAgo(dataset.created_at));
    tr.replaceChildren(
      h("th", { scope: "row", class: "c-name" }, h("a", { class: "ds-link", href: datasetHref(dataset.id) }, dataset.name)),
      status,
      h("td", { class: "c-task" }, dataset.task ? h("span", { class: "tag" }, dataset.task) : h("span", { class: "muted" }, "—")),
      images, annotations, invalid,
      h("td", { class: "c-age" }, time));

    if (dataset.status === "importing" && dataset.job_id) {
      const view = progressView({ compact: true });
      view.el.dataset.jobId = dataset.job_id;
      status.appendChild(view.el);
      watchJob(dataset.job_id, (state) => {
        view.update(state);
        const c = state.job?.counts;
        if (c) {
          // Live counts while importing; the dataset's own arrive when it is ready.
          images.textContent = fmtInt(c.images ?? 0);
          annotations.textContent = fmtInt(c.annotations ?? 0);
          invalid.textContent = fmtInt(c.invalid_images ?? 0);
        }
        if (state.terminal) refreshRow(row);
      }, rowSignal);
    } else if (dataset.status === "failed") {
      const known = dataset.failure?.message;
      const reason = h("p", { class: "fail-reason", "data-role": "failure" }, known || (dataset.job_id ? "Finding out why…" : "The import failed."));
      status.appendChild(reason);
      if (!known && dataset.job_id) {
        getJob(dataset.job_id, rowSignal)
          .then((job) => {
            reason.textContent = failureReason(job) || "The import failed (no error was recorded).";
          })
          .catch((err) => {
            if (isAbort(err) || err.unauthorized) return;
            reason.textContent = `The import failed (its status is unavailable: ${err.detail || err.message}).`;
          });
      }
    }
  }

  /** After the job ended: fetch the dataset again until it left "importing". */
  async function refreshRow(row) {
    if (row.refreshing) return;
    row.refreshing = true;
    const rowSignal = row.controller.signal;
    try {
      for (let attempt = 0; attempt < 20 && !rowSignal.aborted; attempt += 1) {
        const fresh = await getDataset(row.dataset.id, rowSignal);
        if (fresh.status !== "importing" || attempt === 19) {
          fillRow(row, fresh);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    } catch (err) {
      if (isAbort(err) || err.unauthorized) return;
      row.tr.querySelector(".c-status")?.appendChild(h("p", { class: "fail-reason" }, err.detail || err.message));
    } finally {
      row.refreshing = false;
    }
  }

  async function addNewDataset(accepted, name) {
    if (rows.has(accepted.dataset_id)) return;
    empty.hidden = true;
    // The accepted import's row at once (importing), replaced by the real dataset when fetched.
    const placeholder = {
      id: accepted.dataset_id, name, status: "importing", created_at: new Date().toISOString(),
      task: null, job_id: accepted.job_id, counts: {},
    };
    body.prepend(makeRow(placeholder));
    try {
      const dataset = await getDataset(accepted.dataset_id, signal);
      const row = rows.get(dataset.id);
      if (!row || row.refreshing || row.dataset.status !== "importing") return; // the job got there first
      // Still importing: keep the row (and its job sample history), just learn the real record.
      if (dataset.status === "importing") row.dataset = dataset;
      else fillRow(row, dataset);
    } catch (err) {
      if (isAbort(err) || err.unauthorized) return;
      // The row keeps following the job; the error is not worth more than the row itself.
    }
  }

  // --- paging -------------------------------------------------------------------------------

  async function loadPage() {
    try {
      const asked = nameFilter;
      const page = await listDatasets(cursor, signal, PAGE_SIZE, nameFilter || undefined);
      if (asked !== nameFilter) return Boolean(cursor); // the filter changed meanwhile
      const fragment = document.createDocumentFragment();
      for (const dataset of page.items || []) {
        if (rows.has(dataset.id)) continue;
        fragment.appendChild(makeRow(dataset));
      }
      body.appendChild(fragment);
      listError.replaceChildren();
      cursor = page.next_cursor ?? null;
      empty.hidden = rows.size > 0;
      empty.firstChild.textContent = nameFilter ? `No dataset name starts with “${nameFilter}”.` : "No datasets yet.";
      return Boolean(cursor);
    } catch (err) {
      if (isAbort(err) || err.unauthorized) throw err;
      listError.replaceChildren(errorBox(err));
      return Boolean(cursor); // the button retries
    }
  }

  const paging = pager({ button: more, sentinel, load: loadPage, signal });
  const hasMore = await loadPage();
  paging.reset(hasMore);

  // Typing filters the list from its first page (after a short pause, not at every key).
  let typing = null;
  searchBox.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(async () => {
      const value = searchBox.value.trim();
      if (value === nameFilter) return;
      nameFilter = value;
      replaceUrl(value ? `/ui/?name=${encodeURIComponent(value)}` : "/ui/");
      for (const row of rows.values()) row.controller?.abort();
      rows.clear();
      body.replaceChildren();
      cursor = null;
      try {
        paging.reset(await loadPage());
      } catch {
        /* aborted or signed out: the app handles both */
      }
    }, 250);
  }, { signal });

  // Ages ("3 min ago") stay true while the page is open.
  const ages = setInterval(() => {
    for (const t of body.querySelectorAll("time[data-created]")) t.textContent = timeAgo(t.dataset.created);
  }, 30000);
  signal.addEventListener("abort", () => clearInterval(ages), { once: true });
}
