// The live view of one import job: a <progress> bar plus files, chunks, rate and time left.
// Used by importing rows of the datasets table, the import panel and the dataset header.

import { h } from "./dom.js";
import { fmtDuration, fmtInt, fmtRate } from "./format.js";

export const STATUS_LABELS = {
  queued: "Queued",
  running: "Running",
  completed: "Completed",
  completed_with_errors: "Completed with errors",
  failed: "Failed",
  importing: "Importing",
  ready: "Ready",
};

export function statusBadge(status, attrs = {}) {
  return h("span", { class: ["badge", `status-${status}`], ...attrs }, STATUS_LABELS[status] || status);
}

/** A job's failure reason: its first error, else its first finding. */
export function failureReason(job) {
  const first = job?.errors?.[0] || job?.findings?.[0];
  if (!first) return null;
  const message = first.message || first.code || "unknown error";
  return first.file && !message.includes(first.file) ? `${message} (${first.file})` : message;
}

/**
 * A progress block. `update(state)` takes the watcher's {job, rate, eta, error}; `compact`
 * puts the details on one line (table rows).
 */
export function progressView({ compact = false, id } = {}) {
  const bar = h("progress", { class: "progress", max: 1, id: id ? `${id}-bar` : undefined, "aria-label": "Import progress" });
  bar.removeAttribute("value"); // indeterminate until the first sample
  const files = h("span", { class: "p-files" }, "Waiting for the job…");
  const chunks = h("span", { class: "p-chunks" });
  const rate = h("span", { class: "p-rate" });
  const eta = h("span", { class: "p-eta" });
  const error = h("span", { class: "p-error", hidden: true });
  const details = h("div", { class: ["p-details", compact && "compact"], "aria-live": "polite" }, files, chunks, rate, eta, error);
  const el = h("div", { class: ["progress-view", compact && "compact"], id }, bar, details);

  let lastText = "";
  function set(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function update({ job, rate: r, eta: left, error: err } = {}) {
    if (err && !err.unauthorized) {
      error.hidden = false;
      set(error, `Status unavailable: ${err.detail || err.message}`);
    } else {
      error.hidden = true;
    }
    if (!job) return;
    const p = job.progress || {};
    const total = p.files_total || 0;
    const done = p.files_done || 0;
    if (total > 0) {
      bar.max = total;
      bar.value = Math.min(done, total);
    } else if (job.status === "completed" || job.status === "completed_with_errors" || job.status === "failed") {
      bar.max = 1;
      bar.value = 1;
    }
    bar.dataset.status = job.status;
    const pct = Number.isFinite(p.percent) ? ` (${p.percent.toFixed(1)}%)` : "";
    const text = total > 0 ? `${fmtInt(done)} / ${fmtInt(total)} files${pct}` : job.status === "queued" ? "Queued…" : "Planning…";
    set(files, text);
    const failed = p.chunks_failed ? `, ${fmtInt(p.chunks_failed)} failed` : "";
    set(chunks, p.chunks_total ? `chunks ${fmtInt(p.chunks_done || 0)} / ${fmtInt(p.chunks_total)}${failed}` : "");
    const terminal = job.status === "completed" || job.status === "completed_with_errors" || job.status === "failed";
    set(rate, !terminal && Number.isFinite(r) && r > 0 ? fmtRate(r) : "");
    set(eta, terminal ? "" : Number.isFinite(left) ? `about ${fmtDuration(left)} left` : total > 0 ? "estimating time left…" : "");
    lastText = text;
  }

  return { el, bar, update, get text() { return lastText; } };
}
