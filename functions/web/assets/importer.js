// The Import form: POST /datasets/import, then follow the job live to its terminal status and
// summarize it. The panel follows the latest import; every import also gets its table row.

import { isAbort, startImport } from "./api.js";
import { errorBox, h } from "./dom.js";
import { fmtInt } from "./format.js";
import { isTerminal, watchJob } from "./jobs.js";
import { failureReason, progressView, statusBadge, STATUS_LABELS } from "./progress.js";
import { datasetHref } from "./router.js";

const TASKS = ["detect", "segment", "pose", "obb"];

function newIdempotencyKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function field(id, label, input, hint) {
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    input,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null);
}

function urlInput(id, name, placeholder) {
  // type=text, not url: gs:// and file:// sources are valid here, and the server judges URLs.
  return h("input", { id, name, type: "text", inputmode: "url", autocomplete: "off", spellcheck: "false", placeholder, "aria-describedby": `${id}-hint` });
}

/** The summary of a terminal job. */
function summary(job) {
  const c = job.counts || {};
  const reason = job.status === "failed" ? failureReason(job) : null;
  const rows = [
    ["Images", c.images, "images"],
    ["Labels", c.labels, "labels"],
    ["Annotations", c.annotations, "annotations"],
    ["Invalid images", c.invalid_images, "invalid_images"],
    ["Invalid labels", c.invalid_labels, "invalid_labels"],
  ];
  const errors = (job.errors || []).slice(0, 5);
  return h("div", { id: "import-summary", class: ["import-summary", `status-${job.status}`], "data-status": job.status, role: "status" },
    h("h3", null, `Import ${(STATUS_LABELS[job.status] || job.status).toLowerCase()}`),
    reason ? h("p", { class: "fail-reason", id: "import-failure" }, reason) : null,
    h("dl", { class: "stats-dl", id: "import-counts" },
      rows.map(([label, v, key]) => h("div", { "data-count": key }, h("dt", null, label), h("dd", null, fmtInt(v ?? 0))))),
    errors.length
      ? h("div", { class: "import-errors" },
        h("h4", null, `First errors (${fmtInt(job.errors.length)} in the sample)`),
        h("ul", { id: "import-errors", class: "issues" },
          errors.map((e) => h("li", { "data-code": e.code }, h("code", null, e.code), " ", e.file ? h("span", { class: "file" }, e.file, ": ") : null, e.message))))
      : null,
    h("p", null, h("a", { id: "import-dataset-link", class: "btn", href: datasetHref(job.dataset_id) }, "Open the dataset →")));
}

/**
 * The Import panel (hidden until opened by the page's button). `onStarted(accepted, name)`
 * runs after a 202 so the page can add the dataset's row.
 */
