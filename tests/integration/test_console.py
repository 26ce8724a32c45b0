"""The web console at /ui, driven in real Chromium through NGINX: one user's whole journey.

One page walks the journey in order (sign in, upload, profile, train, ...),
each test a stage that starts where the one before it stopped, so the
browser and the stack are started once and the module stays quick. The
data set's name, column names and values hold ``<b>``, quotes and
``<script>`` text: every stage checks they are shown as text and that none
ran (``window.pwned`` stays unset), and that the page logged no error (a
Content-Security-Policy refusal would be one). Each page is photographed
into var/screenshots/console/ (kept for a person to look at), and the
pictures are checked: the viewport's width, a real height, not blank.
"""

from __future__ import annotations

import collections
import csv
import hashlib
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import pytest
import requests
from PIL import Image
from playwright.sync_api import Locator, Page, expect, sync_playwright

from mlservice.config import REPO_DIR
from mlservice.console import CONTENT_SECURITY_POLICY
from tests.helpers import eventually

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/lib/chromium/chromium")
SCREENSHOTS = REPO_DIR / "var" / "screenshots" / "console"
#: Long enough for a worker to train a small model on a loaded machine (milliseconds).
WORK_TIMEOUT = 90_000

DATASET_NAME = '<b>hostile</b> "set" <script>window.pwned=4</script>'
SIZE, COUNT, COLOUR, LABEL = (
    "<b>size</b>",
    'the "quoted" one',
    "<script>window.pwned=1</script>",
    "label",
)
COLOURS = [
    "<b>red</b>",
    '"blue"',
    "<script>window.pwned=2</script>",
    "<img src=x onerror=window.pwned=3>",
]
YES, NO = "<i>yes</i>", 'no "really"'


def write_hostile_csv(path: Path, rows: int = 80) -> None:
    """A small classification data set whose names and values look like markup."""
    rng = random.Random(7)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([SIZE, COUNT, COLOUR, LABEL])
        for _ in range(rows):
            size, count = round(rng.uniform(0, 10), 3), rng.randint(0, 5)
            label = YES if size + count > 7 else NO
            writer.writerow([size, count, rng.choice(COLOURS), label])


@dataclass
class Journey:
    """The one page of the journey, what it logged, and what the stages pass on."""

    page: Page
    url: str
    errors: list[str] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)

    def shot(self, name: str, min_height: int = 300) -> Path:
        """A full-page screenshot, checked: the viewport's width, ``min_height``, not blank."""
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=path, full_page=True)
        with Image.open(path) as image:
            width, height = image.size
            colours = image.convert("RGB").getcolors(maxcolors=1_000_000) or []
        assert width == self.page.viewport_size["width"], (name, image.size)
        assert height >= min_height, (name, image.size)
        assert len(colours) > 20, f"{name}: {len(colours)} colours, a blank page?"
        return path

    def check_clean(self) -> None:
        """Nothing logged as an error, nothing of the data's markup ran or became elements."""
        assert self.errors == []
        assert self.page.evaluate("window.pwned") is None
        main = self.page.locator("main")
        assert main.locator("b, i, script, img:not([data-testid=report-plot])").count() == 0


def cell(row: Locator, column: str) -> Locator:
    """A table row's cell under the column headed ``column`` (each cell carries its label)."""
    return row.locator(f'td[data-label="{column}"]')


@pytest.fixture(scope="module")
def journey(stack):
    """Chromium (Debian's, under Playwright) with one page, 1280 px wide, for the module."""
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs it (chromium)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
        page = context.new_page()
        page.set_default_timeout(20_000)
        trip = Journey(page, stack.url)
        page.on("console", lambda m: trip.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: trip.errors.append(str(error)))
        yield trip
        context.close()
        browser.close()


def test_the_console_is_served_with_a_strict_policy(client):
    """/ui and its files come through NGINX with the CSP: no inline script, own origin only."""
    page = requests.get(client.url + "/ui", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert page.headers["X-Frame-Options"] == "DENY"
    script = requests.get(client.url + "/ui/assets/app.js", timeout=10)
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert script.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    missing = requests.get(client.url + "/ui/assets/nothing.js", timeout=10)
    assert (missing.status_code, missing.json()) == (
        404,
        {"status": "no console file 'nothing.js'; the console is /ui"},
    )
    # No script of the page is inline, nor comes from elsewhere.
    assert re.findall(r"<script[^>]*>", page.text) == [
        '<script type="module" src="/ui/assets/app.js">'
    ]


def test_sign_in(journey, admin_credentials):
    """A wrong password is refused in the API's words; the right one opens the console, and the
    token lives in this tab's sessionStorage, never in localStorage."""
    page = journey.page
    page.goto(journey.url + "/ui")
    expect(page.get_by_test_id("signin-form")).to_be_visible()
    journey.shot("signin")
    page.get_by_test_id("signin-username").fill(admin_credentials[0])
    page.get_by_test_id("signin-password").fill("not the password")
    page.get_by_test_id("signin-submit").click()
    expect(page.get_by_test_id("signin-error")).to_have_text("wrong user name or password")
    journey.errors.clear()  # the browser logs the 401 itself
    page.get_by_test_id("signin-password").fill(admin_credentials[1])
    page.get_by_test_id("signin-submit").click()
    expect(page.get_by_test_id("datasets-list")).to_be_visible()
    expect(page.get_by_test_id("who")).to_have_text("admin (admin)")
    assert page.evaluate("localStorage.length") == 0
    stored = page.evaluate("JSON.parse(sessionStorage.getItem('mlservice.console.session'))")
    assert set(stored) == {"token", "username", "role", "expires"}
    journey.check_clean()


def test_upload_shows_progress_and_the_list(journey, tmp_path):
    """A CSV goes up with a progress bar and appears in the list under its hostile name."""
    page = journey.page
    data = tmp_path / "hostile.csv"
    write_hostile_csv(data)
    page.get_by_test_id("upload-file").set_input_files(data)
    page.get_by_test_id("upload-name").fill(DATASET_NAME)
    page.get_by_test_id("upload-submit").click()
    expect(page.get_by_test_id("upload-progress-text")).to_have_text("uploaded: " + DATASET_NAME)
    assert page.get_by_test_id("upload-progress").evaluate("bar => bar.value") == 1
    row = page.get_by_test_id("dataset-row").filter(has_text=DATASET_NAME)
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("dataset-link")).to_have_text(DATASET_NAME)
    journey.shot("datasets")
    journey.check_clean()
    row.get_by_test_id("dataset-link").click()
    expect(page.get_by_test_id("dataset-name")).to_have_text(DATASET_NAME)
    journey.state["dataset_id"] = page.url.rsplit("/", 1)[1]


