// Searches: start a hyperparameter search or AutoML on a data set, follow its leaderboard live,
// cancel it, open the best model, see its report.

import * as api from "./api.js";
import { append, clear, confirmDialog, field, h, num, progress, table, when } from "./dom.js";
import { dataPart, estimators, guessTask, readyDatasets } from "./train.js";

const RUNNING = new Set(["queued", "running"]);

export async function render(view, searchId) {
  if (searchId) return detail(view, searchId);
  return list(view);
}

function countsText(search) {
  const t = search.trials;
  const total = t.total ?? "?";
  return `${t.done} of ${total} done` + (t.running ? `, ${t.running} running` : "") + (t.failed ? `, ${t.failed} failed` : "");
}

async function list(view) {
  const [answer, datasets, all] = await Promise.all([api.get("/resource/searches?per_page=500"), readyDatasets(), estimators()]);
  if (!view.alive()) return;
  view.main.append(h("h1", {}, "Searches"));
  if (datasets.length) view.main.append(searchForm(view, datasets, all));
  view.main.append(
    table(
      [
        { label: "Name", value: (s) => h("a", { href: "#/searches/" + s.id, testid: "search-link" }, s.name) },
        { label: "Status", value: (s) => h("span", { class: "badge " + s.status }, s.status) },
        { label: "Strategy", value: (s) => (s.automl ? "AutoML, " : "") + s.strategy },
        { label: "Trials", value: countsText },
        { label: "Best CV score", value: (s) => (s.best ? `${s.scoring} ${num(s.best.cv_mean)}` : "—") },
        { label: "Created", value: (s) => when(s.created_at) },
      ],
      answer.searches,
      { testid: "searches-table", rowTestid: () => "search-row", empty: "No search yet." },
    ),
  );
}

function searchForm(view, datasets, all) {
  const automl = h("input", { type: "checkbox", testid: "search-automl" });
  const estimator = h("select", { testid: "search-estimator" });
  const space = h("textarea", { rows: "3", testid: "search-space", placeholder: '{"n_estimators": [20, 50], "max_depth": [null, 5]}', spellcheck: "false" });
  const strategy = h("select", { testid: "search-strategy" }, ["grid", "random", "tpe"].map((s) => h("option", { value: s }, s)));
  const maxTrials = h("input", { type: "number", min: "1", step: "1", testid: "search-max-trials" });
  const budget = h("input", { type: "number", min: "1", step: "any", placeholder: "none", testid: "search-time-budget" });
  const cv = h("input", { type: "number", min: "2", max: "20", step: "1", value: "3", testid: "search-cv" });
  const name = h("input", { testid: "search-name", placeholder: "<strategy> search of <estimator> on <target>" });
  const registerAs = h("input", { testid: "search-register-as", placeholder: "none" });
  const error = h("p", { class: "form-error", role: "alert", testid: "search-error" });
  const button = h("button", { type: "submit", class: "primary", testid: "search-submit" }, "Start search");
  let task = "classification";
  const fillEstimators = () => {
    task = guessTask(data.column());
    const before = estimator.value;
    clear(estimator).append(...all.filter((e) => e.task === task).map((e) => h("option", { value: e.name }, e.name)));
    if ([...estimator.options].some((o) => o.value === before)) estimator.value = before;
  };
  const data = dataPart(datasets, view.query.get("dataset"), fillEstimators, { offerRoles: false });
  const toggle = () => {
    estimator.disabled = automl.checked;
    space.disabled = automl.checked;
  };
  automl.addEventListener("change", toggle);
  const form = h(
    "form",
    { class: "card", testid: "search-form", "aria-label": "Start a search" },
    h("h2", {}, "Start a search"),
    data.element,
    h(
      "div",
      { class: "fields" },
      field("AutoML (search estimators too)", automl),
      field("Estimator", estimator),
      field("Strategy", strategy),
      field("Most trials", maxTrials),
      field("Time budget (seconds)", budget),
      field("Cross-validation folds", cv),
      field("Search name", name),
      field("Register the best as", registerAs),
    ),
    field("Space (JSON: per parameter, a list of values or {\"type\": \"int\", \"low\": 1, \"high\": 9})", space),
    error,
    h("div", { class: "actions" }, button),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const body = { dataset_id: data.dataset.value, target: data.target.value, features: data.chosenFeatures(), strategy: strategy.value, cv: Number(cv.value) };
    if (automl.checked) body.automl = true;
    else {
      body.estimator = estimator.value;
      if (space.value.trim()) {
        try {
          body.space = JSON.parse(space.value);
        } catch (problem) {
          error.textContent = "The space is not JSON: " + problem.message;
          return;
        }
      }
    }
    if (maxTrials.value) body.max_trials = Number(maxTrials.value);
    if (budget.value) body.time_budget_s = Number(budget.value);
    if (name.value.trim()) body.name = name.value.trim();
    if (registerAs.value.trim()) body.register_as = registerAs.value.trim();
    if (data.column()?.dtype === "integer" && task === "classification" && data.column().distinct > 50) body.target_is_categorical = true;
    button.disabled = true;
    try {
      const accepted = await api.post("/resource/searches", body);
      view.go("#/searches/" + accepted.search_id);
    } catch (problem) {
      error.textContent = problem.message;
    } finally {
      button.disabled = false;
    }
  });
  data.fill();
  toggle();
  return form;
}

