// Train: a form built from GET /resource/estimators and the data set's columns, then the
// training task followed live until the model is ready (or says why it failed).

import * as api from "./api.js";
import { append, clear, field, h, progress } from "./dom.js";

let estimatorsCache = null;

// The roles a training request may give a column (docs/tables.md, "Overriding roles").
const OVERRIDE_ROLES = ["numeric", "categorical", "datetime", "text", "ignore"];

export async function estimators() {
  if (!estimatorsCache) estimatorsCache = (await api.get("/resource/estimators")).estimators;
  return estimatorsCache;
}

export async function readyDatasets() {
  const answer = await api.get("/resource/datasets?per_page=500");
  return answer.datasets.filter((d) => d.status === "ready");
}

// A parameter as the form shows it: its default, its type and, when the API says, its choices.
// The API gives a default per parameter (a JSON value, or a repr string) and, in newer
// services, each parameter's JSON types ("integer|null"); without them the default's own
// type is used. A richer description ({default, type, choices|allowed}) is used as it comes.
export function describeParameter(name, raw, jsonTypes) {
  const described = raw && typeof raw === "object" && !Array.isArray(raw) && "default" in raw ? raw : { default: raw };
  const value = described.default;
  let type = described.type;
  if (!type && typeof jsonTypes === "string") type = typeFromJson(jsonTypes);
  if (!type) {
    if (typeof value === "boolean") type = "boolean";
    // JSON says 1 for 1.0 (C, alpha): a number default takes any number, the API checks it.
    else if (typeof value === "number") type = "float";
    else type = "any"; // a text default may stand for numbers too (max_features "sqrt" or 5)
  }
  const choices = described.choices || described.allowed || described.options || null;
  return { name, default: value, type, choices, hint: typeof jsonTypes === "string" ? jsonTypes : null };
}

// The form's type for JSON types like "integer|null": null is the default's business (an
// empty field), several kinds of value take any value typed.
function typeFromJson(jsonTypes) {
  const kinds = new Set(jsonTypes.split("|").filter((kind) => kind && kind !== "null"));
  if (kinds.size === 1 && kinds.has("boolean")) return "boolean";
  if (kinds.size === 1 && kinds.has("integer")) return "integer";
  if (kinds.size && [...kinds].every((kind) => kind === "integer" || kind === "number")) return "float";
  if (kinds.size === 1 && kinds.has("string")) return "string";
  return "any";
}

// The control of one parameter; its read() is undefined while left at the default.
export function parameterControl(parameter) {
  const testid = "param-" + parameter.name;
  const shown = parameter.default === null ? "null" : String(parameter.default);
  let control;
  if (parameter.choices || parameter.type === "boolean") {
    const options = parameter.choices || [true, false];
    control = h(
      "select",
      { name: parameter.name, testid },
      h("option", { value: "" }, `default (${shown})`),
      options.map((option, index) => h("option", { value: String(index) }, option === null ? "null" : String(option))),
    );
    control.read = () => (control.value === "" ? undefined : options[Number(control.value)]);
  } else if (parameter.type === "integer" || parameter.type === "float") {
    control = h("input", {
      name: parameter.name,
      type: "number",
      step: parameter.type === "integer" ? "1" : "any",
      placeholder: shown,
      testid,
    });
    control.read = () => (control.value === "" ? undefined : Number(control.value));
  } else {
    control = h("input", { name: parameter.name, placeholder: shown, testid });
    control.read = () => {
      if (control.value === "") return undefined;
      return parameter.type === "string" ? control.value : parseLoose(control.value);
    };
  }
  control.hint = parameter.hint;
  return control;
}

// A typed value from text: numbers, true/false/null, else the text itself.
function parseLoose(text) {
  const trimmed = text.trim();
  if (/^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(trimmed)) return Number(trimmed);
  if (trimmed === "true") return true;
  if (trimmed === "false") return false;
  if (trimmed === "null") return null;
  return text;
}

// The task a target suggests: text and few distinct values are classes.
export function guessTask(column) {
  if (!column) return "classification";
  if (column.dtype === "float") return "regression";
  if (column.dtype === "integer" && column.distinct > 50) return "regression";
  return "classification";
}

