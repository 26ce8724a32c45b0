// Registry: registered models, their versions and aliases; promote and roll back (with a
// confirmation), the name's prediction log, and the history of every change.

import * as api from "./api.js";
import { append, clear, confirmDialog, field, h, num, table, when } from "./dom.js";
import { mainMetric } from "./models.js";
import { logSwitch } from "./monitor.js";

const enc = encodeURIComponent;

export async function render(view, name) {
  if (name) return detail(view, name);
  return list(view);
}

async function list(view) {
  const [answer, models] = await Promise.all([api.get("/resource/registry?per_page=500"), api.get("/resource/models?per_page=500")]);
  if (!view.alive()) return;
  const names = answer.registered_models;
  view.main.append(h("h1", {}, "Registry"));
  view.main.append(versionForm(view, names, models.models.filter((m) => m.status === "ready")));
  view.main.append(
    table(
      [
        { label: "Name", value: (r) => h("a", { href: "#/registry/" + enc(r.name), testid: "registered-link" }, r.name) },
        { label: "Latest version", value: (r) => num(r.latest_version) },
        { label: "Description", value: (r) => r.description || "—" },
        { label: "Owner", value: (r) => r.owner },
        { label: "Updated", value: (r) => when(r.updated_at) },
      ],
      names,
      { testid: "registry-table", rowTestid: () => "registered-row", empty: "No registered model yet: register a ready model above." },
    ),
  );
}