function leaderboard(search) {
  return table(
    [
      { label: "Rank", value: (t) => (t.status === "done" ? String(search.leaderboard.filter((x) => x.status === "done").indexOf(t) + 1) : "—") },
      { label: "Trial", value: (t) => num(t.trial) },
      { label: "Estimator", value: (t) => t.estimator },
      { label: "Parameters", value: (t) => h("code", {}, JSON.stringify(t.params)) },
      { label: "Status", value: (t) => h("span", { class: "badge " + t.status }, t.status) },
      { label: `CV ${search.scoring}`, value: (t) => (t.cv_mean === null || t.cv_mean === undefined ? "—" : h("span", { testid: "trial-score" }, `${num(t.cv_mean)} ± ${num(t.cv_std)}`)) },
      { label: "Fit s", value: (t) => num(t.fit_seconds) },
      { label: "Note", value: (t) => t.error || "" },
    ],
    search.leaderboard || [],
    { testid: "leaderboard", rowTestid: () => "trial-row", empty: "No trial yet." },
  );
}

async function reportPart(view, search) {
  const holder = h("div", { class: "plots", testid: "search-plots" });
  try {
    const report = await api.get(`/resource/searches/${search.id}/report`);
    for (const plot of report.plots) {
      const image = h("img", { alt: plot.title, width: String(plot.width), height: String(plot.height), testid: "report-plot" });
      holder.append(h("figure", {}, image, h("figcaption", {}, plot.title)));
      api.blob(plot.png).then((blob) => {
        if (view.alive()) image.src = URL.createObjectURL(blob);
      }, (problem) => holder.append(h("p", { class: "form-error" }, problem.message)));
    }
  } catch (problem) {
    holder.append(h("p", { class: "hint" }, problem.message));
  }
  return holder;
}

async function detail(view, searchId) {
  const title = h("h1", { testid: "search-name" });
  const state = h("p", { testid: "search-status" });
  const bar = progress("search-progress");
  const best = h("div", { testid: "search-best" });
  const board = h("div");
  const cancel = h("button", { type: "button", class: "danger", testid: "search-cancel", hidden: true }, "Cancel search");
  const report = h("div");
  append(view.main, [h("p", { class: "crumbs" }, h("a", { href: "#/searches" }, "Searches"), " / "), title, h("div", { class: "actions" }, cancel), state, bar.element, best, h("h2", {}, "Leaderboard"), board, report]);
  cancel.addEventListener("click", async () => {
    if (!(await confirmDialog("Cancel this search? Its running trials stop; the leaderboard stays.", "Cancel search"))) return;
    try {
      await api.del("/resource/searches/" + searchId);
    } catch (problem) {
      view.flash(problem.message);
    }
  });
  for (;;) {
    const search = await api.get("/resource/searches/" + searchId);
    if (!view.alive()) return;
    title.textContent = search.name;
    state.replaceChildren(h("span", { class: "badge " + search.status, testid: "search-state" }, search.status), ` ${search.phase ? search.phase + "; " : ""}${countsText(search)}; ${num(search.elapsed_s)} s`);
    const total = search.trials.total;
    const ended = search.trials.done + search.trials.failed + search.trials.cancelled + search.trials.skipped;
    bar.set(total ? ended / total : null, countsText(search));
    cancel.hidden = !RUNNING.has(search.status);
    clear(best);
    if (search.best) append(best, h("p", {}, `Best so far: trial ${search.best.trial}, ${search.best.estimator}, CV ${search.scoring} ${num(search.best.cv_mean)}`));
    if (search.best_model_id) append(best, h("p", {}, "Best model: ", h("a", { href: "#/models/" + search.best_model_id, testid: "search-best-model" }, search.best_model_id), search.test_score !== null && search.test_score !== undefined ? ` (held-out ${search.scoring} ${num(search.test_score)})` : ""));
    if (search.error) append(best, h("p", { class: "form-error", testid: "search-error" }, search.error));
    clear(board).append(leaderboard(search));
    if (!RUNNING.has(search.status)) {
      if (search.status === "done") append(clear(report), [h("h2", {}, "Report"), await reportPart(view, search)]);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (!view.alive()) return;
  }
}