def test_profile_shows_every_column_as_text(journey, tmp_path, client, admin_token):
    """The profile: rows, every column's name, type, role (why: its title), missing and
    distinct, values as text."""
    page = journey.page
    profiled = client.get(f"/resource/datasets/{journey.state['dataset_id']}", admin_token).json()
    roles = page.get_by_test_id("column-role")
    expect(roles).to_have_text([c["role"] for c in profiled["columns"]])
    assert [c["role"] for c in profiled["columns"]] == ["numeric"] * 2 + ["categorical"] * 2
    titles = roles.evaluate_all("all => all.map((role) => role.title)")
    assert titles == [c["role_evidence"]["reason"] for c in profiled["columns"]]
    assert all(titles), titles
    facts = page.get_by_test_id("dataset-facts")
    expect(facts).to_contain_text("Rows80")
    names = page.get_by_test_id("column-name")
    expect(names).to_have_text([SIZE, COUNT, COLOUR, LABEL])
    colour = page.get_by_test_id("profile-column").filter(has_text=COLOUR)
    expect(cell(colour, "Type")).to_have_text("string")
    expect(cell(colour, "Distinct")).to_have_text("4")
    expect(colour.get_by_test_id("category-value")).to_have_text(sorted(COLOURS))
    label = page.get_by_test_id("profile-column").filter(has_text=LABEL)
    expect(label.get_by_test_id("category-value")).to_have_text(sorted([YES, NO]))
    # The pictures drawn from the rows themselves: all 80 here (a small file).
    expect(page.get_by_test_id("sample-note")).to_have_text(
        "Histograms (numbers) and most frequent values (others) from all 80 rows."
    )
    histograms = page.get_by_test_id("column-histogram")
    expect(histograms).to_have_count(2)  # the two numeric columns
    bars = histograms.first.locator("rect").evaluate_all(
        "bars => bars.map((bar) => +bar.getAttribute('height'))"
    )
    assert len(bars) == 12 and max(bars) == 38 and sum(h > 0 for h in bars) >= 6, bars
    data = tmp_path / "again.csv"
    write_hostile_csv(data)
    with data.open(newline="") as handle:
        labels = collections.Counter(row[LABEL] for row in csv.DictReader(handle))
    shown = [f"{value} ×{count}" for value, count in sorted(labels.items(), key=lambda i: -i[1])]
    assert sorted(label.get_by_test_id("top-value").all_inner_texts()) == sorted(shown)
    journey.shot("dataset-profile")
    journey.check_clean()


#: A data set above the stack's [service] inline_profile_mb (16 MiB): profiled by a worker.
LARGE_ROWS = 1_200_000
#: Records every text a progress bar shows (its "-text" test id), as the page changes it.
WATCH_PROGRESS = """(testid) => {
  window.progressSeen = [];
  const text = document.querySelector(`[data-testid=${testid}-text]`);
  new MutationObserver(() => window.progressSeen.push(text.textContent))
    .observe(text, {childList: true, characterData: true, subtree: true});
}"""


def test_a_large_upload_is_streamed_then_profiled_by_a_worker(journey, tmp_path):
    """A file above the inline limit: the bar follows the bytes sent, then the worker's
    profiling, and the data set is listed ready."""
    page = journey.page
    data = tmp_path / "console-large.csv"
    with data.open("w") as handle:
        handle.write("x,y,colour,label\n")
        handle.writelines(
            f"{i},{i % 97 * 0.5},c{i % 7},{'a' if i % 3 else 'b'}\n" for i in range(LARGE_ROWS)
        )
    size = data.stat().st_size
    assert size > 16 * 1024 * 1024
    page.get_by_test_id("nav-datasets").click()
    expect(page.get_by_test_id("upload-form")).to_be_visible()
    page.evaluate(WATCH_PROGRESS, "upload-progress")
    page.get_by_test_id("upload-file").set_input_files(data)
    page.get_by_test_id("upload-submit").click()
    expect(page.get_by_test_id("upload-progress-text")).to_have_text(
        "uploaded: console-large.csv", timeout=WORK_TIMEOUT
    )
    seen = page.evaluate("window.progressSeen")
    assert any(text.endswith(" sent") for text in seen), seen
    assert "uploaded; profiling on a worker…" in seen, seen
    row = page.get_by_test_id("dataset-row").filter(has_text="console-large.csv")
    expect(cell(row, "Status")).to_have_text("ready")
    expect(cell(row, "Rows")).to_have_text(f"{LARGE_ROWS:,}")
    journey.check_clean()


