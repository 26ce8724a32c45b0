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

import csv
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright

from mlservice.config import REPO_DIR
from mlservice.console import CONTENT_SECURITY_POLICY

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


def test_profile_shows_every_column_as_text(journey):
    """The profile: rows, every column's name, type, missing and distinct, values as text."""
    page = journey.page
    facts = page.get_by_test_id("dataset-facts")
    expect(facts).to_contain_text("Rows80")
    names = page.get_by_test_id("column-name")
    expect(names).to_have_text([SIZE, COUNT, COLOUR, LABEL])
    colour = page.get_by_test_id("profile-column").filter(has_text=COLOUR)
    expect(colour.locator("td").nth(1)).to_have_text("string")
    expect(colour.locator("td").nth(3)).to_have_text("4")
    expect(colour.get_by_test_id("category-value")).to_have_text(sorted(COLOURS))
    label = page.get_by_test_id("profile-column").filter(has_text=LABEL)
    expect(label.get_by_test_id("category-value")).to_have_text(sorted([YES, NO]))
    journey.shot("dataset-profile")
    journey.check_clean()


def test_delete_asks_first(journey, tmp_path):
    """Delete asks for confirmation: Cancel keeps the data set, Delete removes it."""
    page = journey.page
    data = tmp_path / "spare.csv"
    write_hostile_csv(data, rows=20)
    page.get_by_test_id("nav-datasets").click()
    page.get_by_test_id("upload-file").set_input_files(data)
    page.get_by_test_id("upload-submit").click()
    row = page.get_by_test_id("dataset-row").filter(has_text="spare.csv")
    expect(row).to_have_count(1)
    row.get_by_test_id("dataset-delete").click()
    expect(page.get_by_test_id("confirm-question")).to_contain_text("spare.csv")
    journey.shot("dataset-delete-confirm")
    page.get_by_test_id("confirm-no").click()
    expect(row).to_have_count(1)
    row.get_by_test_id("dataset-delete").click()
    page.get_by_test_id("confirm-yes").click()
    expect(page.get_by_test_id("flash")).to_have_text("Deleted “spare.csv”.")
    expect(row).to_have_count(0)
    expect(page.get_by_test_id("dataset-row").filter(has_text=DATASET_NAME)).to_have_count(1)
    journey.check_clean()


RF_NAME = 'forest <b>"one"</b>'
LR_NAME = "linear <script>window.pwned=5</script>"

#: Records every text the training progress shows, as the page changes it.
WATCH_PROGRESS = """() => {
  window.progressSeen = [];
  const text = document.querySelector("[data-testid=train-progress-text]");
  new MutationObserver(() => window.progressSeen.push(text.textContent))
    .observe(text, {childList: true, characterData: true, subtree: true});
}"""


def test_train_from_a_form_built_from_the_estimators(journey):
    """The form lists the estimators of the target's task with their parameters and defaults,
    the target among the data set's columns; training is followed live to the end."""
    page = journey.page
    page.get_by_test_id("dataset-row").filter(has_text=DATASET_NAME).get_by_test_id(
        "dataset-link"
    ).click()
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
    page.get_by_test_id("param-n_estimators").fill("15")
    page.get_by_test_id("param-random_state").fill("0")
    page.get_by_test_id("train-cv").fill("3")
    page.get_by_test_id("train-name").fill(RF_NAME)
    journey.shot("train-form")
    page.evaluate(WATCH_PROGRESS)
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
    page.get_by_test_id("models-filter").fill(LABEL)  # both models' target
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
