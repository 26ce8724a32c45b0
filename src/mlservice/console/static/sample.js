// A profile's small pictures from the data itself: the first rows of a CSV data set (at most
// SAMPLE_BYTES of it, read from the download and then cancelled), parsed here, give each
// numeric column a histogram and each other column its most frequent values. The API's
// profile covers every row; these pictures say they come from the first rows.

import * as api from "./api.js";

const SAMPLE_BYTES = 2 * 1024 * 1024;
const BINS = 12;
const SVG = "http://www.w3.org/2000/svg";

// The first bytes of a data set's file (the download, cut after SAMPLE_BYTES).
async function firstBytes(datasetId) {
  const response = await api.call("GET", `/resource/datasets/${datasetId}/download`, { raw: true });
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  let complete = false;
  while (size < SAMPLE_BYTES) {
    const { done, value } = await reader.read();
    if (done) {
      complete = true;
      break;
    }
    chunks.push(value);
    size += value.length;
  }
  if (!complete) await reader.cancel();
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return { text: new TextDecoder().decode(bytes), complete };
}

// CSV rows (quoted fields, doubled quotes, any of the delimiters the service detects).
export function parseCsv(text, delimiter) {
  const rows = [];
  let row = [];
  let fieldText = "";
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        fieldText += '"';
        i += 1;
      } else if (c === '"') {
        quoted = false;
      } else {
        fieldText += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === delimiter) {
      row.push(fieldText);
      fieldText = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      row.push(fieldText);
      rows.push(row);
      row = [];
      fieldText = "";
    } else {
      fieldText += c;
    }
  }
  if (fieldText !== "" || row.length) {
    row.push(fieldText);
    rows.push(row);
  }
  return rows;
}

function histogram(values) {
  const numbers = values.filter((v) => v.trim() !== "").map(Number).filter(Number.isFinite);
  if (!numbers.length) return null;
  let low = Infinity;
  let high = -Infinity;
  for (const n of numbers) {
    if (n < low) low = n;
    if (n > high) high = n;
  }
  const counts = new Array(BINS).fill(0);
  const width = high - low || 1;
  for (const n of numbers) counts[Math.min(BINS - 1, Math.floor(((n - low) / width) * BINS))] += 1;
  return { counts, low, high };
}

function histogramPicture(found) {
  const most = Math.max(...found.counts);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${BINS * 10} 40`);
  svg.setAttribute("width", "120");
  svg.setAttribute("height", "40");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `histogram from ${found.low} to ${found.high}`);
  svg.dataset.testid = "column-histogram";
  found.counts.forEach((count, index) => {
    const bar = document.createElementNS(SVG, "rect");
    const height = most ? Math.max(count ? 1 : 0, (count / most) * 38) : 0;
    bar.setAttribute("x", String(index * 10 + 1));
    bar.setAttribute("y", String(40 - height));
    bar.setAttribute("width", "8");
    bar.setAttribute("height", String(height));
    bar.setAttribute("fill", "#1f5f99");
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${count} rows`;
    bar.append(title);
    svg.append(bar);
  });
  return svg;
}

function topValues(values, limit = 5) {
  const counts = new Map();
  for (const value of values) if (value !== "") counts.set(value, (counts.get(value) || 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, limit);
}

// Per column name, a Node to show (histogram or top values) and how many rows were read;
// null for a data set that is not CSV.
export async function sample(record) {
  if (record.format !== "csv" || !record.columns) return null;
  const { text, complete } = await firstBytes(record.id);
  const rows = parseCsv(text, record.delimiter || ",");
  if (!complete) rows.pop(); // the last line may be cut
  const header = rows.shift() || [];
  const pictures = new Map();
  for (const column of record.columns) {
    const index = header.indexOf(column.name);
    if (index < 0) continue;
    const values = rows.map((row) => row[index] ?? "");
    if (column.dtype === "integer" || column.dtype === "float") {
      const found = histogram(values);
      if (found) pictures.set(column.name, histogramPicture(found));
    } else {
      const list = document.createElement("span");
      list.className = "chips";
      for (const [value, count] of topValues(values)) {
        const chip = document.createElement("span");
        chip.className = "chip";
        chip.dataset.testid = "top-value";
        chip.textContent = `${value} ×${count}`;
        list.append(chip);
      }
      pictures.set(column.name, list);
    }
  }
  return { pictures, rows: rows.length, complete };
}
