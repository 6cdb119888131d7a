// Boot and routing: takes a #api_key=K fragment, shows sign-in without a key, and renders the
// page of the current /ui/ path. Each page gets an AbortSignal that fires when it is left, so
// its fetches, timers and listeners stop with it.

import { clearKey, getKey, isAbort, onUnauthorized, setKey } from "./api.js";
import * as datasetPage from "./dataset.js";
import * as datasetsPage from "./datasets.js";
import { errorBox, h } from "./dom.js";
import * as imagePage from "./image.js";
import { clearJobs } from "./jobs.js";
import { parseRoute, startRouter } from "./router.js";
import { renderSignIn } from "./signin.js";
import { clearStore } from "./store.js";

const PAGES = { datasets: datasetsPage, dataset: datasetPage, image: imagePage };

const main = document.getElementById("main");
const signout = document.getElementById("signout");

let current = null; // { route, page, controller }
let signInMessage = null;

/** Takes the key from a `#api_key=K` fragment, then removes it from the address bar. */
function takeFragmentKey() {
  if (!location.hash.startsWith("#")) return;
  const params = new URLSearchParams(location.hash.slice(1));
  const key = params.get("api_key");
  if (key === null) return;
  if (key.trim()) setKey(key.trim());
  params.delete("api_key");
  const rest = params.toString();
  history.replaceState(history.state, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
}

function leave() {
  current?.controller.abort();
  current = null;
}

function showSignIn() {
  leave();
  signout.hidden = true;
  const message = signInMessage;
  signInMessage = null;
  renderSignIn(main, {
    message,
    onSignedIn() {
      render({ focus: true });
    },
  });
}

function notFound() {
  document.title = "Not found — YDS";
  main.replaceChildren(h("section", { class: "empty-state" },
    h("h1", null, "Page not found"),
    h("p", null, h("a", { href: "/ui/" }, "Go to the datasets"))));
}

/** Renders the current URL. `samePath`: only the query changed (pages may update in place). */
function render({ samePath = false, push = false, focus = false } = {}) {
  if (!getKey()) {
    showSignIn();
    return;
  }
  signout.hidden = false;
  const route = parseRoute(location.pathname);
  if (samePath && current && current.page.update && current.route.name === route.name
    && current.page.update({ search: location.search, signal: current.controller.signal })) {
    return;
  }
  leave();
  const page = PAGES[route.name];
  if (!page) {
    notFound();
    return;
  }
  const controller = new AbortController();
  current = { route, page, controller };
  main.replaceChildren(h("p", { class: "muted page-loading" }, "Loading…"));
  main.setAttribute("aria-busy", "true");
  if (push) window.scrollTo(0, 0);
  const ctx = {
    signal: controller.signal,
    search: location.search,
    rerender: () => render(),
  };
  Promise.resolve()
    .then(() => page.render(main, route, ctx))
    .catch((err) => {
      if (isAbort(err) || err?.unauthorized || controller.signal.aborted) return;
      main.replaceChildren(h("section", { class: "page" }, errorBox(err, h("p", null, h("a", { href: "/ui/" }, "Back to the datasets")))));
    })
    .finally(() => {
      if (current?.controller === controller) main.removeAttribute("aria-busy");
    });
  // Move focus to the new page for keyboard and screen-reader users (not on first load).
  if (push || focus) main.focus({ preventScroll: true });
}

onUnauthorized((detail) => {
  if (!current && !getKey()) return; // already on the sign-in form
  signInMessage = `Signed out: ${detail}`;
  showSignIn();
});

signout.addEventListener("click", () => {
  clearKey();
  clearStore();
  clearJobs();
  signInMessage = "You are signed out.";
  showSignIn();
});

takeFragmentKey();
startRouter(render);
render();
