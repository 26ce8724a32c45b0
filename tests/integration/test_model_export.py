"""Models that leave the service: the downloaded ONNX graph predicts what the service does,
outside it (a subprocess that cannot import the server package)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlservice
from tests.helpers import eventually, train, upload, wait_ready

pytestmark = pytest.mark.integration

#: The directory the server package is imported from (a parent of mlservice/).
SERVER_SRC = Path(mlservice.__file__).resolve().parent.parent

#: Run in a fresh interpreter that refuses to import the server package.
OUTSIDE = r"""
import importlib.util, json, os, sys

job = json.load(sys.stdin)
# The server package's directory leaves sys.path (the client is found by its own
# editable finder), so mlservice cannot be found at all ...
server_src = os.path.realpath(job["server_src"])
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != server_src]
assert importlib.util.find_spec("mlservice") is None, "the server package is still importable"

class NoServer:  # ... and any attempt to import it would fail loudly anyway
    def find_spec(self, name, path=None, target=None):
        if name == "mlservice" or name.startswith("mlservice."):
            raise ImportError("the server package is not available here")
        return None

sys.meta_path.insert(0, NoServer())
import numpy as np
import onnxruntime

records = job["records"]
answers = {}
if job.get("onnx"):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # the service's setting: the same sums, in the same order
    session = onnxruntime.InferenceSession(job["onnx"], options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    missing_text = json.loads(meta["mlservice.missing_text"])
    feed = {}
    for entry in json.loads(meta["mlservice.inputs"]):
        values = [record.get(entry["column"]) for record in records]
        if entry["type"] == "double":
            column = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        else:
            column = np.array([missing_text if v is None else str(v) for v in values], dtype=object)
        feed[entry["input"]] = column.reshape(-1, 1)
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))
    if "probabilities" in outputs:
        classes = json.loads(meta["mlservice.classes"])
        answers["onnx"] = {
            "predictions": [classes[int(i)] for i in outputs["label"].reshape(-1)],
            "probabilities": outputs["probabilities"].astype(float).tolist(),
            "inputs": [i.name for i in session.get_inputs()],
        }
    else:
        answers["onnx"] = {"predictions": outputs["variable"].reshape(-1).astype(float).tolist()}
if job.get("bundle"):
    import pandas as pd
    from mlservice_client import load_model

    model = load_model(job["bundle"], sha256=job["sha256"])
    frame = pd.DataFrame(records)
    classifier = model.task == "classification"
    table = model.predict_frame(frame, probabilities=classifier)
    answers["bundle"] = {
        "engine": model.engine,
        "predictions": table["prediction"].tolist(),
        "columns": list(table.columns),
        "probabilities": table.drop(columns="prediction").to_numpy().tolist(),
    }
    if classifier:
        answers["bundle"]["proba"] = model.predict_proba(frame).tolist()
    try:
        load_model(job["bundle"], sha256="0" * 64)
    except ValueError as refused:
        answers["bundle"]["wrong_hash"] = str(refused)