def test_delete_asks_first(journey):
    """Delete asks for confirmation: Cancel keeps the data set, Delete removes it."""
    page = journey.page
    row = page.get_by_test_id("dataset-row").filter(has_text="console-large.csv")
    expect(row).to_have_count(1)
    row.get_by_test_id("dataset-delete").click()
    expect(page.get_by_test_id("confirm-question")).to_contain_text("large.csv")
    journey.shot("dataset-delete-confirm")
    page.get_by_test_id("confirm-no").click()
    expect(row).to_have_count(1)
    row.get_by_test_id("dataset-delete").click()
    page.get_by_test_id("confirm-yes").click()
    expect(page.get_by_test_id("flash")).to_have_text("Deleted “console-large.csv”.")
    expect(row).to_have_count(0)
    expect(page.get_by_test_id("dataset-row").filter(has_text=DATASET_NAME)).to_have_count(1)
    journey.check_clean()


#: Both names hold MARK, which no other test's model names do (the admin sees every model).
MARK = "console-journey"
RF_NAME = f'{MARK} forest <b>"one"</b>'
LR_NAME = f"{MARK} linear <script>window.pwned=5</script>"


def test_train_from_a_form_built_from_the_estimators(journey):
    """The form lists the estimators of the target's task with their parameters and defaults,
    the target among the data set's columns; training is followed live to the end."""
    page = journey.page
    page.get_by_test_id("dataset-row").filter(has_text=DATASET_NAME).get_by_test_id(
        "dataset-link"
    ).click()
    # The data set's own page (the list's rows have Train buttons too: wait for it).
    expect(page.get_by_test_id("dataset-facts")).to_be_visible()
    page.get_by_test_id("dataset-train").click()
    expect(page.get_by_test_id("train-form")).to_be_visible()
    assert page.get_by_test_id("train-dataset").input_value() == journey.state["dataset_id"]
    targets = page.get_by_test_id("train-target").locator("option")
    expect(targets).to_have_text([SIZE, COUNT, COLOUR, LABEL])
    page.get_by_test_id("train-target").select_option(LABEL)
    assert page.get_by_test_id("train-task").input_value() == "classification"
    estimators = page.get_by_test_id("train-estimator").locator("option").all_inner_texts()
    assert {"LogisticRegression", "RandomForestClassifier"} <= set(estimators)
    assert "Ridge" not in estimators  # a regressor
    page.get_by_test_id("train-estimator").select_option("RandomForestClassifier")
    expect(page.get_by_test_id("param-n_estimators")).to_have_attribute("placeholder", "100")
    expect(page.get_by_test_id("param-bootstrap").locator("option").first).to_have_text(
        "default (true)"
    )
    expect(page.get_by_test_id("param-n_estimators")).to_have_attribute(
        "step", "1"
    )  # an integer (param_types)
    # The types newer services give (param_types) decide the field, else the default does.
    described = page.evaluate(
        """async () => {
            const { describeParameter: d } = await import("/ui/assets/train.js");
            return [d("max_depth", null, "integer|null"), d("criterion", "gini", "string"),
                    d("verbose", 0, "integer|boolean"), d("oob", false, "boolean"),
                    d("alpha", 0.5, "number|integer"), d("C", 1), d("solver", "lbfgs")]
              .map((p) => [p.name, p.type, p.hint]);
        }"""
    )
    assert described == [
        ["max_depth", "integer", "integer|null"],
        ["criterion", "string", "string"],
        ["verbose", "any", "integer|boolean"],
        ["oob", "boolean", "boolean"],
        ["alpha", "float", "number|integer"],
        ["C", "float", None],
        ["solver", "any", None],
    ]
    page.get_by_test_id("param-n_estimators").fill("15")
    page.get_by_test_id("param-random_state").fill("0")
    page.get_by_test_id("train-cv").fill("3")
    page.get_by_test_id("train-name").fill(RF_NAME)
    journey.shot("train-form")
    page.evaluate(WATCH_PROGRESS, "train-progress")
    page.get_by_test_id("train-submit").click()
    expect(page.get_by_test_id("train-progress")).to_be_visible()
    expect(page.get_by_test_id("train-model-link")).to_be_visible(timeout=WORK_TIMEOUT)
    expect(page.get_by_test_id("train-progress-text")).to_have_text("finished")
    seen = page.evaluate("window.progressSeen")
    assert len(set(seen)) >= 3, seen  # queued, the steps of training, finished
    journey.shot("train-done")
    journey.check_clean()
    page.get_by_test_id("train-model-link").click()
    expect(page.get_by_test_id("model-name")).to_have_text(RF_NAME)
    journey.state["rf_id"] = page.url.rsplit("/", 1)[1]


