// The sign-in form: the API key lives in sessionStorage (this tab only), never in the URL.

import { setKey } from "./api.js";
import { h } from "./dom.js";

/** Renders the form into `main`; `onSignedIn()` runs once a key is stored. */
export function renderSignIn(main, { message, onSignedIn }) {
  document.title = "Sign in — YDS";
  const input = h("input", {
    id: "api-key",
    name: "api_key",
    type: "password",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "api-key-help",
  });
  const form = h("form", {
    id: "signin-form",
    class: "card signin-card",
    on: {
      submit(event) {
        event.preventDefault();
        const key = input.value.trim();
        if (!key) {
          input.focus();
          return;
        }
        setKey(key);
        onSignedIn();
      },
    },
  },
  h("h1", null, "Sign in"),
  message ? h("p", { id: "signin-message", class: "alert alert-warn", role: "alert" }, message) : null,
  h("div", { class: "field" },
    h("label", { for: "api-key" }, "API key"),
    input,
    h("p", { id: "api-key-help", class: "hint" }, "The key is kept in this browser tab only and sent as the x-api-key header.")),
  h("div", { class: "actions" }, h("button", { id: "signin-submit", type: "submit", class: "btn btn-primary" }, "Sign in")));
  main.replaceChildren(h("section", { class: "signin", "aria-labelledby": "signin-title" }, form));
  form.querySelector("h1").id = "signin-title";
  input.focus();
}
