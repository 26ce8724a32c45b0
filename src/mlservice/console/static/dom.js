// Building the page: every value goes in as text (a Text node or textContent), never as HTML.
// h("tag", {attributes, on<event>: handler, testid: "..."}, ...children) is the one way
// elements are made; a child that is not a Node becomes a Text node.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (key === "testid") {
      element.dataset.testid = value;
    } else if (key === "value" || key === "checked" || key === "selected") {
      element[key] = value;
    } else {
      element.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

// A number for people: integers as they are, others to 4 significant digits.
export function num(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en");
  return Number(value.toPrecision(4)).toString();
}

export function when(seconds) {
  if (!seconds) return "—";
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

export function bytes(size) {
  if (size === null || size === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return (unit ? value.toFixed(1) : String(value)) + " " + units[unit];
}

function labelText(label) {
  return label instanceof Node ? label.textContent.replace(/ [▲▼]$/, "") : label;
}

// A table from rows: columns = [{label, value: row => text|Node, key?: row => sortable}];
// rowClass(row), when given, is a row's class (e.g. to highlight it).
export function table(columns, rows, { testid, rowTestid, rowClass, empty = "Nothing yet." } = {}) {
  if (!rows.length) return h("p", { class: "empty", testid: testid && testid + "-empty" }, empty);
  const head = h("tr", {}, columns.map((column) => h("th", { scope: "col" }, column.label)));
  const body = rows.map((row) =>
    h(
      "tr",
      { testid: rowTestid ? rowTestid(row) : null, class: rowClass ? rowClass(row) : null },
      columns.map((column) => h("td", { "data-label": labelText(column.label) }, column.value(row))),
    ),
  );
  return h("div", { class: "table-wrap" }, h("table", { testid }, h("thead", {}, head), h("tbody", {}, body)));
}

// A labelled form field; the control keeps its own attributes.
export function field(label, control, hint) {
  const id = control.id || "f-" + Math.random().toString(36).slice(2, 10);
  control.id = id;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("small", { class: "hint" }, hint) : null,
  );
}

// Files dropped on an element go to take(files); it is marked "dropping" while a file
// is dragged over it.
export function acceptDrops(element, take) {
  element.addEventListener("dragover", (event) => {
    event.preventDefault();
    element.classList.add("dropping");
  });
  element.addEventListener("dragleave", () => element.classList.remove("dropping"));
  element.addEventListener("drop", (event) => {
    event.preventDefault();
    element.classList.remove("dropping");
    if (event.dataTransfer.files.length) take(event.dataTransfer.files);
  });
}

// A progress bar with a text beside it; set(fraction, text).
export function progress(testid) {
  const bar = h("progress", { max: "1", value: 0, testid });
  const text = h("span", { class: "progress-text", testid: testid + "-text" });
  const element = h("div", { class: "progress" }, bar, text);
  return {
    element,
    set(fraction, words) {
      if (fraction === null || fraction === undefined) bar.removeAttribute("value");
      else bar.value = Math.max(0, Math.min(1, fraction));
      text.textContent = words || "";
    },
  };
}

// A yes/no question in a <dialog>, answered true (confirmed) or false.
export function confirmDialog(question, confirmLabel = "Yes") {
  return new Promise((resolve) => {
    const yes = h("button", { type: "button", class: "danger", testid: "confirm-yes" }, confirmLabel);
    const no = h("button", { type: "button", testid: "confirm-no" }, "Cancel");
    const dialog = h(
      "dialog",
      { testid: "confirm-dialog", "aria-label": "Confirm" },
      h("p", { testid: "confirm-question" }, question),
      h("div", { class: "actions" }, no, yes),
    );
    const close = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    yes.addEventListener("click", () => close(true));
    no.addEventListener("click", () => close(false));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      close(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}

// Offer bytes as a file download.
export function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
