// Changing a dataset from its page: rename it in place, or delete it after a confirmation.
// A deleted dataset disappears from the API at once, so the page goes back to the list and
// leaves it a notice naming the deletion job.

import { deleteDataset, isAbort, renameDataset } from "./api.js";
import { errorBox, h } from "./dom.js";
import { navigate } from "./router.js";

let notice = null;

/** The message the last deletion left for the datasets page, once. */
export function takeNotice() {
  const taken = notice;
  notice = null;
  return taken;
}

/**
 * The Rename and Delete buttons of a dataset's header. `title` is the page's <h1>, swapped for
 * a form while renaming; `onRenamed(dataset)` gets the renamed dataset.
 */
export function datasetActions(dataset, { title, signal, onRenamed }) {
  const message = h("div", { id: "dataset-action-error" });
  const renameButton = h("button", { id: "rename-open", type: "button", class: "btn" }, "Rename");
  const deleteButton = h("button", { id: "delete-open", type: "button", class: "btn btn-danger" }, "Delete");

  // --- rename -------------------------------------------------------------------------------
  const input = h("input", { id: "rename-input", name: "name", value: dataset.name, maxlength: 200, required: true, "aria-label": "New name" });
  const form = h("form", { id: "rename-form", class: "rename-form", hidden: true },
    input,
    h("button", { id: "rename-submit", type: "submit", class: "btn btn-primary" }, "Save"),
    h("button", { id: "rename-cancel", type: "button", class: "btn btn-ghost" }, "Cancel"));
  const closeForm = () => {
    form.hidden = true;
    title.hidden = false;
    renameButton.hidden = false;
  };
  renameButton.addEventListener("click", () => {
    input.value = title.textContent;
    form.hidden = false;
    title.hidden = true;
    renameButton.hidden = true;
    input.focus();
    input.select();
  }, { signal });
  form.querySelector("#rename-cancel").addEventListener("click", closeForm, { signal });
  form.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      closeForm();
    }
  }, { signal });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    message.replaceChildren();
    const name = input.value.trim();
    if (!name || name === title.textContent) return closeForm();
    try {
      const renamed = await renameDataset(dataset.id, name, signal);
      title.textContent = renamed.name;
      document.title = `${renamed.name} — YDS`;
      closeForm();
      onRenamed?.(renamed);
    } catch (err) {
      if (!isAbort(err) && !err.unauthorized) message.replaceChildren(errorBox(err));
    }
  }, { signal });

  // --- delete -------------------------------------------------------------------------------
  const confirmButton = h("button", { id: "delete-confirm", type: "button", class: "btn btn-danger" }, "Delete dataset");
  const dialog = h("dialog", { id: "delete-dialog", class: "dialog", "aria-labelledby": "delete-title" },
    h("h2", { id: "delete-title" }, "Delete this dataset?"),
    h("p", null, "“", dataset.name, "”, its images, annotations and files are removed for good. An import still running is cancelled."),
    h("div", { class: "dialog-actions" },
      h("button", { id: "delete-cancel", type: "button", class: "btn btn-ghost" }, "Keep it"),
      confirmButton));
  deleteButton.addEventListener("click", () => dialog.showModal(), { signal });
  dialog.querySelector("#delete-cancel").addEventListener("click", () => dialog.close(), { signal });
  confirmButton.addEventListener("click", async () => {
    confirmButton.disabled = true;
    try {
      const job = await deleteDataset(dataset.id, signal);
      dialog.close();
      notice = { name: title.textContent, jobId: job.job_id };
      navigate("/ui/");
    } catch (err) {
      dialog.close();
      confirmButton.disabled = false;
      if (!isAbort(err) && !err.unauthorized) message.replaceChildren(errorBox(err));
    }
  }, { signal });
  signal.addEventListener("abort", () => dialog.open && dialog.close(), { once: true });

  return {
    form,
    buttons: h("div", { class: "ds-actions" }, renameButton, deleteButton, dialog),
    message,
  };
}
