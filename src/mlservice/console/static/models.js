// Models: a sortable, filterable list; a model's page (metrics, the report's plots, lineage,
// download as a bundle or ONNX, delete, monitoring), a "try it" form from its input columns
// (predict or explain the row), and a CSV drop that scores a file.

import * as api from "./api.js";
import { acceptDrops, append, bytes, clear, confirmDialog, download, field, h, num, progress, table, when } from "./dom.js";
import { explain, explanationView, monitoringPart } from "./monitor.js";

// The score a list shows per model: accuracy for classifiers, r2 for regressors.
export function mainMetric(model) {
  const metrics = model.metrics || {};
  if ("accuracy" in metrics) return { name: "accuracy", value: metrics.accuracy };
  if ("r2" in metrics) return { name: "r2", value: metrics.r2 };
  return { name: "", value: null };
}

const SORTS = {
  name: (m) => m.name.toLowerCase(),
  status: (m) => m.status,
  estimator: (m) => m.estimator || "",
  metric: (m) => mainMetric(m).value ?? -Infinity,
  engine: (m) => m.engine?.name || "",
  created: (m) => m.created_at,
};
const listState = { sort: "created", descending: true, text: "", status: "", estimator: "" };

export async function render(view, modelId) {
  if (modelId) return modelPage(view, modelId);
  return list(view);
}

async function list(view) {
  const answer = await api.get("/resource/models?per_page=500");
  if (!view.alive()) return;
  const models = answer.models;
  const text = h("input", { type: "search", placeholder: "name, estimator or target", value: listState.text, testid: "models-filter" });
  const status = h(
    "select",
    { testid: "models-status" },
    h("option", { value: "" }, "any"),
    ["queued", "training", "ready", "failed"].map((s) => h("option", { value: s }, s)),
  );
  status.value = listState.status;
  const estimators = [...new Set(models.map((m) => m.estimator).filter(Boolean))].sort();
  const estimator = h("select", { testid: "models-estimator" }, h("option", { value: "" }, "any"), estimators.map((e) => h("option", { value: e }, e)));
  estimator.value = listState.estimator;
  const holder = h("div", { testid: "models-list" });
  const count = h("p", { class: "hint", testid: "models-count" });

  const header = (label, key) => {
    const arrow = listState.sort === key ? (listState.descending ? " ▼" : " ▲") : "";
    return h(
      "button",
      {
        type: "button",
        testid: "sort-" + key,
        "aria-sort": listState.sort === key ? (listState.descending ? "descending" : "ascending") : null,
        onclick: () => {
          listState.descending = listState.sort === key ? !listState.descending : key === "created" || key === "metric";
          listState.sort = key;
          draw();
        },
      },
      label + arrow,
    );
  };
  const draw = () => {
    listState.text = text.value;
    listState.status = status.value;
    listState.estimator = estimator.value;
    const needle = text.value.trim().toLowerCase();
    const shown = models.filter(
      (m) =>
        (!status.value || m.status === status.value) &&
        (!estimator.value || m.estimator === estimator.value) &&
        (!needle || [m.name, m.estimator, m.target].some((v) => (v || "").toLowerCase().includes(needle))),
    );
    const key = SORTS[listState.sort];
    shown.sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      const order = x < y ? -1 : x > y ? 1 : 0;
      return listState.descending ? -order : order;
    });
    count.textContent = `${shown.length} of ${models.length} models`;
    clear(holder).append(
      table(
        [
          { label: header("Name", "name"), value: (m) => h("a", { href: "#/models/" + m.id, testid: "model-link" }, m.name) },
          { label: header("Status", "status"), value: (m) => h("span", { class: "badge " + m.status, testid: "model-status" }, m.status) },
          { label: header("Estimator", "estimator"), value: (m) => m.estimator || "—" },
          {
            label: header("Main metric", "metric"),
            value: (m) => {
              const metric = mainMetric(m);
              return metric.value === null ? "—" : h("span", { testid: "model-metric" }, `${metric.name} ${num(metric.value)}`);
            },
          },
          { label: header("Engine", "engine"), value: (m) => m.engine?.name || "—" },
          { label: header("Created", "created"), value: (m) => when(m.created_at) },
          { label: "Owner", value: (m) => m.owner },
        ],
        shown,
        { testid: "models-table", rowTestid: () => "model-row", empty: "No model matches." },
      ),
    );
  };
  for (const control of [text, status, estimator]) control.addEventListener("input", draw);
  view.main.append(
    h("h1", {}, "Models"),
    h("div", { class: "actions" }, h("a", { class: "button primary", href: "#/train", testid: "models-train" }, "Train a model")),
    h("div", { class: "filters card" }, field("Filter", text), field("Status", status), field("Estimator", estimator)),
    count,
    holder,
  );
  draw();
}

