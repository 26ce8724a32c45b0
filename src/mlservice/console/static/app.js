// The console's shell: sign-in, the navigation, and the views chosen by the URL's fragment.

import { ApiError, onExpired, session, signIn } from "./api.js";
import { clear, field, h } from "./dom.js";
import * as datasets from "./datasets.js";
import * as models from "./models.js";
import * as registry from "./registry.js";
import * as searches from "./searches.js";
import * as train from "./train.js";
import * as users from "./users.js";

const main = document.getElementById("main");
const flashBox = document.getElementById("flash");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const signOut = document.getElementById("sign-out");

// Views by the fragment's first part; each is render(view, ...rest of the path).
const VIEWS = {
  datasets: datasets.render,
  train: train.render,
  models: models.render,
  searches: searches.render,
  registry: registry.render,
  users: users.render,
};

let generation = 0;

// A message over the page (an error in the API's words, or news), until the next view.
function flash(message, kind = "error") {
  flashBox.hidden = !message;
  flashBox.className = kind;
  flashBox.textContent = message || "";
}

function showSignIn(message) {
  nav.hidden = true;
  signOut.hidden = true;
  who.textContent = "";
  clear(main);
  const username = h("input", { name: "username", autocomplete: "username", required: true, testid: "signin-username" });
  const password = h("input", {
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
    testid: "signin-password",
  });
  const error = h("p", { class: "form-error", role: "alert", testid: "signin-error" }, message || "");
  const button = h("button", { type: "submit", testid: "signin-submit" }, "Sign in");
  const form = h(
    "form",
    { class: "card signin", testid: "signin-form", "aria-label": "Sign in" },
    h("h1", {}, "Sign in"),
    field("User name", username),
    field("Password", password),
    error,
    h("div", { class: "actions" }, button),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    error.textContent = "";
    try {
      await signIn(username.value, password.value);
      if (!location.hash || location.hash === "#/signin") location.hash = "#/datasets";
      else route();
    } catch (problem) {
      error.textContent = problem.message;
      password.value = "";
      password.focus();
    } finally {
      button.disabled = false;
    }
  });
  main.append(form);
  (username.value ? password : username).focus();
}

function showShell(current) {
  nav.hidden = false;
  signOut.hidden = false;
  who.textContent = current.username + (current.role === "admin" ? " (admin)" : "");
  document.getElementById("nav-users").hidden = current.role !== "admin";
  const section = location.hash.split("/")[1] || "";
  for (const link of nav.querySelectorAll("a")) {
    const here = link.getAttribute("href") === "#/" + section;
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function route() {
  generation += 1;
  const mine = generation;
  flash("");
  const current = session.get();
  if (!current) {
    showSignIn("");
    return;
  }
  const [path, query] = location.hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (!parts.length || !(parts[0] in VIEWS)) {
    location.replace("#/datasets");
    return;
  }
  showShell(current);
  clear(main);
  const view = {
    main,
    query: new URLSearchParams(query || ""),
    alive: () => mine === generation,
    flash,
    go: (hash) => {
      location.hash = hash;
    },
  };
  try {
    await VIEWS[parts[0]](view, ...parts.slice(1));
  } catch (problem) {
    if (!(problem instanceof ApiError) || problem.status !== 401) {
      if (view.alive()) flash(problem.message || String(problem));
      if (!(problem instanceof ApiError)) console.warn(problem);
    }
  }
  if (view.alive()) main.focus({ preventScroll: true });
}

// The API refused the token: every view stops (its generation is over) and the sign-in form
// says why; signing in again re-opens the page of the address.
onExpired((message) => {
  generation += 1;
  flash("");
  showSignIn(message);
});

signOut.addEventListener("click", () => {
  generation += 1;
  session.clear();
  flash("You are signed out.", "info");
  showSignIn("");
});

window.addEventListener("hashchange", route);

route();