def test_model_page_shows_metrics_plots_and_lineage(journey):
    """Metrics, the confusion matrix with the hostile labels as text, every plot of the report
    loaded (its natural size is the PNG's), the lineage naming the data set, the bundle."""
    page = journey.page
    expect(page.get_by_test_id("model-page-status")).to_have_text("ready")
    expect(page.get_by_test_id("model-metrics")).to_contain_text("accuracy")
    expect(page.get_by_test_id("model-cv")).to_contain_text("3-fold cross-validation")
    matrix = page.get_by_test_id("confusion-matrix")
    expect(matrix.locator("thead th")).to_have_text(["", YES, NO])
    expect(page.get_by_test_id("model-dataset")).to_have_text(journey.state["dataset_id"])
    plots = page.get_by_test_id("report-plot")
    expect(plots.first).to_be_visible()
    page.wait_for_function(
        """() => [...document.querySelectorAll("[data-testid=report-plot]")]
                 .every((image) => image.complete && image.naturalWidth > 0)"""
    )
    sizes = plots.evaluate_all(
        "images => images.map((i) => [i.naturalWidth, i.naturalHeight, i.width, i.height,"
        " i.getAttribute('width'), i.getAttribute('height'), i.src.slice(0, 5)])"
    )
    assert len(sizes) >= 2, sizes  # a confusion matrix and more
    for natural_w, natural_h, shown_w, shown_h, width, height, scheme in sizes:
        assert (natural_w, natural_h) == (int(width), int(height))  # the report's own size
        assert natural_w >= 300 and natural_h >= 200 and shown_w > 100 and shown_h > 50
        assert scheme == "blob:"
    journey.shot("model", min_height=1500)
    with page.expect_download() as bundle:
        page.get_by_test_id("model-download").click()
    path = bundle.value.path()
    assert bundle.value.suggested_filename == journey.state["rf_id"] + ".mlbundle"
    assert path.read_bytes()[:8] == b"MLSBNDL1"
    # The page shows the record's sha256 of the bundle, and it is the file's.
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    expect(page.get_by_test_id("model-bundle-sha256")).to_have_text(sha256)
    # Held-out scores beside the same scores on the rows it was fitted on.
    name = page.get_by_test_id("metric-name").get_by_text("accuracy", exact=True)
    accuracy = page.get_by_test_id("metric-row").filter(has=name)
    expect(accuracy.get_by_test_id("metric-held-out")).to_have_count(1)
    expect(accuracy.get_by_test_id("metric-training")).not_to_have_text("—")
    journey.check_clean()


def test_models_list_sorts_and_filters(journey, client, admin_token):
    """A second model (trained through the API) beside the first: the filters narrow the list,
    the column headers sort it."""
    body = {
        "dataset_id": journey.state["dataset_id"],
        "target": LABEL,
        "estimator": "LogisticRegression",
        "name": LR_NAME,
    }
    accepted = client.post("/resource/models", admin_token, json=body).json()
    journey.state["lr_id"] = accepted["model_id"]
    page = journey.page
    page.get_by_test_id("nav-models").click()
    expect(page.get_by_test_id("models-table")).to_be_visible()
    rows = page.get_by_test_id("model-row")
    page.get_by_test_id("models-filter").fill("window.pwned=5")
    expect(rows).to_have_count(1)
    expect(rows.get_by_test_id("model-link")).to_have_text(LR_NAME)
    # The page shows the list as it was loaded; reloading it shows the new model ready.
    expect(page.get_by_test_id("models-count")).to_contain_text("1 of")
    page.get_by_test_id("models-filter").fill("")
    page.get_by_test_id("models-estimator").select_option("RandomForestClassifier")
    expect(rows.filter(has_text=RF_NAME)).to_have_count(1)
    expect(rows.filter(has_text=LR_NAME)).to_have_count(0)
    page.get_by_test_id("models-estimator").select_option("")
    page.get_by_test_id("models-filter").fill(MARK)
    expect(rows).to_have_count(2)
    page.get_by_test_id("sort-name").click()
    expect(rows.get_by_test_id("model-link")).to_have_text([RF_NAME, LR_NAME])
    page.get_by_test_id("sort-name").click()
    expect(rows.get_by_test_id("model-link")).to_have_text([LR_NAME, RF_NAME])
    expect(page.get_by_test_id("sort-name")).to_have_attribute("aria-sort", "descending")
    journey.shot("models")
    page.get_by_test_id("models-status").select_option("failed")
    expect(rows).to_have_count(0)
    page.get_by_test_id("models-status").select_option("")
    journey.check_clean()


def test_try_it_and_score_a_csv_file(journey, tmp_path):
    """The "try it" form has a field per input column (names as text, categories offered);
    a CSV of rows comes back scored, as a download."""
    page = journey.page
    page.get_by_test_id("models-filter").fill("")
    page.get_by_test_id("model-row").filter(has_text=RF_NAME).get_by_test_id("model-link").click()
    form = page.get_by_test_id("try-form")
    expect(form.locator("label")).to_have_text([SIZE, COUNT, COLOUR, "With probabilities"])
    options = form.locator("datalist option").evaluate_all("all => all.map((o) => o.value)")
    assert options == sorted(COLOURS)
    page.get_by_test_id("try-input-0").fill("9.5")
    page.get_by_test_id("try-input-1").fill("4")
    page.get_by_test_id("try-input-2").fill(COLOURS[2])
    page.get_by_test_id("try-submit").click()
    expect(page.get_by_test_id("try-prediction")).to_have_text(YES)
    classes = page.get_by_test_id("try-probabilities-table").locator("tbody td:first-child")
    expect(classes).to_have_text([YES, NO])
    form.screenshot(path=SCREENSHOTS / "try-it.png")

    rows = tmp_path / "rows.csv"
    with rows.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([SIZE, COUNT, COLOUR])
        writer.writerows([[9.5, 4, COLOURS[0]], [0.5, 0, COLOURS[1]], [8.0, 5, COLOURS[3]]])
    page.get_by_test_id("score-file").set_input_files(rows)
    with page.expect_download() as scored:
        page.get_by_test_id("score-submit").click()
    assert scored.value.suggested_filename == "rows-predictions.csv"
    answer = list(csv.reader(scored.value.path().read_text().splitlines()))
    assert answer[0] == ["prediction"]
    assert [row[0] for row in answer[1:]] == [YES, NO, YES]
    expect(page.get_by_test_id("score-result")).to_contain_text("rows-predictions.csv")
    journey.check_clean()


