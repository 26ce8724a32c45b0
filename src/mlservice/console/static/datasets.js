// Data sets: the list, an upload with a progress bar, a profile page, delete with confirmation.

import * as api from "./api.js";
import { sample } from "./sample.js";
import { acceptDrops, append, bytes, clear, confirmDialog, download, field, h, num, progress, table, when } from "./dom.js";

const PAGE = "/resource/datasets?per_page=500";

export async function render(view, datasetId) {
  if (datasetId) return profile(view, datasetId);
  return list(view);
}

function uploadCard(view, reload) {
  const file = h("input", { type: "file", accept: ".csv,.parquet,.pq,text/csv", testid: "upload-file" });
  const name = h("input", { name: "name", placeholder: "the file's name", testid: "upload-name" });
  const button = h("button", { type: "submit", testid: "upload-submit" }, "Upload");
  const bar = progress("upload-progress");
  bar.element.hidden = true;
  const error = h("p", { class: "form-error", role: "alert", testid: "upload-error" });
  const form = h(
    "form",
    { class: "card upload", testid: "upload-form", "aria-label": "Upload a data set" },
    h("h2", {}, "Upload a data set"),
    h("p", { class: "hint" }, "CSV or Parquet; drop a file here or choose one. Large files are streamed."),
    field("File", file),
    field("Name (optional)", name),
    bar.element,
    error,
    h("div", { class: "actions" }, button),
  );
  acceptDrops(form, (files) => { file.files = files; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const chosen = file.files[0];
    if (!chosen) {
      error.textContent = "Choose a CSV or Parquet file first.";
      return;
    }
    button.disabled = true;
    bar.element.hidden = false;
    bar.set(0, "starting");
    const path = "/resource/datasets?name=" + encodeURIComponent(name.value.trim() || chosen.name);
    try {
      const answer = await api.upload(path, chosen, (sent, total) =>
        bar.set(sent / total, `${bytes(sent)} of ${bytes(total)} sent`),
      );
      if (answer.status === "profiling") {
        bar.set(null, "uploaded; profiling on a worker…");
        await api.follow(answer.status_url, (status) => bar.set(status.progress, status.status));
      }
      bar.set(1, "uploaded: " + answer.name);
      form.reset();
      if (view.alive()) await reload();
    } catch (problem) {
      error.textContent = problem.message;
      bar.set(0, "failed");
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

async function deleteDataset(view, record, after) {
  const sure = await confirmDialog(`Delete the data set “${record.name}”? Models trained on it keep working.`, "Delete");
  if (!sure) return;
  try {
    await api.del("/resource/datasets/" + record.id);
    view.flash(`Deleted “${record.name}”.`, "info");
    await after();
  } catch (problem) {
    view.flash(problem.message);
  }
}

async function list(view) {
  const holder = h("div", { testid: "datasets-list" });
  const reload = async () => {
    const answer = await api.get(PAGE);
    if (!view.alive()) return;
    clear(holder).append(
      table(
        [
          { label: "Name", value: (d) => h("a", { href: "#/datasets/" + d.id, testid: "dataset-link" }, d.name) },
          { label: "Status", value: (d) => h("span", { class: "badge " + d.status }, d.status) },
          { label: "Rows", value: (d) => num(d.rows) },
          { label: "Columns", value: (d) => (d.columns ? num(d.columns.length) : "—") },
          { label: "Format", value: (d) => d.format },
          { label: "Size", value: (d) => bytes(d.size_bytes) },
          { label: "Owner", value: (d) => d.owner },
          { label: "Uploaded", value: (d) => when(d.created_at) },
          {
            label: "",
            value: (d) =>
              h(
                "span",
                { class: "row-actions" },
                d.status === "ready" ? h("a", { href: "#/train?dataset=" + d.id, class: "button", testid: "dataset-train" }, "Train") : null,
                h("button", { type: "button", class: "danger", testid: "dataset-delete", onclick: () => deleteDataset(view, d, reload) }, "Delete"),
              ),
          },
        ],
        answer.datasets,
        { testid: "datasets-table", rowTestid: () => "dataset-row", empty: "No data sets yet: upload one above." },
      ),
    );
  };
  view.main.append(h("h1", {}, "Data sets"), uploadCard(view, reload), holder);
  await reload();
}

function missingBar(missing, rows) {
  const share = rows ? missing / rows : 0;
  return h(
    "span",
    { class: "cell-bar", title: `${(share * 100).toFixed(1)}% missing` },
    h("meter", { min: "0", max: "1", value: String(share), "aria-label": "share missing" }),
    " " + num(missing),
  );
}

function values(column) {
  if (!column.categories_sample) return h("span", { class: "hint" }, "numeric");
  return h(
    "span",
    { class: "chips" },
    column.categories_sample.map((value) => h("span", { class: "chip", testid: "category-value" }, value)),
    column.distinct > column.categories_sample.length ? h("span", { class: "hint" }, ` +${num(column.distinct - column.categories_sample.length)} more`) : null,
  );
}

async function profile(view, datasetId) {
  let record = await api.get("/resource/datasets/" + datasetId);
  while (record.status === "profiling" && view.alive()) {
    clear(view.main).append(h("h1", {}, record.name), h("p", { testid: "dataset-profiling" }, "Profiling on a worker…"));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    record = await api.get("/resource/datasets/" + datasetId);
  }
  if (!view.alive()) return;
  clear(view.main);
  const facts = [
    ["Status", record.status],
    ["Rows", num(record.rows)],
    ["Columns", record.columns ? num(record.columns.length) : "—"],
    ["Format", record.format + (record.delimiter ? ` (delimiter ${JSON.stringify(record.delimiter)})` : "")],
    ["Size", bytes(record.size_bytes)],
    ["Owner", record.owner],
    ["Uploaded", when(record.created_at)],
    ["Formula-like cells", num(record.formula_cells)],
    record.decimal ? ["Decimal mark", JSON.stringify(record.decimal)] : null,
    ["sha256", record.sha256 || "—"],
  ];
  const downloadButton = h("button", { type: "button", testid: "dataset-download" }, "Download");
  downloadButton.addEventListener("click", async () => {
    try {
      const response = await api.call("GET", `/resource/datasets/${record.id}/download`, { raw: true });
      const name = record.name.includes(".") ? record.name : `${record.name}.${record.format}`;
      download(await response.blob(), name);
    } catch (problem) {
      view.flash(problem.message);
    }
  });
  append(view.main, [
    h("p", { class: "crumbs" }, h("a", { href: "#/datasets" }, "Data sets"), " / "),
    h("h1", { testid: "dataset-name" }, record.name),
    h(
      "div",
      { class: "actions" },
      record.status === "ready" ? h("a", { class: "button primary", href: "#/train?dataset=" + record.id, testid: "dataset-train" }, "Train a model") : null,
      record.status === "ready" ? h("a", { class: "button", href: "#/searches?dataset=" + record.id, testid: "dataset-search" }, "Search") : null,
      record.status === "ready" ? downloadButton : null,
      h("button", { type: "button", class: "danger", testid: "dataset-delete", onclick: () => deleteDataset(view, record, async () => view.go("#/datasets")) }, "Delete"),
    ),
    h("dl", { class: "facts", testid: "dataset-facts" }, facts.filter(Boolean).map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)])),
    (record.notes || []).length ? h("ul", { class: "notes", testid: "dataset-notes" }, record.notes.map((note) => h("li", {}, note))) : null,
    record.error ? h("p", { class: "form-error", testid: "dataset-error" }, record.error) : null,
  ]);
  if (record.columns) {
    const pictures = new Map();
    const sampled = h("p", { class: "hint", testid: "sample-note" });
    view.main.append(
      h("h2", {}, "Columns"),
      sampled,
      table(
        [
          { label: "Column", value: (c) => h("code", { testid: "column-name" }, c.name) },
          { label: "Type", value: (c) => c.dtype },
          // Services that give columns roles (numeric, categorical, datetime, text, id,
          // constant) say why; older ones do not, and the column is left out.
          record.columns.some((c) => c.role)
            ? { label: "Role", value: (c) => h("span", { testid: "column-role", title: c.role_evidence?.reason || null }, c.role || "—") }
            : null,
          { label: "Missing", value: (c) => missingBar(c.missing, record.rows) },
          { label: "Distinct", value: (c) => (c.distinct_is_lower_bound ? "≥ " : "") + num(c.distinct) },
          { label: "Values", value: values },
          {
            label: "Distribution",
            value: (c) => {
              const holder = h("span", { testid: "column-sample" });
              pictures.set(c.name, holder);
              return holder;
            },
          },
        ].filter(Boolean),
        record.columns,
        { testid: "profile-table", rowTestid: () => "profile-column" },
      ),
    );
    if (record.status === "ready") {
      try {
        const found = await sample(record);
        if (!view.alive()) return;
        if (found === null) {
          sampled.textContent = "Histograms and frequent values are drawn from CSV data sets only.";
        } else {
          const rows = found.complete ? `all ${num(found.rows)} rows` : `the first ${num(found.rows)} rows`;
          sampled.textContent = `Histograms (numbers) and most frequent values (others) from ${rows}.`;
          for (const [name, picture] of found.pictures) pictures.get(name)?.append(picture);
        }
      } catch (problem) {
        sampled.textContent = "No sample of the rows: " + problem.message;
      }
    }
  }
}