// The data set, target and features part of a form (training and searches share it); with
// offerRoles, each feature's role too (searches take no "columns", so they do not offer it).
export function dataPart(datasets, chosenId, onChange, { offerRoles = true } = {}) {
  const dataset = h("select", { name: "dataset", testid: "train-dataset" }, datasets.map((d) => h("option", { value: d.id }, d.name)));
  if (chosenId) dataset.value = chosenId;
  const target = h("select", { name: "target", testid: "train-target" });
  const features = h("fieldset", { class: "features", testid: "train-features" });
  const part = {
    dataset,
    target,
    element: h("div", {}, h("div", { class: "fields" }, field("Data set", dataset), field("Target (the column to predict)", target)), features),
    current: () => datasets.find((d) => d.id === dataset.value),
    column: () => part.current()?.columns.find((c) => c.name === target.value),
    // The roles changed from the detected ones: the request's "columns".
    chosenRoles() {
      const chosen = {};
      for (const select of features.querySelectorAll("select.role")) {
        if (select.value && select.value !== select.dataset.detected) chosen[select.dataset.column] = select.value;
      }
      return Object.keys(chosen).length ? chosen : null;
    },
    chosenFeatures() {
      const boxes = [...features.querySelectorAll("input[type=checkbox]")];
      const chosen = boxes.filter((box) => box.checked && !box.disabled).map((box) => box.value);
      return chosen.length === boxes.filter((box) => !box.disabled).length ? null : chosen;
    },
  };
  const fillFeatures = () => {
    const columns = part.current()?.columns || [];
    clear(features).append(h("legend", {}, "Features (the input columns)"));
    const roles = offerRoles && columns.some((column) => column.role);
    for (const column of columns) {
      const box = h("input", { type: "checkbox", value: column.name, checked: true, disabled: column.name === target.value, testid: "train-feature" });
      const item = h("span", { class: "feature" }, h("label", { class: "check" }, box, " ", column.name));
      if (roles && column.name !== target.value) {
        // Prefilled with the role the profile detected (why: its title); another choice goes
        // in the request's "columns". An id or constant column is left out unless given a
        // role. Services without roles give none, and the choice is not offered.
        const detected = column.role || "";
        const overridable = OVERRIDE_ROLES.includes(detected);
        const role = h(
          "select",
          { class: "role", testid: "train-role", "aria-label": "Role of " + column.name, title: column.role_evidence?.reason || null },
          overridable ? null : h("option", { value: "" }, `${detected || "?"} (detected: left out)`),
          OVERRIDE_ROLES.map((r) => h("option", { value: r }, r === detected ? `${r} (detected)` : r)),
        );
        role.value = overridable ? detected : "";
        role.dataset.column = column.name;
        role.dataset.detected = overridable ? detected : "";
        item.append(role);
      }
      features.append(item);
    }
  };
  const fillTargets = () => {
    const columns = part.current()?.columns || [];
    clear(target).append(...columns.map((c) => h("option", { value: c.name }, c.name)));
    if (columns.length) target.value = columns[columns.length - 1].name;
    fillFeatures();
    onChange();
  };
  dataset.addEventListener("change", fillTargets);
  target.addEventListener("change", () => {
    fillFeatures();
    onChange();
  });
  part.fill = fillTargets;
  return part;
}