def test_score_a_stored_data_set_on_a_worker(journey):
    """The model page scores a stored data set as a job, followed to the new data set."""
    page = journey.page
    page.get_by_test_id("batch-dataset").select_option(journey.state["dataset_id"])
    page.get_by_test_id("batch-keep").fill(LABEL)
    page.get_by_test_id("batch-submit").click()
    expect(page.get_by_test_id("batch-result")).to_have_text(
        "Scored 80 rows into a new data set.", timeout=WORK_TIMEOUT
    )
    expect(page.get_by_test_id("batch-progress-text")).to_have_text("finished")
    page.get_by_test_id("batch-dataset-link").click()
    expect(page.get_by_test_id("dataset-name")).to_contain_text(DATASET_NAME)
    expect(page.get_by_test_id("column-name")).to_have_text([LABEL, "prediction"])
    journey.check_clean()
    page.go_back()
    expect(page.get_by_test_id("model-name")).to_have_text(RF_NAME)


def test_download_onnx(journey, client, admin_token):
    """The forest is compiled: "Download ONNX" saves the graph the API gives, an ONNX model
    taking the three input columns."""
    page = journey.page
    model_id = journey.state["rf_id"]
    record = client.get(f"/resource/models/{model_id}", admin_token).json()
    assert record["engine"]["name"] == "onnxruntime", record["engine"]
    with page.expect_download() as graph:
        page.get_by_test_id("model-download-onnx").click()
    assert graph.value.suggested_filename == model_id + ".onnx"
    saved = graph.value.path().read_bytes()
    direct = client.get(f"/resource/models/{model_id}/download?format=onnx", admin_token)
    assert direct.status_code == 200
    assert hashlib.sha256(saved).hexdigest() == hashlib.sha256(direct.content).hexdigest()
    assert saved[:1] == b"\x08"  # a ModelProto starts with its ir_version (field 1, varint)
    loaded = onnx.load_model_from_string(saved)
    assert len(loaded.graph.input) == 3
    expect(page.get_by_test_id("model-download-error")).to_be_empty()
    journey.check_clean()


def test_explain_the_try_it_row(journey, client, admin_token):
    """Explain on the try-it row: the base value and one bar per input column, largest
    first, the API's exact numbers, adding up to the model's output."""
    page = journey.page
    row = {SIZE: 9.5, COUNT: 4, COLOUR: COLOURS[2]}
    page.get_by_test_id("try-input-0").fill("9.5")
    page.get_by_test_id("try-input-1").fill("4")
    page.get_by_test_id("try-input-2").fill(COLOURS[2])
    page.get_by_test_id("try-explain").click()
    contributions = page.get_by_test_id("explain-contribution")
    expect(contributions).to_have_count(3, timeout=WORK_TIMEOUT)
    answer = client.post(
        f"/resource/models/{journey.state['rf_id']}/explain", admin_token, json=row
    )
    assert answer.status_code == 200, answer.text
    explained = answer.json()["rows"][0]
    by_size = sorted(explained["contributions"].items(), key=lambda item: -abs(item[1]))
    expect(page.get_by_test_id("explain-feature")).to_have_text([name for name, _ in by_size])
    shown = contributions.evaluate_all("all => all.map((item) => Number(item.dataset.value))")
    assert shown == [value for _, value in by_size]
    base = float(page.get_by_test_id("explain-base").inner_text())
    assert base == pytest.approx(explained["base_value"], rel=1e-3)
    assert explained["base_value"] + sum(shown) == pytest.approx(explained["output"], abs=1e-6)
    expect(page.get_by_test_id("explain-summary")).to_contain_text(f"Why {YES}")
    # The bars, drawn from zero across 200 units: the longest first, each its share.
    widths = page.locator("[data-testid=explain-contribution] rect").evaluate_all(
        "all => all.map((rect) => Number(rect.getAttribute('width')))"
    )
    span = max(shown + [0]) - min(shown + [0])
    assert widths == pytest.approx([abs(v) * 200 / span for v in shown]), widths
    assert widths[0] == max(widths)
    page.get_by_test_id("explain-result").screenshot(path=SCREENSHOTS / "explain.png")
    journey.check_clean()