// Register a ready model as the next version of a name (made first if it is new).
function versionForm(view, names, models) {
  const model = h("select", { testid: "register-model" }, models.map((m) => h("option", { value: m.id }, `${m.name} (${m.id.slice(0, 8)})`)));
  const chosen = view.query.get("model");
  if (chosen) model.value = chosen;
  const name = h("input", { list: "registered-names", required: true, testid: "register-name" });
  const description = h("input", { testid: "register-description", placeholder: "for a new name" });
  const error = h("p", { class: "form-error", role: "alert", testid: "register-error" });
  const button = h("button", { type: "submit", class: "primary", testid: "register-submit" }, "Register version");
  const form = h(
    "form",
    { class: "card", testid: "register-form", "aria-label": "Register a model version" },
    h("h2", {}, "Register a model as a version"),
    h("datalist", { id: "registered-names" }, names.map((r) => h("option", { value: r.name }))),
    h("div", { class: "fields" }, field("Ready model", model), field("Registered name (new or existing)", name), field("Description", description)),
    error,
    h("div", { class: "actions" }, button),
  );
  if (!models.length) return h("p", { class: "empty" }, "Train a model first: only ready models become versions.");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    button.disabled = true;
    const target = name.value.trim();
    try {
      if (!names.some((r) => r.name === target)) {
        await api.post("/resource/registry", { name: target, description: description.value });
      }
      const version = await api.post(`/resource/registry/${enc(target)}/versions`, { model_id: model.value });
      view.flash(`Registered ${target} version ${version.version}.`, "info");
      view.go("#/registry/" + enc(target));
    } catch (problem) {
      error.textContent = problem.message;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function aliasTarget(alias) {
  if (alias.version !== null && alias.version !== undefined) return "version " + alias.version;
  const split = Object.entries(alias.versions || {}).map(([v, w]) => `v${v}: ${w}`);
  return "split " + split.join(", ");
}

// The version an alias pointed at before its current one, from the history (null if none).
function previousVersion(history, alias) {
  const moves = history.filter((entry) => entry.alias === alias.alias && (entry.event === "alias_moved" || entry.event === "alias_set"));
  const last = moves[moves.length - 1];
  return last?.before?.version ?? null;
}

function summary(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "object") return String(value);
  if ("alias" in value) return aliasTarget(value) + (value.shadow ? ` (shadow v${value.shadow})` : "");
  return JSON.stringify(value);
}

async function detail(view, name) {
  const [record, history] = await Promise.all([
    api.get("/resource/registry/" + enc(name)),
    api.get(`/resource/registry/${enc(name)}/history?limit=500`),
  ]);
  if (!view.alive()) return;
  const entries = history.history;
  const reload = () => detail(view, name).catch((problem) => view.flash(problem.message));
  const move = async (alias, version, verb) => {
    const now = record.aliases.find((a) => a.alias === alias);
    const from = now ? aliasTarget(now) : "nothing";
    const question = `${verb} “${alias}” of ${record.name}: from ${from} to version ${version}? Predictions by ${record.name}@${alias} switch at once.`;
    if (!(await confirmDialog(question, verb))) return;
    try {
      await api.put(`/resource/registry/${enc(name)}/aliases/${enc(alias)}`, { version: Number(version) });
      view.flash(`${record.name}@${alias} now serves version ${version}.`, "info");
      clear(view.main);
      await reload();
    } catch (problem) {
      view.flash(problem.message);
    }
  };
  const versionChoice = h("select", { testid: "promote-version" }, record.versions.map((v) => h("option", { value: String(v.version) }, "version " + v.version)));
  if (record.versions.length) versionChoice.value = String(record.versions[record.versions.length - 1].version);
  const aliasName = h("input", { value: "production", required: true, testid: "promote-alias" });
  const promote = h("button", { type: "submit", class: "primary", testid: "promote-submit" }, "Promote");
  const promoteForm = h(
    "form",
    { class: "card", testid: "promote-form", "aria-label": "Promote a version" },
    h("div", { class: "fields" }, field("Version", versionChoice), field("Alias", aliasName)),
    h("div", { class: "actions" }, promote),
  );
  promoteForm.addEventListener("submit", (event) => {
    event.preventDefault();
    move(aliasName.value.trim(), versionChoice.value, "Promote");
  });
  const logError = h("p", { class: "form-error", role: "alert", testid: "registry-log-error" });
  const logPart = h(
    "div",
    { class: "card", testid: "registry-log" },
    logSwitch({
      on: record.log_predictions === true,
      label: `Keep every prediction by ${record.name} in the log of the model it reaches`,
      testid: "registry-log-switch",
      state: h("span", { testid: "registry-log-state" }),
      error: logError,
      change: async (on) => {
        const changed = await api.patch("/resource/registry/" + enc(name), { log_predictions: on });
        clear(view.main);
        await reload(); // the history gains the change
        return changed.log_predictions === true;
      },
    }),
    h("p", { class: "hint" }, "Whatever the model's own setting, and through every promotion."),
    logError,
  );
  append(clear(view.main), [
    h("p", { class: "crumbs" }, h("a", { href: "#/registry" }, "Registry"), " / "),
    h("h1", { testid: "registered-name" }, record.name),
    record.description ? h("p", { testid: "registered-description" }, record.description) : null,
    h("p", { class: "hint" }, `Owner ${record.owner}; predictions by name: POST /resource/registry/${record.name}@<alias>/predict`),
    h("h2", {}, "Prediction log"),
    logPart,
    h("h2", {}, "Aliases"),
    table(
      [
        { label: "Alias", value: (a) => h("code", {}, a.alias) },
        { label: "Serves", value: (a) => h("span", { testid: "alias-target" }, aliasTarget(a)) },
        { label: "Shadow", value: (a) => (a.shadow ? "version " + a.shadow : "—") },
        { label: "Set by", value: (a) => `${a.set_by}, ${when(a.set_at)}` },
        {
          label: "",
          value: (a) => {
            const before = previousVersion(entries, a);
            return h(
              "span",
              { class: "row-actions" },
              before !== null && before !== a.version
                ? h("button", { type: "button", testid: "alias-rollback", onclick: () => move(a.alias, before, "Roll back") }, `Roll back to version ${before}`)
                : null,
              h(
                "button",
                {
                  type: "button",
                  class: "danger",
                  testid: "alias-remove",
                  onclick: async () => {
                    if (!(await confirmDialog(`Remove the alias “${a.alias}”? Predictions by it are refused from then on.`, "Remove"))) return;
                    try {
                      await api.del(`/resource/registry/${enc(name)}/aliases/${enc(a.alias)}`);
                      clear(view.main);
                      await reload();
                    } catch (problem) {
                      view.flash(problem.message);
                    }
                  },
                },
                "Remove",
              ),
            );
          },
        },
      ],
      record.aliases,
      { testid: "aliases-table", rowTestid: () => "alias-row", empty: "No alias yet: promote a version." },
    ),
    record.versions.length ? promoteForm : null,
    h("h2", {}, "Versions"),
    table(
      [
        { label: "Version", value: (v) => num(v.version) },
        { label: "Model", value: (v) => h("a", { href: "#/models/" + v.model_id }, v.model_id) },
        { label: "Estimator", value: (v) => v.lineage.estimator || "—" },
        {
          label: "Main metric",
          value: (v) => {
            const metric = mainMetric({ metrics: v.lineage.metrics });
            return metric.value === null ? "—" : `${metric.name} ${num(metric.value)}`;
          },
        },
        { label: "Data set", value: (v) => (v.lineage.dataset_id ? h("a", { href: "#/datasets/" + v.lineage.dataset_id }, v.lineage.dataset_id.slice(0, 8)) : "—") },
        { label: "Serving", value: (v) => v.aliases.join(", ") || "—" },
        { label: "Registered", value: (v) => `${v.registered_by}, ${when(v.registered_at)}` },
      ],
      record.versions,
      { testid: "versions-table", rowTestid: () => "version-row" },
    ),
    h("h2", {}, "History"),
    table(
      [
        { label: "When", value: (e) => when(e.at) },
        { label: "Event", value: (e) => h("span", { testid: "history-event" }, e.event) },
        { label: "By", value: (e) => e.actor },
        { label: "Alias / version", value: (e) => e.alias || (e.version ? "version " + e.version : "—") },
        { label: "Before", value: (e) => summary(e.before) },
        { label: "After", value: (e) => summary(e.after) },
      ],
      [...entries].reverse(),
      { testid: "history-table", rowTestid: () => "history-row" },
    ),
  ]);
}
