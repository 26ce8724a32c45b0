"""An API worker loads no worker code: no training, ONNX conversion or plotting.

A Gunicorn worker runs ``src/gunicorn.conf.py`` then ``create_app()``; this test
does the same in a fresh interpreter, sends it requests that touch every kind
of route (a training request, a search, a report, a prediction, an upload, task status),
and reads ``sys.modules``. Training, compiling and drawing happen in Celery
workers, which the API reaches by task name only.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mlservice.config import SRC_DIR

#: Modules only a Celery worker may load.
WORKER_ONLY = (
    "matplotlib",
    "skl2onnx",
    "mlservice.tasks",
    "mlservice.training.fitting",
    "mlservice.training.jobs",
    "mlservice.training.reports",
    "mlservice.training.onnx_conversion",
    "mlservice.training.pipeline",
    "mlservice.training.search_runs",
    "mlservice.training.search_plans",
    "mlservice.training.search_trials",
    "mlservice.training.search_report",
    "optuna",
    "shap",
    "numba",
    "mlservice.monitoring.explainers",
)

WORKER = """
import io, json, runpy, sys
runpy.run_path(sys.argv[1])  # what Gunicorn does with its config file
from mlservice.app import create_app
app = create_app()
ctx = app.extensions["mlservice"]
ctx.accounts.ensure_admin("admin", "admin-test-password")
client = app.test_client()
auth = {"Authorization": "Bearer " + client.get(
    "/resource/auth", auth=("admin", "admin-test-password")).get_json()["token"]}
rows = [b"%d,%d,%s\\n" % (i, i % 7, b"yes" if i % 2 else b"no") for i in range(60)]
csv = b"a,b,y\\n" + b"".join(rows)
upload = client.post("/resource/datasets", headers=auth, content_type="multipart/form-data",
                     data={"file": (io.BytesIO(csv), "t.csv", "text/csv")}).get_json()
statuses = {
    "train": client.post("/resource/models", headers=auth, json={
        "dataset_id": upload["id"], "target": "y", "estimator": "RandomForestClassifier"}
    ).status_code,
    "predict": client.post("/resource/predict", headers=auth, json={"a": 1}).status_code,
    "report": client.get("/resource/models/" + "0" * 32 + "/report", headers=auth).status_code,
    "explain": client.post("/resource/models/" + "0" * 32 + "/explain", headers=auth,
                           json={"a": 1}).status_code,
    "drift": client.get("/resource/models/" + "0" * 32 + "/drift", headers=auth).status_code,
    "estimators": client.get("/resource/estimators", headers=auth).status_code,
    "search": client.post("/resource/searches", headers=auth, json={
        "dataset_id": upload["id"], "target": "y", "estimator": "LogisticRegression",
        "space": {"C": [0.1, 1.0]}, "strategy": "grid"}).status_code,
    "searches": client.get("/resource/searches", headers=auth).status_code,
}
print(json.dumps({"statuses": statuses, "modules": sorted(sys.modules)}))
"""


@pytest.mark.slow
def test_an_api_worker_imports_no_training_or_plotting_code(redis_only):
    result = subprocess.run(
        [sys.executable, "-c", WORKER, str(SRC_DIR / "gunicorn.conf.py")],
        env=redis_only.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    # The routes really ran: accepted, not initialised (no default model), not found, listed.
    assert seen["statuses"] == {
        "train": 202,
        "predict": 424,
        "report": 404,
        "explain": 404,
        "drift": 404,
        "estimators": 200,
        "search": 202,
        "searches": 200,
    }
    loaded = [name for name in seen["modules"] if name.startswith(WORKER_ONLY)]
    assert loaded == []