def test_prediction_log_drift_and_export(journey, client, admin_token):
    """Turn the log on, predict rows unlike the training ones through the API: the drift
    table flags the moved columns as the API does; the log exports as a data set."""
    page = journey.page
    model_id = journey.state["rf_id"]
    switch = page.get_by_test_id("model-log-switch")
    expect(switch).not_to_be_checked()
    expect(page.get_by_test_id("model-log-state")).to_have_text("off")
    switch.check()
    expect(page.get_by_test_id("model-log-state")).to_have_text("on")
    assert client.get(f"/resource/models/{model_id}", admin_token).json()["log_predictions"]
    # Sizes far above training's 0 to 10, one colour only.
    sent = [{SIZE: 20 + i / 10, COUNT: i % 6, COLOUR: COLOURS[0]} for i in range(60)]
    predicted = client.post(f"/resource/models/{model_id}/predict", admin_token, json=sent)
    assert predicted.status_code == 200, predicted.text

    def logged():
        answer = client.get(f"/resource/models/{model_id}/drift?window=60", admin_token)
        return answer.json() if answer.status_code == 200 and answer.json()["rows"] == 60 else None

    drift = eventually(logged, timeout=30, message="60 rows were not logged")
    assert {SIZE, COLOUR} <= set(drift["drifted"]), drift
    page.get_by_test_id("drift-window").fill("60")
    page.get_by_test_id("drift-submit").click()
    rows = page.get_by_test_id("drift-row")
    expect(rows).to_have_count(3)
    expect(page.get_by_test_id("drift-summary")).to_contain_text(
        "60 rows from the prediction log against"
    )
    expect(rows.get_by_test_id("drift-column")).to_have_text(
        [c["feature"] for c in drift["columns"]]
    )
    expect(rows.get_by_test_id("drift-flag")).to_have_text(
        ["drifted" if c["drifted"] else "stable" for c in drift["columns"]]
    )
    expect(page.locator("tr.drifted[data-testid=drift-row]")).to_have_count(len(drift["drifted"]))
    size = rows.filter(has=page.get_by_test_id("drift-column").get_by_text(SIZE, exact=True))
    expect(cell(size, "Type")).to_have_text("number")
    page.get_by_test_id("model-monitoring").screenshot(path=SCREENSHOTS / "monitoring.png")

    page.get_by_test_id("log-export").click()
    expect(page.get_by_test_id("log-export-link")).to_be_visible(timeout=WORK_TIMEOUT)
    expect(page.get_by_test_id("log-export-result")).to_contain_text("Exported 60 rows")
    page.get_by_test_id("log-export-link").click()
    expect(page.get_by_test_id("column-name")).to_contain_text(
        [SIZE, COUNT, COLOUR, "prediction", "model_id"]
    )
    journey.check_clean()
    page.go_back()
    expect(page.get_by_test_id("model-name")).to_have_text(RF_NAME)
    expect(page.get_by_test_id("model-log-state")).to_have_text("on")


def test_registry_promote_and_roll_back(journey, client, admin_token):
    """Two versions of a registered name: promote one, then the other, each confirmed, then
    roll back; the history lists every change."""
    page = journey.page
    name = "console-churn"
    page.get_by_test_id("model-register").click()  # from the forest's page
    expect(page.get_by_test_id("register-form")).to_be_visible()
    assert page.get_by_test_id("register-model").input_value() == journey.state["rf_id"]
    page.get_by_test_id("register-name").fill(name)
    page.get_by_test_id("register-submit").click()
    expect(page.get_by_test_id("registered-name")).to_have_text(name)
    page.get_by_test_id("promote-alias").fill("production")
    page.get_by_test_id("promote-submit").click()
    expect(page.get_by_test_id("confirm-question")).to_contain_text("to version 1")
    page.get_by_test_id("confirm-yes").click()
    expect(page.get_by_test_id("alias-target")).to_have_text("version 1")

    # The linear model, ready by now, becomes version 2 (through the API).
    for _ in range(60):
        if client.get(f"/resource/models/{journey.state['lr_id']}", admin_token).json()[
            "status"
        ] in ("ready", "failed"):
            break
        page.wait_for_timeout(500)
    added = client.post(
        f"/resource/registry/{name}/versions",
        admin_token,
        json={"model_id": journey.state["lr_id"]},
    )
    assert added.status_code == 201, added.text
    page.reload()
    expect(page.get_by_test_id("version-row")).to_have_count(2)
    page.get_by_test_id("promote-version").select_option("2")
    page.get_by_test_id("promote-submit").click()
    expect(page.get_by_test_id("confirm-question")).to_contain_text("from version 1 to version 2")
    page.get_by_test_id("confirm-no").click()  # not yet
    expect(page.get_by_test_id("alias-target")).to_have_text("version 1")
    page.get_by_test_id("promote-submit").click()
    page.get_by_test_id("confirm-yes").click()
    expect(page.get_by_test_id("alias-target")).to_have_text("version 2")
    rollback = page.get_by_test_id("alias-rollback")
    expect(rollback).to_have_text("Roll back to version 1")
    rollback.click()
    expect(page.get_by_test_id("confirm-question")).to_contain_text("from version 2 to version 1")
    page.get_by_test_id("confirm-yes").click()
    expect(page.get_by_test_id("alias-target")).to_have_text("version 1")
    served = client.get(f"/resource/registry/{name}/aliases/production", admin_token).json()
    assert served["version"] == 1
    expect(page.get_by_test_id("history-event")).to_have_text(
        ["alias_moved", "alias_moved", "version_added", "alias_set", "version_added", "created"]
    )
    journey.shot("registry", min_height=600)
    journey.check_clean()


def test_registry_name_log_switch_writes_history(journey, client, admin_token):
    """The registered name's prediction-log switch: on, recorded, one history entry."""
    page = journey.page
    name = "console-churn"
    expect(page.get_by_test_id("registry-log-state")).to_have_text("off")
    page.get_by_test_id("registry-log-switch").check()
    expect(page.get_by_test_id("registry-log-state")).to_have_text("on")
    newest = page.get_by_test_id("history-row").first
    expect(newest.get_by_test_id("history-event")).to_have_text("log_predictions_changed")
    expect(cell(newest, "Before")).to_have_text("false")
    expect(cell(newest, "After")).to_have_text("true")
    assert client.get(f"/resource/registry/{name}", admin_token).json()["log_predictions"] is True
    history = client.get(f"/resource/registry/{name}/history", admin_token).json()["history"]
    assert [e["event"] for e in history].count("log_predictions_changed") == 1
    expect(page.get_by_test_id("registry-log-switch")).to_be_checked()
    page.get_by_test_id("registry-log").screenshot(path=SCREENSHOTS / "registry-log.png")
    journey.check_clean()


ROLES_NAME = 'roles "override"'