server = sorted(m for m in sys.modules if m == "mlservice" or m.startswith("mlservice."))
answers["server_modules"] = server
print(json.dumps(answers))
"""


def outside(job: dict) -> dict:
    """Run :data:`OUTSIDE` on ``job`` in a subprocess; its answers."""
    done = subprocess.run(
        [sys.executable, "-c", OUTSIDE],
        input=json.dumps({**job, "server_src": str(SERVER_SRC)}),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    assert answers["server_modules"] == []
    return answers


def wait_compiled(client, token, model_id, timeout=120) -> dict:
    """The record once the compile step after training has decided the engine."""

    def compiled() -> dict:
        record = wait_ready(client, token, model_id, timeout)
        assert not record["engine"]["reason"].startswith("compiling"), record
        return record

    return eventually(
        compiled,
        timeout=timeout,
        message=f"model {model_id} still compiling",
        retry_on=AssertionError,
    )


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """Numbers with gaps, a text column with gaps, a class and a value to predict."""
    rng = np.random.default_rng(22)
    n = 240
    frame = pd.DataFrame(
        {
            "width (cm)": rng.normal(10, 3, size=n).round(3),
            "weight": rng.normal(70, 12, size=n).round(2),
            "colour": rng.choice(["red", "green", "blue"], size=n).astype(object),
        }
    )
    frame.loc[::9, "width (cm)"] = np.nan
    frame.loc[::8, "colour"] = None
    score = frame["width (cm)"].fillna(10) - 10 + (frame["colour"] == "red") * 2
    frame["kind"] = np.where(score + rng.normal(size=n) > 0.5, "big", "small")
    frame["price"] = frame["weight"] * 1.5 + (frame["colour"] == "blue") * 9 + rng.normal(size=n)
    return frame


@pytest.fixture(scope="module")
def dataset_id(client, admin_token, table):
    return upload(client, admin_token, table)


RECORDS = [
    {"width (cm)": 12.5, "weight": 80.0, "colour": "red"},
    {"width (cm)": None, "weight": 61.25, "colour": None},
    {"width (cm)": 7.0, "weight": 90.5, "colour": "purple"},  # unseen category
    {"width (cm)": 10.0, "weight": 70.0, "colour": "blue"},
]


def trained(client, token, dataset_id, estimator, target, **extra) -> dict:
    body = {
        "dataset_id": dataset_id,
        "target": target,
        "features": ["width (cm)", "weight", "colour"],
        "estimator": estimator,
        "params": {"n_estimators": 20} if "XGB" in estimator or "LGBM" in estimator else {},
        **extra,
    }
    return wait_compiled(client, token, train(client, token, body)["model_id"])


@pytest.mark.parametrize(
    "estimator,target",
    [
        ("XGBClassifier", "kind"),
        ("LGBMRegressor", "price"),
        ("LogisticRegression", "kind"),
        ("XGBRegressor", "price"),
        ("LGBMClassifier", "kind"),
    ],
)
def test_the_downloaded_onnx_graph_predicts_what_the_service_does_outside_it(
    client, admin_token, dataset_id, estimator, target, tmp_path
):
    record = trained(client, admin_token, dataset_id, estimator, target)
    assert record["engine"]["name"] == "onnxruntime", record["engine"]
    model_id = record["id"]
    graph = client.get(f"/resource/models/{model_id}/download?format=onnx", admin_token)
    assert graph.status_code == 200, graph.text
    assert graph.headers["Content-Type"] == "application/octet-stream"
    assert graph.headers["Content-Disposition"] == f'attachment; filename="{model_id}.onnx"'
    classifier = target == "kind"
    query = "?probabilities=true" if classifier else ""
    served = client.post(f"/resource/models/{model_id}/predict{query}", admin_token, json=RECORDS)
    assert served.status_code == 200, served.text
    expected = served.json()
    path = tmp_path / "model.onnx"
    path.write_bytes(graph.content)
    bundle = client.get(f"/resource/models/{model_id}/download", admin_token)
    assert bundle.status_code == 200
    bundle_path = tmp_path / "model.mlbundle"
    bundle_path.write_bytes(bundle.content)
    answers = outside(
        {
            "onnx": str(path),
            "bundle": str(bundle_path),
            "sha256": record["bundle_sha256"],
            "records": RECORDS,
        }
    )
    opened = answers["bundle"]
    assert opened["engine"] == "onnxruntime"
    assert opened["wrong_hash"].endswith(
        f"does not have the sha256 {'0' * 64}: not the stored bundle"
    )
    assert opened["predictions"] == expected["predictions"]
    if classifier:
        labels = list(expected["probabilities"][0])
        assert opened["columns"] == ["prediction"] + [f"probability_{label}" for label in labels]
        want = [[row[label] for label in labels] for row in expected["probabilities"]]
        assert opened["probabilities"] == want
        assert opened["proba"] == want
    got = answers["onnx"]
    if classifier:
        assert [entry["input"] for entry in record["engine"]["onnx_inputs"]] == got["inputs"]
        assert [entry["column"] for entry in record["engine"]["onnx_inputs"]] == [
            "width (cm)",
            "weight",
            "colour",
        ]
        assert got["predictions"] == expected["predictions"]
        labels = list(expected["probabilities"][0])
        want = [[row[label] for label in labels] for row in expected["probabilities"]]
        assert np.abs(np.array(got["probabilities"]) - np.array(want)).max() <= 1e-6
    else:
        assert got["predictions"] == expected["predictions"]


@pytest.mark.parametrize(
    "estimator,target",
    [("HistGradientBoostingClassifier", "kind"), ("RandomForestRegressor", "price")],
)
def test_a_bundle_served_by_scikit_learn_predicts_the_same_outside_the_service(
    client, admin_token, dataset_id, estimator, target, tmp_path
):
    record = trained(client, admin_token, dataset_id, estimator, target, compile=False)
    model_id = record["id"]
    path = tmp_path / "model.mlbundle"
    path.write_bytes(client.get(f"/resource/models/{model_id}/download", admin_token).content)
    classifier = target == "kind"
    query = "?probabilities=true" if classifier else ""
    served = client.post(f"/resource/models/{model_id}/predict{query}", admin_token, json=RECORDS)
    assert served.status_code == 200, served.text
    expected = served.json()
    answers = outside({"bundle": str(path), "sha256": record["bundle_sha256"], "records": RECORDS})
    opened = answers["bundle"]
    assert opened["engine"] == "scikit-learn"
    assert opened["predictions"] == expected["predictions"]
    if classifier:
        labels = list(expected["probabilities"][0])
        want = [[row[label] for label in labels] for row in expected["probabilities"]]
        assert opened["probabilities"] == want


def test_a_model_without_a_graph_is_409_and_a_bad_format_400(client, admin_token, dataset_id):
    record = trained(client, admin_token, dataset_id, "Ridge", "price", compile=False)
    model_id = record["id"]
    refused = client.get(f"/resource/models/{model_id}/download?format=onnx", admin_token)
    assert refused.status_code == 409
    assert refused.json()["status"] == (
        f"model {model_id!r} has no ONNX graph: it is served by scikit-learn, because: "
        "not compiled: ONNX compilation is off for this model. Download it as a bundle "
        "instead (format=bundle)."
    )
    bad = client.get(f"/resource/models/{model_id}/download?format=zip", admin_token)
    assert bad.status_code == 400
    assert bad.json()["status"] == "unknown download format 'zip'; use bundle (the default) or onnx"
    missing = client.get(f"/resource/models/{'0' * 32}/download?format=onnx", admin_token)
    assert missing.status_code == 404


def mls(stack, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``mls`` as a user of the stack (no terminal: no progress bars)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLS_")}
    env |= {"MLS_URL": stack.url, "MLS_TOKEN": token}
    command = [str(Path(sys.executable).with_name("mls")), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_the_cli_downloads_the_graph_and_scores_a_data_set(
    stack, client, admin_token, dataset_id, tmp_path
):
    record = trained(client, admin_token, dataset_id, "XGBClassifier", "kind")
    model_id = record["id"]
    target = tmp_path / "kind.onnx"
    done = mls(
        stack, admin_token, "models", "download", model_id, "--format", "onnx", "-o", str(target)
    )
    assert done.returncode == 0, done.stderr
    graph = client.get(f"/resource/models/{model_id}/download?format=onnx", admin_token)
    assert target.read_bytes() == graph.content
    done = mls(
        stack,
        admin_token,
        "models",
        "score",
        model_id,
        dataset_id,
        "--probabilities",
        "--keep",
        "weight",
        "--format",
        "csv",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["state"] == "SUCCESS", status
    scored = status["result"]["dataset_id"]
    table = client.get(f"/resource/datasets/{scored}/download", admin_token)
    header = table.text.splitlines()[0]
    assert header == '"weight","prediction","probability_big","probability_small"'


def test_hist_gradient_boosting_compiles_or_says_why_and_leaves_the_service_either_way(
    client, admin_token, dataset_id, tmp_path
):
    for target in ("kind", "price"):
        estimator = (
            "HistGradientBoostingClassifier"
            if target == "kind"
            else ("HistGradientBoostingRegressor")
        )
        record = trained(client, admin_token, dataset_id, estimator, target)
        model_id, engine = record["id"], record["engine"]
        graph = client.get(f"/resource/models/{model_id}/download?format=onnx", admin_token)
        if engine["name"] == "onnxruntime":
            assert graph.status_code == 200
        else:  # float32 thresholds in ONNX can send a value near one down the other branch
            assert engine["reason"].endswith(", so scikit-learn serves this model."), engine
            assert graph.status_code == 409
            assert engine["reason"].rstrip(".") in graph.json()["status"]
        path = tmp_path / f"{target}.mlbundle"
        path.write_bytes(client.get(f"/resource/models/{model_id}/download", admin_token).content)
        served = client.post(f"/resource/models/{model_id}/predict", admin_token, json=RECORDS)
        assert served.status_code == 200, served.text
        assert served.headers["X-Model-Engine"] == engine["name"]
        answers = outside(
            {"bundle": str(path), "sha256": record["bundle_sha256"], "records": RECORDS}
        )
        assert answers["bundle"]["engine"] == engine["name"]
        assert answers["bundle"]["predictions"] == served.json()["predictions"]


def test_the_cli_shows_an_estimators_parameters_with_defaults_and_types(stack, admin_token):
    done = mls(stack, admin_token, "estimators", "LGBMRegressor")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["PARAMETER", "DEFAULT", "TYPES"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["num_leaves"] == ["31", "integer"]
    assert rows["random_state"] == ["0", "integer|null"]
    assert rows["boosting_type"] == ["gbdt", "string"]


def test_mls_models_show_gives_the_engine_reason_and_the_graph_inputs(
    stack, client, admin_token, dataset_id
):
    record = trained(client, admin_token, dataset_id, "LGBMClassifier", "kind")
    done = mls(stack, admin_token, "models", "show", record["id"])
    assert done.returncode == 0, done.stderr
    lines = {
        line.split("  ", 1)[0]: line.split("  ", 1)[1].strip()
        for line in done.stdout.splitlines()
        if "  " in line
    }
    assert lines["engine reason"] == record["engine"]["reason"]
    inputs = record["engine"]["onnx_inputs"]
    assert lines["onnx inputs"] == "; ".join(
        f"{i['column']} -> {i['input']} ({i['type']})" for i in inputs
    )
