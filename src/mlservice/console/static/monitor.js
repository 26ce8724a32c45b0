// Watching a model from its page (docs/monitoring.md): the prediction log's switch, the log
// exported as a data set, input drift against the training profile, and one row explained.
// The explanation's bars are SVG rectangles sized by attributes: the console's policy allows
// no inline style.

import * as api from "./api.js";
import { append, clear, field, h, num, progress, table } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

// An on/off switch (a checkbox with role=switch) and its state, an element, beside it. change(on) asks the
// API and resolves to the state it recorded; a refusal puts the switch back and is shown.
export function logSwitch({ on, label, testid, state, error, change }) {
  const box = h("input", { type: "checkbox", role: "switch", checked: on, testid });
  const show = (value) => {
    box.checked = value;
    state.textContent = value ? "on" : "off";
    state.className = "badge " + (value ? "on" : "off");
  };
  show(on);
  box.addEventListener("change", async () => {
    const wanted = box.checked;
    box.disabled = true;
    error.textContent = "";
    try {
      show(await change(wanted));
    } catch (problem) {
      show(!wanted);
      error.textContent = problem.message;
    } finally {
      box.disabled = false;
    }
  });
  return h("div", { class: "switch" }, h("label", { class: "check" }, box, " ", label), state);
}

// The model's prediction log: its switch, and "export it as a data set" followed to the end.
function logPart(view, model) {
  const error = h("p", { class: "form-error", role: "alert", testid: "model-log-error" });
  const toggle = logSwitch({
    on: model.log_predictions === true,
    label: "Keep every prediction of this model (the prediction log)",
    testid: "model-log-switch",
    state: h("span", { testid: "model-log-state" }),
    error,
    change: async (on) => (await api.patch(`/resource/models/${model.id}`, { log_predictions: on })).log_predictions === true,
  });
  const button = h("button", { type: "button", testid: "log-export" }, "Export the log as a data set");
  const bar = progress("log-export-progress");
  bar.element.hidden = true;
  const outcome = h("p", { testid: "log-export-result" });
  button.addEventListener("click", async () => {
    error.textContent = "";
    clear(outcome);
    button.disabled = true;
    try {
      const accepted = await api.post(`/resource/models/${model.id}/prediction-log/export`);
      bar.element.hidden = false;
      bar.set(null, "queued");
      const last = await api.follow(accepted.status_url, (status) => view.alive() && bar.set(status.progress, status.status));
      if (!view.alive()) return;
      if (last.state === "SUCCESS") {
        const made = last.result.dataset || {};
        const link = h("a", { href: "#/datasets/" + accepted.dataset_id, testid: "log-export-link" }, made.name || accepted.dataset_id);
        append(outcome, ["Exported ", num(made.rows), " rows into the data set ", link, "."]);
      } else {
        error.textContent = last.error || last.status;
      }
    } catch (problem) {
      error.textContent = problem.message;
    } finally {
      button.disabled = false;
    }
  });
  return h(
    "div",
    { class: "card", testid: "model-log" },
    h("h3", {}, "Prediction log"),
    toggle,
    h("p", { class: "hint" }, "Its inputs, prediction, model version, time and request id, kept off the request path. Export it to label and retrain on."),
    h("div", { class: "actions" }, button),
    bar.element,
    outcome,
    error,
  );
}

// A share as a percentage, or "—".
function share(value) {
  return value === null || value === undefined ? "—" : `${num(value * 100)}%`;
}

function signed(value) {
  if (value === null || value === undefined) return "—";
  return (value > 0 ? "+" : "") + num(value);
}