def test_train_with_a_role_override(journey, client, admin_token):
    """The train form offers each column's detected role; COUNT ignored and COLOUR as free
    text make a model without COUNT (a warning says so) that is not compiled (Download
    ONNX shows the API's reason)."""
    page = journey.page
    page.get_by_test_id("nav-train").click()
    page.get_by_test_id("train-dataset").select_option(journey.state["dataset_id"])
    page.get_by_test_id("train-target").select_option(LABEL)
    roles = page.get_by_test_id("train-role")
    expect(roles).to_have_count(3)
    detected = roles.evaluate_all("all => all.map((s) => s.value)")
    assert detected == ["numeric", "numeric", "categorical"], detected
    expect(roles.nth(2).locator("option:checked")).to_have_text("categorical (detected)")
    roles.nth(1).select_option("ignore")
    roles.nth(2).select_option("text")
    page.get_by_test_id("train-estimator").select_option("LogisticRegression")
    page.get_by_test_id("train-name").fill(ROLES_NAME)
    page.get_by_test_id("train-submit").click()
    page.get_by_test_id("train-model-link").click(timeout=WORK_TIMEOUT)
    expect(page.get_by_test_id("model-name")).to_have_text(ROLES_NAME)
    expect(page.get_by_test_id("model-page-status")).to_have_text("ready")
    model_id = page.url.rsplit("/", 1)[1]
    record = client.get(f"/resource/models/{model_id}", admin_token).json()
    assert [c["name"] for c in record["input_schema"]] == [SIZE, COLOUR]
    expect(page.get_by_test_id("model-roles")).to_have_text(f"{COUNT}: ignore{COLOUR}: text")
    left_out = page.get_by_test_id("model-warning").filter(has_text="column_left_out")
    expect(left_out).to_have_count(1)
    expect(left_out).to_contain_text(COUNT)
    expect(page.get_by_test_id("try-form").locator("label")).to_have_text(
        [SIZE, COLOUR, "With probabilities"]
    )
    expect(page.get_by_test_id("metric-training").first).to_be_visible()
    refusal = client.get(f"/resource/models/{model_id}/download?format=onnx", admin_token)
    assert refusal.status_code == 409
    page.get_by_test_id("model-download-onnx").click()
    expect(page.get_by_test_id("model-download-error")).to_have_text(refusal.json()["status"])
    # Nothing predicted yet: drift and the export say so in the API's words.
    no_rows = client.get(f"/resource/models/{model_id}/drift", admin_token)
    assert no_rows.status_code == 409
    page.get_by_test_id("drift-submit").click()
    expect(page.get_by_test_id("drift-error")).to_have_text(no_rows.json()["status"])
    expect(page.get_by_test_id("drift-row")).to_have_count(0)
    page.get_by_test_id("log-export").click()
    expect(page.get_by_test_id("model-log-error")).to_contain_text("has no logged predictions")
    expect(page.get_by_test_id("log-export-link")).to_have_count(0)
    journey.errors.clear()  # the browser logs the 409s itself
    journey.shot("model-roles", min_height=1200)
    journey.check_clean()


def test_users_create_change_and_delete(journey, admin_credentials):
    """An admin creates an account (a short password is refused in the API's words), makes it an
    admin, disables and enables it, and deletes it after confirming."""
    page = journey.page
    page.get_by_test_id("nav-users").click()
    expect(page.get_by_test_id("users-table")).to_be_visible()
    page.get_by_test_id("user-new-name").fill("console-bob")
    page.get_by_test_id("user-new-password").fill("short")
    page.get_by_test_id("user-create").click()
    expect(page.get_by_test_id("user-error")).to_have_text(
        "password must be a string of at least 8 characters"
    )
    journey.errors.clear()  # the browser logs the 400 itself
    page.get_by_test_id("user-new-password").fill("console-bob-password")
    page.get_by_test_id("user-create").click()
    row = page.get_by_test_id("user-row").filter(has_text="console-bob")
    expect(row).to_have_count(1)
    expect(cell(row, "Role")).to_have_text("user")
    row.get_by_test_id("user-role").select_option("admin")
    expect(page.get_by_test_id("flash")).to_contain_text("console-bob is now admin")
    expect(cell(row, "Role")).to_have_text("admin")
    row.get_by_test_id("user-disable").click()
    expect(page.get_by_test_id("confirm-question")).to_contain_text("Disable the account")
    page.get_by_test_id("confirm-yes").click()
    expect(row.get_by_test_id("user-state")).to_have_text("disabled")
    expect(row.get_by_test_id("user-disable")).to_have_text("Enable")
    journey.shot("users")
    row.get_by_test_id("user-disable").click()
    expect(row.get_by_test_id("user-state")).to_have_text("active")
    row.get_by_test_id("user-delete").click()
    expect(page.get_by_test_id("confirm-no")).to_be_focused()  # the safe answer first
    page.keyboard.press("Escape")  # as Cancel
    expect(page.get_by_test_id("confirm-dialog")).to_have_count(0)
    expect(row).to_have_count(1)
    row.get_by_test_id("user-delete").click()
    expect(page.get_by_test_id("confirm-question")).to_contain_text("console-bob")
    page.get_by_test_id("confirm-yes").click()
    expect(row).to_have_count(0)
    name = page.get_by_test_id("user-name").get_by_text(admin_credentials[0], exact=True)
    own = page.get_by_test_id("user-row").filter(has=name)
    expect(own.get_by_test_id("user-delete")).to_be_disabled()  # not your own account
    journey.check_clean()