export async function render(view) {
  const [datasets, all] = await Promise.all([readyDatasets(), estimators()]);
  if (!view.alive()) return;
  view.main.append(h("h1", {}, "Train a model"));
  if (!datasets.length) {
    view.main.append(h("p", { class: "empty" }, "No data set is ready: ", h("a", { href: "#/datasets" }, "upload one"), " first."));
    return;
  }
  const task = h(
    "select",
    { name: "task", testid: "train-task" },
    h("option", { value: "classification" }, "classification"),
    h("option", { value: "regression" }, "regression"),
  );
  const estimator = h("select", { name: "estimator", testid: "train-estimator" });
  const parameters = h("div", { class: "fields", testid: "train-params" });
  let controls = [];
  const fillParameters = () => {
    const chosen = all.find((e) => e.name === estimator.value);
    const types = chosen?.param_types || {};
    controls = Object.entries(chosen?.params || {}).map(([name, raw]) => parameterControl(describeParameter(name, raw, types[name])));
    clear(parameters).append(...controls.map((control) => field(control.name, control, control.hint)));
  };
  const fillEstimators = () => {
    const offered = all.filter((e) => e.task === task.value);
    const before = estimator.value;
    clear(estimator).append(...offered.map((e) => h("option", { value: e.name }, e.name)));
    if (offered.some((e) => e.name === before)) estimator.value = before;
    fillParameters();
  };
  const data = dataPart(datasets, view.query.get("dataset"), () => {
    task.value = guessTask(data.column());
    fillEstimators();
  });
  task.addEventListener("change", fillEstimators);
  estimator.addEventListener("change", fillParameters);

  const testSize = h("input", { type: "number", name: "test_size", min: "0.05", max: "0.5", step: "0.05", value: "0.25", testid: "train-test-size" });
  const cv = h("input", { type: "number", name: "cv", min: "2", max: "20", step: "1", placeholder: "none", testid: "train-cv" });
  const name = h("input", { name: "name", placeholder: "<estimator> on <target>", testid: "train-name" });
  const registerAs = h("input", { name: "register_as", placeholder: "none", testid: "train-register-as" });
  const compile = h("input", { type: "checkbox", name: "compile", checked: true, testid: "train-compile" });
  const categorical = h("input", { type: "checkbox", name: "target_is_categorical", testid: "train-categorical" });
  const button = h("button", { type: "submit", class: "primary", testid: "train-submit" }, "Train");
  const error = h("p", { class: "form-error", role: "alert", testid: "train-error" });
  const bar = progress("train-progress");
  bar.element.hidden = true;
  const outcome = h("div", { testid: "train-outcome" });
  const form = h(
    "form",
    { class: "card", testid: "train-form", "aria-label": "Train a model" },
    data.element,
    h("div", { class: "fields" }, field("Task", task), field("Estimator", estimator)),
    h("details", { open: true }, h("summary", {}, "Parameters (empty: the estimator's default)"), parameters),
    h(
      "div",
      { class: "fields" },
      field("Held-out fraction", testSize),
      field("Cross-validation folds", cv),
      field("Model name", name),
      field("Register as (a registered model's name)", registerAs),
      field("Compile to ONNX", compile),
      field("Numeric target holds classes", categorical),
    ),
    error,
    h("div", { class: "actions" }, button),
    bar.element,
    outcome,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    clear(outcome);
    const params = {};
    for (const control of controls) {
      const value = control.read();
      if (value !== undefined) params[control.name] = value;
    }
    const body = {
      dataset_id: data.dataset.value,
      target: data.target.value,
      estimator: estimator.value,
      params,
      features: data.chosenFeatures(),
      test_size: Number(testSize.value),
      compile: compile.checked,
    };
    if (cv.value) body.cv = Number(cv.value);
    if (name.value.trim()) body.name = name.value.trim();
    if (registerAs.value.trim()) body.register_as = registerAs.value.trim();
    if (categorical.checked) body.target_is_categorical = true;
    const roles = data.chosenRoles();
    if (roles) body.columns = roles;
    button.disabled = true;
    try {
      const accepted = await api.post("/resource/models", body);
      bar.element.hidden = false;
      bar.set(0, "queued");
      const last = await api.follow(accepted.status_url, (status) => {
        if (view.alive()) bar.set(status.progress, status.status);
      });
      if (!view.alive()) return;
      const link = h("a", { href: "#/models/" + accepted.model_id, testid: "train-model-link" }, "Open the model");
      if (last.state === "SUCCESS") {
        append(outcome, h("p", {}, "Trained. ", link));
      } else {
        error.textContent = last.error || last.status;
        append(outcome, h("p", {}, link));
      }
    } catch (problem) {
      error.textContent = problem.message;
    } finally {
      button.disabled = false;
    }
  });
  view.main.append(form);
  data.fill();
}