export function importPanel({ signal, onStarted }) {
  let idempotencyKey = newIdempotencyKey();
  let follow = null; // AbortController of the job followed by the panel

  const name = h("input", { id: "import-name", name: "name", type: "text", required: true, maxlength: 200, autocomplete: "off" });
  const archiveUrl = urlInput("import-archive-url", "archive_url", "https://…/dataset.zip, gs://bucket/data.tar.gz, file:///data/set/");
  const configUrl = urlInput("import-config-url", "config_url", "https://…/data.yaml");
  const imagesUrl = urlInput("import-images-url", "images_url", "https://…/images.zip");
  const labelsUrl = urlInput("import-labels-url", "labels_url", "https://…/labels.zip");
  const chunkSize = h("input", { id: "import-chunk-size", name: "chunk_size", type: "number", min: 1, max: 10000, step: 1, inputmode: "numeric", placeholder: "default (500)" });
  const task = h("select", { id: "import-task", name: "task" },
    h("option", { value: "" }, "Auto (from the YAML and labels)"),
    TASKS.map((t) => h("option", { value: t }, t)));
  const srcArchive = h("input", { type: "radio", id: "import-source-archive", name: "source", value: "archive", checked: true });
  const srcParts = h("input", { type: "radio", id: "import-source-parts", name: "source", value: "parts" });

  const archiveGroup = h("div", { class: "source-group", id: "import-archive-fields" },
    field("import-archive-url", "Archive URL", archiveUrl, ".zip, .tar, .tar.gz or a folder holding data.yaml, images/ and labels/"));
  const partsGroup = h("div", { class: "source-group", id: "import-parts-fields", hidden: true },
    field("import-config-url", "Config (YAML) URL", configUrl, "The dataset's data.yaml"),
    field("import-images-url", "Images archive URL", imagesUrl, "An archive of the images/ tree"),
    field("import-labels-url", "Labels archive URL", labelsUrl, "An archive of the labels/ tree"));

  const error = h("div", { id: "import-error", class: "form-error", "aria-live": "assertive" });
  const submit = h("button", { id: "import-submit", type: "submit", class: "btn btn-primary" }, "Start import");
  const jobArea = h("div", { id: "import-job", class: "import-job", hidden: true, "aria-live": "polite" });

  function syncSource() {
    const parts = srcParts.checked;
    archiveGroup.hidden = parts;
    partsGroup.hidden = !parts;
    // Only the visible source is required (and sent).
    archiveUrl.required = !parts;
    for (const input of [configUrl, imagesUrl, labelsUrl]) input.required = parts;
  }
  syncSource();

  const form = h("form", { id: "import-form", class: "import-form", "aria-labelledby": "import-title" },
    h("h2", { id: "import-title" }, "Import a YOLO dataset"),
    field("import-name", "Name", name),
    h("fieldset", { class: "source" },
      h("legend", null, "Source"),
      h("div", { class: "radio-row" },
        h("label", { class: "radio", for: "import-source-archive" }, srcArchive, " One archive or folder"),
        h("label", { class: "radio", for: "import-source-parts" }, srcParts, " Config + images + labels")),
      archiveGroup, partsGroup),
    h("div", { class: "field-row" },
      field("import-chunk-size", "Chunk size (optional)", chunkSize, "Files per chunk, 1–10000"),
      field("import-task", "Task", task)),
    error,
    h("div", { class: "actions" }, submit));

  form.addEventListener("change", (e) => {
    if (e.target.name === "source") syncSource();
  }, { signal });
  // Another body needs another idempotency key; a double submit of the same one does not.
  form.addEventListener("input", () => {
    idempotencyKey = newIdempotencyKey();
  }, { signal });

  function body() {
    const b = { name: name.value.trim() };
    if (srcParts.checked) {
      b.config_url = configUrl.value.trim();
      b.images_url = imagesUrl.value.trim();
      b.labels_url = labelsUrl.value.trim();
    } else {
      b.archive_url = archiveUrl.value.trim();
    }
    if (chunkSize.value !== "") b.chunk_size = Number(chunkSize.value);
    if (task.value) b.task = task.value;
    return b;
  }

  function followJob(accepted, datasetName) {
    follow?.abort();
    follow = new AbortController();
    const done = follow;
    signal.addEventListener("abort", () => done.abort(), { once: true });
    const status = statusBadge("queued", { id: "import-status", "data-status": "queued" });
    const view = progressView({ id: "import-progress" });
    const result = h("div", { class: "import-result" });
    jobArea.hidden = false;
    jobArea.replaceChildren(
      h("div", { class: "import-job-head" },
        h("h3", null, "Importing ", h("span", { class: "ds-name" }, datasetName)), status),
      h("p", { class: "muted small" }, "Job ", h("code", { id: "import-job-id" }, accepted.job_id)),
      view.el, result);
    watchJob(accepted.job_id, (state) => {
      view.update(state);
      const job = state.job;
      if (job) {
        status.dataset.status = job.status;
        status.className = `badge status-${job.status}`;
        status.textContent = STATUS_LABELS[job.status] || job.status;
      }
      if (job && isTerminal(job.status)) {
        result.replaceChildren(summary(job));
        done.abort(); // stop following: terminal is final
      } else if (state.terminal && state.error) {
        result.replaceChildren(errorBox(state.error));
      }
    }, done.signal);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.replaceChildren();
    const b = body();
    submit.disabled = true;
    submit.textContent = "Starting…";
    form.setAttribute("aria-busy", "true");
    try {
      const accepted = await startImport(b, idempotencyKey, signal);
      idempotencyKey = newIdempotencyKey(); // the next submit is a new import
      followJob(accepted, b.name);
      onStarted?.(accepted, b.name);
    } catch (err) {
      if (isAbort(err) || err.unauthorized) return;
      error.replaceChildren(errorBox(err));
    } finally {
      submit.disabled = false;
      submit.textContent = "Start import";
      form.removeAttribute("aria-busy");
    }
  }, { signal });

  return h("section", { id: "import-panel", class: "card import-panel", hidden: true }, form, jobArea);
}
