// Tiny DOM builders. Everything goes through textContent / attributes, never innerHTML:
// dataset and file names are user input, and the CSP forbids inline styles anyway.

const SVG_NS = "http://www.w3.org/2000/svg";

// Properties set as DOM properties rather than attributes (their live state matters).
const PROPS = new Set(["value", "checked", "selected", "disabled", "hidden", "indeterminate"]);

function apply(el, attrs, isSvg) {
  if (!attrs) return;
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "style") throw new Error("style attributes are blocked by the CSP: use classes or el.style.setProperty");
    if (key === "dataset") {
      for (const [k, v] of Object.entries(value)) if (v !== undefined && v !== null) el.dataset[k] = String(v);
    } else if (key === "on") {
      for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    } else if (key === "vars") {
      // CSS custom properties through the CSSOM, which the CSP allows.
      for (const [k, v] of Object.entries(value)) el.style.setProperty(k, String(v));
    } else if (key === "class" && !isSvg) {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (!isSvg && PROPS.has(key)) {
      el[key] = value;
    } else {
      const v = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
      el.setAttribute(key, v === true ? "" : String(v));
    }
  }
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (typeof child === "object") el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** h("a", {href, class}, "text", child, [more]) → HTMLElement. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs, false);
  append(el, children);
  return el;
}

/** Same for SVG elements. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs, true);
  append(el, children);
  return el;
}

/** Inline `code` spans in plain text (for API descriptions): text nodes and <code>, no HTML. */
export function richText(text) {
  const parts = String(text ?? "").split("`");
  return parts.map((part, i) => (i % 2 ? h("code", null, part) : part));
}

/** An error box showing a problem's detail. */
export function errorBox(err, extra) {
  const title = err?.title || "Something went wrong";
  const detail = err?.detail || err?.message || String(err);
  return h("div", { class: "alert alert-error", role: "alert" },
    h("strong", null, title), detail && detail !== title ? h("span", null, " — ", detail) : null, extra || null);
}
