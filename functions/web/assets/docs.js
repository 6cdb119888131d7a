// The API reference at /docs: a plain, readable rendering of /docs/openapi.json (Swagger 2.0):
// every operation with its parameters and responses, then every definition, all with anchors.

import { h, richText } from "./dom.js";

const METHODS = ["get", "post", "put", "patch", "delete", "head", "options"];

const slug = (text) => String(text).replace(/[^A-Za-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "");
const opId = (method, path, op) => "op-" + slug(op.operationId || method + "-" + path);
const defId = (name) => `def-${slug(name)}`;

function resolve(spec, ref) {
  // Only local refs ("#/parameters/Cursor"): the spec is self-contained.
  if (!ref?.startsWith("#/")) return null;
  return ref.slice(2).split("/").reduce((node, key) => node?.[key.replace(/~1/g, "/").replace(/~0/g, "~")], spec);
}

function refName(ref) {
  return ref.split("/").pop();
}

function constraints(schema) {
  const out = [];
  const add = (label, v) => v !== undefined && out.push(`${label} ${typeof v === "string" ? v : JSON.stringify(v)}`);
  add("min", schema.minimum);
  add("max", schema.maximum);
  add("min length", schema.minLength);
  add("max length", schema.maxLength);
  add("min items", schema.minItems);
  add("max items", schema.maxItems);
  add("pattern", schema.pattern);
  add("default", schema.default);
  if (schema.additionalProperties === false) out.push("no other properties");
  return out;
}

/** A schema's type as inline nodes, with links to definitions. */
function typeOf(schema) {
  if (!schema) return "—";
  if (schema.$ref) return h("a", { href: `#${defId(refName(schema.$ref))}`, class: "type-ref" }, refName(schema.$ref));
  const parts = [];
  if (schema.type === "array") {
    parts.push("array of ", typeOf(schema.items));
  } else if (schema.type === "object" && schema.additionalProperties && typeof schema.additionalProperties === "object") {
    parts.push("map of string → ", typeOf(schema.additionalProperties));
  } else {
    parts.push(h("code", { class: "type" }, schema.type || (schema.properties ? "object" : "any")));
    if (schema.format) parts.push(h("span", { class: "muted" }, ` (${schema.format})`));
  }
  if (schema.enum) parts.push(" — one of ", schema.enum.map((v, i) => [i ? ", " : "", h("code", null, JSON.stringify(v))]));
  if (schema["x-nullable"]) parts.push(h("span", { class: "muted" }, " | null"));
  return h("span", { class: "type-expr" }, parts);
}

/** Properties table of an object schema; nested inline objects get their own table. */
function propertiesTable(schema) {
  const props = schema.properties || {};
  const required = new Set(schema.required || []);
  const names = Object.keys(props);
  if (!names.length) return null;
  return h("table", { class: "table docs-table" },
    h("thead", null, h("tr", null, h("th", { scope: "col" }, "Property"), h("th", { scope: "col" }, "Type"), h("th", { scope: "col" }, "Description"))),
    h("tbody", null, names.map((name) => {
      const p = props[name];
      const nested = nestedOf(p);
      const c = constraints(p);
      return h("tr", null,
        h("td", null, h("code", null, name), required.has(name) ? h("span", { class: "req", title: "required" }, " required") : null),
        h("td", null, typeOf(p)),
        h("td", null, p.description ? h("div", null, richText(p.description)) : null,
          c.length ? h("div", { class: "muted small" }, c.join(" · ")) : null,
          nested));
    })));
}

function nestedOf(schema) {
  if (!schema || schema.$ref) return null;
  if (schema.type === "object" && schema.properties) return propertiesTable(schema);
  if (schema.type === "array" && schema.items && !schema.items.$ref && schema.items.properties) return propertiesTable(schema.items);
  if (schema.additionalProperties && typeof schema.additionalProperties === "object" && schema.additionalProperties.properties) {
    return propertiesTable(schema.additionalProperties);
  }
  return null;
}

function parametersTable(spec, params) {
  if (!params.length) return h("p", { class: "muted" }, "No parameters.");
  return h("table", { class: "table docs-table" },
    h("thead", null, h("tr", null, ["Name", "In", "Type", "Required", "Description"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", null, params.map((raw) => {
      const p = raw.$ref ? { ...resolve(spec, raw.$ref) } : raw;
      const c = constraints(p);
      return h("tr", null,
        h("td", null, h("code", null, p.name)),
        h("td", null, p.in),
        h("td", null, p.in === "body" ? typeOf(p.schema) : typeOf(p)),
        h("td", null, p.required ? "yes" : "no"),
        h("td", null, p.description ? richText(p.description) : null, c.length ? h("div", { class: "muted small" }, c.join(" · ")) : null));
    })));
}

function responsesTable(responses) {
  const codes = Object.keys(responses || {});
  return h("table", { class: "table docs-table" },
    h("thead", null, h("tr", null, ["Status", "Description", "Body", "Headers"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", null, codes.map((code) => {
      const r = responses[code];
      const headers = Object.entries(r.headers || {});
      return h("tr", { "data-status": code },
        h("td", null, h("code", { class: ["status-code", `sc-${code[0]}`] }, code)),
        h("td", null, richText(r.description || "")),
        h("td", null, r.schema ? typeOf(r.schema) : h("span", { class: "muted" }, "—")),
        h("td", null, headers.length
          ? headers.map(([name, hd]) => h("div", null, h("code", null, name), " ", typeOf(hd), hd.description ? [" — ", richText(hd.description)] : null))
          : h("span", { class: "muted" }, "—")));
    })));
}

function operation(spec, path, method, op, pathParams) {
  const id = opId(method, path, op);
  const params = [...(pathParams || []), ...(op.parameters || [])];
  const security = op.security || spec.security || [];
  return h("section", { class: "docs-op card", id, "data-method": method, "data-path": path },
    h("h3", null,
      h("a", { href: `#${id}`, class: "anchor", "aria-label": `Link to ${method.toUpperCase()} ${path}` }, "#"),
      h("span", { class: ["method", `m-${method}`] }, method.toUpperCase()), " ", h("code", { class: "path" }, path)),
    op.summary ? h("p", { class: "summary" }, richText(op.summary)) : null,
    op.description ? h("p", null, richText(op.description)) : null,
    security.length ? h("p", { class: "muted small" }, "Auth: ", security.map((s) => Object.keys(s).join(" + ")).join(" or ")) : null,
    op.produces ? h("p", { class: "muted small" }, "Produces: ", op.produces.map((t, i) => [i ? ", " : "", h("code", null, t)])) : null,
    h("h4", null, "Parameters"), parametersTable(spec, params),
    h("h4", null, "Responses"), responsesTable(op.responses));
}

function definition(name, schema) {
  const id = defId(name);
  const required = schema.required?.length ? h("p", { class: "muted small" }, "Required: ", schema.required.map((r, i) => [i ? ", " : "", h("code", null, r)])) : null;
  return h("section", { class: "docs-def card", id },
    h("h3", null, h("a", { href: `#${id}`, class: "anchor", "aria-label": `Link to ${name}` }, "#"), h("code", null, name)),
    schema.description ? h("p", null, richText(schema.description)) : null,
    h("p", null, "Type: ", typeOf({ ...schema, description: undefined })),
    required,
    propertiesTable(schema) || nestedOf(schema));
}

function render(spec) {
  const main = document.getElementById("main");
  const toc = document.getElementById("docs-toc");
  const info = spec.info || {};
  document.title = `${info.title || "API"} reference`;
  const ops = [];
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const method of METHODS) if (item[method]) ops.push({ path, method, op: item[method], pathParams: item.parameters });
  }
  const defs = Object.entries(spec.definitions || {});
  const secDefs = Object.entries(spec.securityDefinitions || {});

  toc.replaceChildren(
    h("h2", null, "Operations"),
    h("ul", null, ops.map(({ path, method, op }) => h("li", null,
      h("a", { href: `#${opId(method, path, op)}` }, h("span", { class: ["method", "small", `m-${method}`] }, method.toUpperCase()), " ", h("span", { class: "path" }, path))))),
    h("h2", null, "Schemas"),
    h("ul", null, defs.map(([name]) => h("li", null, h("a", { href: `#${defId(name)}` }, name)))));

  main.replaceChildren(
    h("header", { class: "docs-head" },
      h("h1", null, info.title || "API", " ", h("span", { class: "tag" }, `v${info.version || "?"}`)),
      info.description ? h("p", null, richText(info.description)) : null,
      h("p", { class: "muted small" }, `Swagger ${spec.swagger || "2.0"}`,
        spec.basePath ? [" · base path ", h("code", null, spec.basePath)] : null,
        spec.consumes ? [" · consumes ", spec.consumes.join(", ")] : null,
        spec.produces ? [" · produces ", spec.produces.join(", ")] : null)),
    secDefs.length ? h("section", { id: "security", class: "card" },
      h("h2", null, "Authentication"),
      h("ul", null, secDefs.map(([name, d]) => h("li", null, h("code", null, name), `: ${d.type}`,
        d.in ? [" in ", d.in, " ", h("code", null, d.name)] : null, d.description ? [" — ", richText(d.description)] : null)))) : null,
    h("section", { id: "operations" }, h("h2", null, "Operations"),
      ops.map(({ path, method, op, pathParams }) => operation(spec, path, method, op, pathParams))),
    h("section", { id: "definitions" }, h("h2", null, "Schemas"),
      defs.map(([name, schema]) => definition(name, schema))));

  // The content arrived after load: honour a #anchor in the address now.
  if (location.hash.length > 1) document.getElementById(decodeURIComponent(location.hash.slice(1)))?.scrollIntoView();
}

async function boot() {
  const main = document.getElementById("main");
  try {
    // Served by the web function itself: no API key needed.
    const res = await fetch("/docs/openapi.json", { headers: { accept: "application/json" } });
    if (!res.ok) throw new Error(`openapi.json answered HTTP ${res.status}`);
    render(await res.json());
  } catch (err) {
    main.replaceChildren(h("div", { class: "alert alert-error", role: "alert" },
      h("strong", null, "The API description could not be loaded"), ` — ${err.message}. `,
      h("a", { href: "/docs/openapi.json" }, "Open openapi.json")));
  }
}

boot();