// The scores on the held-out rows and, beside them, on the rows the model was fitted on.
function metricsPart(metrics) {
  const rows = Object.entries(metrics || {}).filter(([, v]) => typeof v === "number");
  const training = metrics?.training && typeof metrics.training === "object" ? metrics.training : null;
  const parts = [];
  if (training) {
    parts.push(
      table(
        [
          { label: "Metric", value: ([k]) => h("span", { testid: "metric-name" }, k) },
          { label: "Held-out rows", value: ([, v]) => h("span", { testid: "metric-held-out" }, num(v)) },
          { label: "Rows it was fitted on", value: ([k]) => h("span", { testid: "metric-training" }, num(training[k])) },
        ],
        rows,
        { testid: "model-metrics", rowTestid: () => "metric-row" },
      ),
      h("p", { class: "hint" }, "Much better on the rows it was fitted on than on the held-out rows is overfitting."),
    );
  } else {
    parts.push(h("dl", { class: "facts", testid: "model-metrics" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, num(v))])));
  }
  if (metrics?.cv) {
    const cv = metrics.cv;
    parts.push(h("p", { testid: "model-cv" }, `${cv.folds}-fold cross-validation (${cv.scoring}): mean ${num(cv.mean)} ± ${num(cv.std)}; folds ${cv.scores.map(num).join(", ")}`));
  }
  const matrix = metrics?.confusion_matrix;
  if (matrix) {
    parts.push(
      h("h3", {}, "Confusion matrix (rows: true class, columns: predicted)"),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { testid: "confusion-matrix", class: "matrix" },
          h("thead", {}, h("tr", {}, h("th", {}, ""), matrix.labels.map((label) => h("th", { scope: "col" }, String(label))))),
          h(
            "tbody",
            {},
            matrix.matrix.map((row, i) => h("tr", {}, h("th", { scope: "row" }, String(matrix.labels[i])), row.map((cell) => h("td", {}, num(cell))))),
          ),
        ),
      ),
    );
  }
  return parts;
}

async function plotsPart(view, model) {
  const holder = h("div", { class: "plots", testid: "model-plots" });
  let report;
  try {
    report = await api.get(`/resource/models/${model.id}/report`);
  } catch (problem) {
    return h("p", { class: "form-error" }, problem.message);
  }
  if (!report.plots.length) return h("p", { class: "empty" }, report.reason || "No plots.");
  for (const plot of report.plots) {
    const image = h("img", { alt: plot.title, width: String(plot.width), height: String(plot.height), testid: "report-plot" });
    const figure = h("figure", {}, image, h("figcaption", {}, plot.title));
    holder.append(figure);
    api
      .blob(plot.png)
      .then((blob) => {
        if (view.alive()) image.src = URL.createObjectURL(blob);
      })
      .catch((problem) => figure.append(h("p", { class: "form-error" }, problem.message)));
  }
  for (const failed of report.errors || []) holder.append(h("p", { class: "form-error" }, `${failed.plot}: ${failed.error}`));
  return holder;
}