def test_search_leaderboard_is_live(journey):
    """A small grid search started from the form: the leaderboard fills while it runs, the
    best model is linked, and the report's plots load."""
    page = journey.page
    page.get_by_test_id("nav-searches").click()
    expect(page.get_by_test_id("search-form")).to_be_visible()
    page.get_by_test_id("train-dataset").select_option(journey.state["dataset_id"])
    page.get_by_test_id("train-target").select_option(LABEL)
    expect(page.get_by_test_id("train-role")).to_have_count(0)  # searches take no roles
    page.get_by_test_id("search-estimator").select_option("RandomForestClassifier")
    page.get_by_test_id("search-space").fill('{"n_estimators": [5, 10], "max_depth": [null, 3]}')
    page.get_by_test_id("search-strategy").select_option("grid")
    page.get_by_test_id("search-name").fill('grid <b>"four"</b>')
    page.get_by_test_id("search-space").fill("{not json")
    page.get_by_test_id("search-submit").click()
    expect(page.get_by_test_id("search-error")).to_contain_text("The space is not JSON")
    page.get_by_test_id("search-space").fill('{"n_estimators": [5, 10], "max_depth": [null, 3]}')
    page.get_by_test_id("search-submit").click()
    expect(page.get_by_test_id("search-name")).to_have_text('grid <b>"four"</b>')
    journey.state["search_id"] = page.url.rsplit("/", 1)[1]
    expect(page.get_by_test_id("trial-row")).to_have_count(4)  # listed while queued or running
    expect(page.get_by_test_id("search-state")).to_have_text("done", timeout=WORK_TIMEOUT)
    expect(page.get_by_test_id("trial-score")).to_have_count(4)
    expect(page.get_by_test_id("search-best-model")).to_be_visible()
    expect(page.get_by_test_id("search-cancel")).to_be_hidden()
    plots = page.get_by_test_id("report-plot")
    expect(plots.first).to_be_visible(timeout=WORK_TIMEOUT)
    page.wait_for_function(
        """() => [...document.querySelectorAll("[data-testid=report-plot]")]
                 .every((image) => image.complete && image.naturalWidth > 0)"""
    )
    sizes = plots.evaluate_all(
        "all => all.map((i) => [i.naturalWidth, i.naturalHeight, +i.getAttribute('width')])"
    )
    assert sizes and all(w == width and w >= 300 and h >= 200 for w, h, width in sizes), sizes
    journey.shot("search", min_height=500)
    journey.check_clean()


def test_an_expired_token_sends_the_user_back_to_sign_in(journey):
    """A token the API no longer takes: the next call's 401 brings the sign-in form back with
    the API's reason, and signing in again returns to the page."""
    page = journey.page
    page.evaluate(
        """() => {
            const key = "mlservice.console.session";
            const session = JSON.parse(sessionStorage.getItem(key));
            session.token = "not-a-token";
            sessionStorage.setItem(key, JSON.stringify(session));
        }"""
    )
    page.get_by_test_id("nav-datasets").click()
    expect(page.get_by_test_id("signin-form")).to_be_visible()
    expect(page.get_by_test_id("signin-error")).to_have_text(
        "Your session ended (malformed bearer token: not a JSON Web Token); sign in again."
    )
    assert page.evaluate("sessionStorage.length") == 0
    journey.shot("signin-expired")
    journey.errors.clear()  # the browser logs the 401 itself


def test_keyboard_only_sign_in_and_a_narrow_screen(journey, admin_credentials):
    """Sign in with the keyboard alone; at 390 px wide nothing overflows sideways."""
    page = journey.page
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_test_id("signin-username").focus()
    page.keyboard.type(admin_credentials[0])
    page.keyboard.press("Tab")
    page.keyboard.type(admin_credentials[1])
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("datasets-list")).to_be_visible()
    for name, hash_ in (
        ("narrow-datasets", "#/datasets"),
        ("narrow-profile", "#/datasets/" + journey.state["dataset_id"]),
        ("narrow-model", "#/models/" + journey.state["rf_id"]),
        ("narrow-train", "#/train"),
        ("narrow-models", "#/models"),
        ("narrow-search", "#/searches/" + journey.state["search_id"]),
        ("narrow-registry", "#/registry/console-churn"),
        ("narrow-users", "#/users"),
    ):
        page.evaluate("hash => { location.hash = hash; }", hash_)
        expect(page.locator("main h1")).to_be_visible()
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 390, (name, overflow)
        journey.shot(name, min_height=500)
    # The model page's explanation and drift table fit too.
    page.evaluate("hash => { location.hash = hash; }", "#/models/" + journey.state["rf_id"])
    page.get_by_test_id("try-input-0").fill("1.5")
    page.get_by_test_id("try-input-1").fill("0")
    page.get_by_test_id("try-explain").click()
    expect(page.get_by_test_id("explain-contribution")).to_have_count(3, timeout=WORK_TIMEOUT)
    page.get_by_test_id("drift-window").fill("60")
    page.get_by_test_id("drift-submit").click()
    expect(page.get_by_test_id("drift-row")).to_have_count(3)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_test_id("try-form").screenshot(path=SCREENSHOTS / "narrow-explain.png")
    page.get_by_test_id("drift-form").screenshot(path=SCREENSHOTS / "narrow-drift.png")
    journey.check_clean()


def test_sign_out_forgets_the_token(journey):
    page = journey.page
    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("signin-form")).to_be_visible()
    expect(page.get_by_test_id("flash")).to_have_text("You are signed out.")
    assert page.evaluate("sessionStorage.length + localStorage.length") == 0
    page.get_by_test_id("nav-models").evaluate("link => link.click()")  # hidden: by script
    expect(page.get_by_test_id("signin-form")).to_be_visible()
    journey.check_clean()