// The drift of the newest rows against the training profile, one table row per input column.
function driftPart(model) {
  const size = h("input", { type: "number", min: "1", step: "1", placeholder: "2000 (default)", testid: "drift-window" });
  const button = h("button", { type: "submit", testid: "drift-submit" }, "Compare with training");
  const error = h("p", { class: "form-error", role: "alert", testid: "drift-error" });
  const result = h("div", { testid: "drift-result" });
  const form = h(
    "form",
    { class: "card", testid: "drift-form", "aria-label": "Input drift" },
    h("h3", {}, "Input drift"),
    h("p", { class: "hint" }, "The newest rows predicted (the log, or one request in ten while it is off) against the training rows. PSI below 0.1 is stable, above 0.2 a significant shift."),
    h("div", { class: "fields" }, field("Rows (the newest)", size)),
    h("div", { class: "actions" }, button),
    error,
    result,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    clear(result);
    button.disabled = true;
    try {
      const drift = await api.get(`/resource/models/${model.id}/drift` + (size.value ? "?window=" + encodeURIComponent(size.value) : ""));
      const source = drift.source === "log" ? "the prediction log" : "the drift sample";
      append(result, [
        h(
          "p",
          { testid: "drift-summary" },
          `${num(drift.rows)} rows from ${source} against ${num(drift.training_rows)} training rows: `,
          drift.drifted.length ? h("strong", {}, `drifted: ${drift.drifted.join(", ")}`) : "no column drifted",
          ` (PSI over ${num(drift.psi_threshold)}, or missing rate moved over ${num(drift.missing_threshold)}).`,
        ),
        table(
          [
            { label: "Column", value: (c) => h("span", { testid: "drift-column" }, c.feature) },
            { label: "Type", value: (c) => c.type },
            { label: "PSI", value: (c) => h("span", { testid: "drift-psi" }, num(c.psi)) },
            { label: "Missing now", value: (c) => share(c.missing_rate) },
            { label: "Missing in training", value: (c) => share(c.training_missing_rate) },
            { label: "Missing change", value: (c) => signed(c.missing_rate_change) },
            { label: "Unseen values", value: (c) => (c.type === "string" ? `${num(c.unseen)} (${share(c.unseen_share)})` : "—") },
            {
              label: "Drifted",
              value: (c) => h("span", { class: "badge " + (c.drifted ? "drifted" : "stable"), testid: "drift-flag" }, c.drifted ? "drifted" : "stable"),
            },
          ],
          drift.columns,
          { testid: "drift-table", rowTestid: () => "drift-row", rowClass: (c) => (c.drifted ? "drifted" : null) },
        ),
      ]);
    } catch (problem) {
      error.textContent = problem.message;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// The model's monitoring section: the log, its export, drift.
export function monitoringPart(view, model) {
  return h("div", { class: "monitoring", testid: "model-monitoring" }, logPart(view, model), driftPart(model));
}

// One contribution as a bar from zero: right for positive, left for negative. The drawing
// spans [low, high], from the most negative contribution (or 0) to the most positive (or 0).
function bar(value, low, high) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 200 14");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "contribution-bar");
  svg.setAttribute("aria-hidden", "true");
  const scale = high > low ? 200 / (high - low) : 0;
  const zero = -low * scale;
  const width = Math.abs(value) * scale;
  const rect = document.createElementNS(SVG, "rect");
  rect.setAttribute("x", String(value < 0 ? zero - width : zero));
  rect.setAttribute("y", "1");
  rect.setAttribute("width", String(width));
  rect.setAttribute("height", "12");
  rect.setAttribute("class", value < 0 ? "negative" : "positive");
  const axis = document.createElementNS(SVG, "line");
  for (const [name, at] of [["x1", zero], ["x2", zero], ["y1", 0], ["y2", 14]]) axis.setAttribute(name, String(at));
  svg.append(rect, axis);
  return svg;
}

const OUTPUTS = {
  probability: "the probability of the predicted class",
  decision: "the decision function (log-odds) of the predicted class",
  value: "the predicted value",
};

// An explanation of one row as the page shows it: the base value, then one bar per input
// column, largest effect first.
export function explanationView(answer) {
  const row = answer.rows[0];
  const entries = Object.entries(row.contributions).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]) || (a[0] < b[0] ? -1 : 1));
  const low = Math.min(0, ...entries.map(([, v]) => v));
  const high = Math.max(0, ...entries.map(([, v]) => v));
  return h(
    "div",
    { class: "explanation", testid: "explain-result" },
    h(
      "p",
      { testid: "explain-summary" },
      `Why ${String(row.prediction)}: ${OUTPUTS[answer.output] || answer.output} is `,
      h("strong", { testid: "explain-output" }, num(row.output)),
      " = base value ",
      h("strong", { testid: "explain-base" }, num(row.base_value)),
      " (the average over training rows) plus each column's contribution below.",
    ),
    h(
      "ol",
      { class: "contributions", testid: "explain-contributions" },
      entries.map(([name, value]) =>
        h(
          "li",
          { testid: "explain-contribution", "data-value": String(value) },
          h("span", { class: "name", testid: "explain-feature" }, name),
          bar(value, low, high),
          h("span", { class: "value", testid: "explain-value" }, signed(value)),
        ),
      ),
    ),
    h("p", { class: "hint", testid: "explain-method" }, `Red raises the output, blue lowers it. Method: ${answer.method}${answer.exact ? " (exact SHAP values)" : " (an estimate)"}; model version ${answer.model_version}.`),
  );
}

// POST the row to .../explain; a 202 (the worker is busy) is followed to its result.
export async function explain(model, record) {
  const answer = await api.post(`/resource/models/${model.id}/explain`, record);
  if (!answer.status_url) return answer;
  const last = await api.follow(answer.status_url, () => {});
  if (last.state !== "SUCCESS") throw new Error(last.error || last.status);
  return last.result;
}