function lineagePart(model) {
  const facts = [
    ["Source", model.source],
    ["Data set", model.dataset_id ? h("a", { href: "#/datasets/" + model.dataset_id, testid: "model-dataset" }, model.dataset_id) : "—"],
    ["Data set sha256", model.dataset_sha256 || "—"],
    ["Target", model.target ?? "—"],
    ["Features", model.features ? model.features.join(", ") : "every column but the target"],
    ["Parameters given", JSON.stringify(model.params || {})],
    [
      "Column roles given",
      Object.keys(model.columns || {}).length
        ? h("span", { class: "chips", testid: "model-roles" }, Object.entries(model.columns).map(([name, role]) => h("span", { class: "chip" }, `${name}: ${role}`)))
        : "none (as profiled)",
    ],
    ["Held-out fraction", num(model.test_size)],
    ["Trained by", model.owner],
    ["Worker", model.worker || "—"],
    ["Service version", model.service_version || "—"],
    ["Libraries", Object.entries(model.versions || {}).map(([k, v]) => `${k} ${v}`).join(", ") || "—"],
    ["Registered as", model.register_as || "—"],
  ];
  if (model.register_error) facts.push(["Registering failed", model.register_error]);
  return h("dl", { class: "facts", testid: "model-lineage" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

async function modelPage(view, modelId) {
  let model = await api.get("/resource/models/" + modelId);
  if (!view.alive()) return;
  const top = [h("p", { class: "crumbs" }, h("a", { href: "#/models" }, "Models"), " / "), h("h1", { testid: "model-name" }, model.name)];
  if ((model.status === "queued" || model.status === "training") && model.task_id) {
    const bar = progress("model-progress");
    append(clear(view.main), [...top, h("p", {}, h("span", { class: "badge " + model.status, testid: "model-page-status" }, model.status)), bar.element]);
    await api.follow("/resource/task/status/" + model.task_id, (status) => view.alive() && bar.set(status.progress, status.status));
    if (!view.alive()) return;
    model = await api.get("/resource/models/" + modelId);
    if (!view.alive()) return;
  }
  clear(view.main);
  const downloadButton = h("button", { type: "button", testid: "model-download" }, "Download bundle");
  downloadButton.addEventListener("click", async () => {
    try {
      download(await api.blob(`/resource/models/${model.id}/download`), `${model.id}.mlbundle`);
    } catch (problem) {
      view.flash(problem.message);
    }
  });
  // Only compiled models have an ONNX graph: the API's 409 says why not, shown by the button.
  const onnxError = h("p", { class: "form-error", role: "alert", testid: "model-download-error" });
  const onnxButton = h("button", { type: "button", testid: "model-download-onnx" }, "Download ONNX");
  onnxButton.addEventListener("click", async () => {
    onnxError.textContent = "";
    try {
      download(await api.blob(`/resource/models/${model.id}/download?format=onnx`), `${model.id}.onnx`);
    } catch (problem) {
      onnxError.textContent = problem.message;
    }
  });
  const deleteButton = h("button", { type: "button", class: "danger", testid: "model-delete" }, "Delete");
  deleteButton.addEventListener("click", async () => {
    if (!(await confirmDialog(`Delete the model “${model.name}”? Predictions with it stop at once.`, "Delete"))) return;
    try {
      await api.del("/resource/models/" + model.id);
      view.flash(`Deleted “${model.name}”.`, "info");
      view.go("#/models");
    } catch (problem) {
      view.flash(problem.message);
    }
  });
  const ready = model.status === "ready";
  const facts = [
    ["Status", h("span", { class: "badge " + model.status, testid: "model-page-status" }, model.status)],
    ["Estimator", model.estimator || "—"],
    ["Task", model.task || "—"],
    ["Engine", model.engine ? `${model.engine.name}: ${model.engine.reason}` : "—"],
    ["Version", num(model.version)],
    ["Bundle size", bytes(model.size_bytes)],
    ["Bundle sha256", model.bundle_sha256 ? h("code", { testid: "model-bundle-sha256" }, model.bundle_sha256) : "—"],
    ["Training seconds", num(model.training_seconds)],
    ["Created", when(model.created_at)],
    ["Finished", when(model.finished_at)],
    ["Id", model.id],
  ];
  append(view.main, [
    ...top,
    h(
      "div",
      { class: "actions" },
      ready ? downloadButton : null,
      ready ? onnxButton : null,
      ready ? h("a", { class: "button", href: `#/registry?model=${model.id}`, testid: "model-register" }, "Register a version") : null,
      deleteButton,
    ),
    onnxError,
    model.error ? h("p", { class: "form-error", testid: "model-error" }, model.error) : null,
    (model.warnings || []).length
      ? h(
          "ul",
          { class: "notes", testid: "model-warnings" },
          model.warnings.map((w) =>
            typeof w === "string"
              ? h("li", { testid: "model-warning" }, w)
              : h("li", { testid: "model-warning" }, h("span", { class: "chip", testid: "warning-kind" }, w.kind), " ", w.message),
          ),
        )
      : null,
    h("dl", { class: "facts", testid: "model-facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
  ]);
  if (ready) {
    append(view.main, [h("h2", {}, model.metrics?.training ? "Metrics" : "Metrics (held-out rows)"), metricsPart(model.metrics)]);
    append(view.main, [h("h2", {}, "Try it"), tryIt(model), h("h2", {}, "Score a CSV file"), scoreFile(model)]);
    append(view.main, [h("h2", {}, "Score a stored data set"), await scoreDataset(view, model)]);
    if (!view.alive()) return;
    append(view.main, [h("h2", {}, "Monitoring"), monitoringPart(view, model)]);
    append(view.main, [h("h2", {}, "Report")]);
    const plots = h("div");
    view.main.append(plots);
    plots.append(await plotsPart(view, model));
  }
  if (view.alive()) append(view.main, [h("h2", {}, "Lineage"), lineagePart(model)]);
}

// A form with one field per input column; the answer shown as the API gives it.
function tryIt(model) {
  const schema = model.input_schema || [];
  const controls = schema.map((column, index) => {
    const testid = "try-input-" + index;
    if (column.type === "number") return h("input", { type: "number", step: "any", name: column.name, testid, placeholder: "empty: missing" });
    const listId = "try-list-" + index;
    const hint = column.type === "datetime" ? "a date, e.g. 1971-01-31" : null;
    const input = h("input", { name: column.name, list: listId, testid, placeholder: hint });
    input.options = h("datalist", { id: listId }, (column.categories || []).map((c) => h("option", { value: c })));
    if (column.categories?.length) input.value = column.categories[0];
    return input;
  });
  const probabilities = h("input", { type: "checkbox", checked: true, testid: "try-probabilities" });
  const answer = h("pre", { class: "answer", testid: "try-answer", hidden: true });
  const result = h("div", { testid: "try-result" });
  const error = h("p", { class: "form-error", role: "alert", testid: "try-error" });
  const button = h("button", { type: "submit", class: "primary", testid: "try-submit" }, "Predict");
  const explainButton = h("button", { type: "button", testid: "try-explain" }, "Explain");
  const explained = h("div", { testid: "explain-holder" });
  const form = h(
    "form",
    { class: "card", testid: "try-form", "aria-label": "Try the model" },
    h(
      "div",
      { class: "fields" },
      controls.map((control, index) => [field(schema[index].name, control, schema[index].type), control.options || null]),
    ),
    field("With probabilities", probabilities),
    error,
    h("div", { class: "actions" }, button, explainButton),
    result,
    answer,
    explained,
  );
  // The row as the fields say: numbers as numbers, an empty number as missing.
  const readRecord = () => {
    const record = {};
    schema.forEach((column, index) => {
      const raw = controls[index].value;
      record[column.name] = column.type === "number" ? (raw === "" ? null : Number(raw)) : raw;
    });
    return record;
  };
  explainButton.addEventListener("click", async () => {
    error.textContent = "";
    clear(explained);
    explainButton.disabled = true;
    explained.append(h("p", { class: "hint", testid: "explain-waiting" }, "Explaining on a worker…"));
    try {
      const body = await explain(model, readRecord());
      clear(explained).append(explanationView(body));
    } catch (problem) {
      clear(explained);
      error.textContent = problem.message;
    } finally {
      explainButton.disabled = false;
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    clear(result);
    const record = readRecord();
    const path = `/resource/models/${model.id}/predict` + (probabilities.checked && model.classes ? "?probabilities=true" : "");
    button.disabled = true;
    try {
      const body = await api.post(path, record);
      append(result, h("p", {}, "Prediction: ", h("strong", { testid: "try-prediction" }, String(body.predictions[0]))));
      if (body.probabilities) {
        const shares = Object.entries(body.probabilities[0]);
        append(result, table([{ label: "Class", value: ([k]) => k }, { label: "Probability", value: ([, v]) => num(v) }], shares, { testid: "try-probabilities-table" }));
      }
      answer.textContent = JSON.stringify(body, null, 2);
      answer.hidden = false;
    } catch (problem) {
      error.textContent = problem.message;
      answer.hidden = true;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// Drop (or choose) a CSV of input rows: POST it as text/csv, get text/csv back, download it.
function scoreFile(model) {
  const file = h("input", { type: "file", accept: ".csv,text/csv", testid: "score-file" });
  const probabilities = h("input", { type: "checkbox", testid: "score-probabilities" });
  const error = h("p", { class: "form-error", role: "alert", testid: "score-error" });
  const done = h("p", { testid: "score-result" });
  const button = h("button", { type: "submit", testid: "score-submit" }, "Score and download");
  const form = h(
    "form",
    { class: "card upload", testid: "score-form", "aria-label": "Score a CSV file" },
    h("p", { class: "hint" }, "Drop a CSV with the input columns here; the predictions come back as a CSV to download. (For large files, upload them as a data set and score it below.)"),
    field("CSV file", file),
    model.classes ? field("With probabilities", probabilities) : null,
    error,
    h("div", { class: "actions" }, button),
    done,
  );
  const send = async (chosen) => {
    error.textContent = "";
    done.textContent = "";
    button.disabled = true;
    try {
      const query = probabilities.checked ? "?probabilities=true" : "";
      const response = await api.call("POST", `/resource/models/${model.id}/predict${query}`, {
        body: chosen,
        type: "text/csv",
        accept: "text/csv",
        raw: true,
      });
      const scored = await response.blob();
      const name = chosen.name.replace(/\.csv$/i, "") + "-predictions.csv";
      download(scored, name);
      done.textContent = `Scored: ${name} (${bytes(scored.size)}) downloaded.`;
    } catch (problem) {
      error.textContent = problem.message;
    } finally {
      button.disabled = false;
    }
  };
  acceptDrops(form, (files) => send(files[0]));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (file.files[0]) send(file.files[0]);
    else error.textContent = "Choose a CSV file first.";
  });
  return form;
}

// Score a stored data set of any size on a worker (POST /resource/models/{id}/predictions):
// the job is followed on a progress bar, and its answer is a new data set, linked.
async function scoreDataset(view, model) {
  const datasets = (await api.get("/resource/datasets?per_page=500")).datasets.filter((d) => d.status === "ready");
  const dataset = h("select", { testid: "batch-dataset" }, datasets.map((d) => h("option", { value: d.id }, d.name)));
  const format = h("select", { testid: "batch-format" }, h("option", { value: "csv" }, "CSV"), h("option", { value: "parquet" }, "Parquet"));
  const keep = h("input", { testid: "batch-keep", placeholder: "columns to copy beside the predictions, comma-separated" });
  const probabilities = h("input", { type: "checkbox", testid: "batch-probabilities" });
  const error = h("p", { class: "form-error", role: "alert", testid: "batch-error" });
  const bar = progress("batch-progress");
  bar.element.hidden = true;
  const outcome = h("p", { testid: "batch-result" });
  const button = h("button", { type: "submit", testid: "batch-submit" }, "Score on a worker");
  const form = h(
    "form",
    { class: "card", testid: "batch-form", "aria-label": "Score a stored data set" },
    h("p", { class: "hint" }, "For data sets of any size: a worker scores it in chunks into a new data set."),
    h(
      "div",
      { class: "fields" },
      field("Data set", dataset),
      field("Output format", format),
      field("Keep columns", keep),
      model.classes ? field("With probabilities", probabilities) : null,
    ),
    error,
    h("div", { class: "actions" }, button),
    bar.element,
    outcome,
  );
  if (!datasets.length) return h("p", { class: "empty" }, "No data set is ready to score.");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    outcome.replaceChildren();
    const body = { dataset_id: dataset.value, format: format.value };
    const kept = keep.value.split(",").map((name) => name.trim()).filter(Boolean);
    if (kept.length) body.keep_columns = kept;
    if (probabilities.checked) body.probabilities = true;
    button.disabled = true;
    try {
      const accepted = await api.post(`/resource/models/${model.id}/predictions`, body);
      bar.element.hidden = false;
      const last = await api.follow(accepted.status_url, (status) => {
        if (view.alive()) bar.set(status.progress, status.status);
      });
      if (!view.alive()) return;
      if (last.state === "SUCCESS") {
        const made = last.result;
        append(outcome, ["Scored ", num(made.rows), " rows into ", h("a", { href: "#/datasets/" + made.dataset_id, testid: "batch-dataset-link" }, "a new data set"), "."]);
      } else {
        error.textContent = last.error || last.status;
      }
    } catch (problem) {
      error.textContent = problem.message;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
