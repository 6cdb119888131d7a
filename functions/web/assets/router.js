// History routing under /ui/: real <a href> links (middle-click and "open in new tab" work),
// intercepted for plain left clicks; back/forward re-render through popstate.

/** The route of a pathname. */
export function parseRoute(pathname) {
  const path = pathname.replace(/\/+$/, "");
  if (path === "/ui" || path === "") return { name: "datasets" };
  let m = path.match(/^\/ui\/datasets\/([^/]+)$/);
  if (m) return { name: "dataset", id: decodeURIComponent(m[1]) };
  m = path.match(/^\/ui\/datasets\/([^/]+)\/images\/([^/]+)$/);
  if (m) return { name: "image", id: decodeURIComponent(m[1]), imageId: decodeURIComponent(m[2]) };
  return { name: "notfound" };
}

export const datasetHref = (id, search = "") => `/ui/datasets/${encodeURIComponent(id)}${search}`;
export const imageHref = (id, imageId, search = "") =>
  `/ui/datasets/${encodeURIComponent(id)}/images/${encodeURIComponent(imageId)}${search}`;

let onChange = () => {};
let path = "";
let search = "";

/** Replaces the URL without rendering (a page that already shows it, e.g. new filters). */
export function replaceUrl(url) {
  history.replaceState(null, "", url);
  path = location.pathname;
  search = location.search;
}

/** Pushes (or replaces) `url` and lets the app render it. */
export function navigate(url, { replace = false } = {}) {
  const before = location.pathname;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  onChange({ samePath: location.pathname === before, push: !replace });
}

/** Starts routing: `render({samePath, push, pop})` runs on every navigation. */
export function startRouter(render) {
  path = location.pathname;
  search = location.search;
  window.addEventListener("popstate", () => {
    // A fragment-only change (an in-page anchor) is not a new page.
    if (location.pathname === path && location.search === search) return;
    const samePath = location.pathname === path;
    path = location.pathname;
    search = location.search;
    render({ samePath, pop: true });
  });
  onChange = (info) => {
    path = location.pathname;
    search = location.search;
    render(info);
  };
  document.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const a = event.target instanceof Element ? event.target.closest("a[href]") : null;
    if (!a || (a.target && a.target !== "_self") || a.hasAttribute("download")) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !url.pathname.startsWith("/ui")) return;
    if (url.pathname === location.pathname && url.search === location.search && url.hash) return; // in-page anchor
    event.preventDefault();
    navigate(url.pathname + url.search + url.hash);
  });
}
