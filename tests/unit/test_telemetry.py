"""The metrics' pure parts: bounded labels, recording, and adding up several processes' values."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from mlservice import telemetry


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_labels_stay_bounded():
    assert telemetry.route_label("/resource/models/<hexid:model_id>") == (
        "/resource/models/<hexid:model_id>"
    )
    assert telemetry.route_label(None) == "unmatched"
    assert telemetry.method_label("post") == "POST"
    assert telemetry.method_label("BREW") == "other"
    assert telemetry.engine_label("onnxruntime") == "onnxruntime"
    assert telemetry.engine_label("scikit-learn") == "scikit-learn"
    assert telemetry.engine_label(None) == "other"
    assert telemetry.engine_label("torch") == "other"
    assert telemetry.task_label("mlservice.tasks.train_model") == "mlservice.tasks.train_model"
    assert telemetry.task_label("celery.backend_cleanup") == "other"
    assert telemetry.task_label(None) == "other"
    assert [telemetry.token_outcome(s) for s in (200, 401, 429, 503)] == [
        "issued",
        "refused",
        "throttled",
        "error",
    ]


def test_a_prediction_is_counted_by_kind_and_engine_with_its_rows():
    labels = {"kind": "user", "engine": "scikit-learn"}
    before = value("mlservice_predictions_total", **labels)
    rows_before = value("mlservice_prediction_rows_sum", **labels)
    telemetry.prediction("user", "scikit-learn", 7)
    telemetry.prediction("user", "scikit-learn", None)  # rows unknown: counted, no rows
    assert value("mlservice_predictions_total", **labels) == before + 2
    assert value("mlservice_prediction_rows_sum", **labels) == rows_before + 7


def test_a_model_id_is_never_a_kind():
    with pytest.raises(ValueError, match="model kind"):
        telemetry.prediction("0" * 32, "onnxruntime", 1)


def test_requests_are_counted_by_route_template_method_and_status():
    rule = "/resource/models/<hexid:model_id>"
    labels = {"route": rule, "method": "GET", "status": "404"}
    before = value("mlservice_http_requests_total", **labels)
    telemetry.http_request(rule, "get", 404, 0.003)
    assert value("mlservice_http_requests_total", **labels) == before + 1
    assert value("mlservice_http_request_duration_seconds_bucket", route=rule, method="GET",
                 le="0.005") >= 1  # fmt: skip


def test_cache_functions_the_lead_calls():
    hits = value("mlservice_model_cache_hits_total")
    loads = value("mlservice_model_cache_load_seconds_count")
    evictions = value("mlservice_model_cache_evictions_total")
    held = value("mlservice_model_cache_bytes")
    telemetry.cache_hit()
    telemetry.cache_load(0.2)
    telemetry.cache_eviction()
    telemetry.cache_bytes(1000)
    telemetry.cache_bytes(-400)
    assert value("mlservice_model_cache_hits_total") == hits + 1
    assert value("mlservice_model_cache_load_seconds_count") == loads + 1
    assert value("mlservice_model_cache_evictions_total") == evictions + 1
    assert value("mlservice_model_cache_bytes") == held + 600


def test_training_duration_is_recorded_for_training_tasks_only():
    name = "mlservice.tasks.train_model"
    before = value("mlservice_training_duration_seconds_count", task=name, outcome="success")
    telemetry.training_finished(name, "success", 12.0)
    telemetry.training_finished("mlservice.tasks.send_callback", "success", 1.0)
    assert (
        value("mlservice_training_duration_seconds_count", task=name, outcome="success")
        == before + 1
    )
    assert (
        value(
            "mlservice_training_duration_seconds_count",
            task="mlservice.tasks.send_callback",
            outcome="success",
        )
        == 0
    )


def test_queue_keys_are_kombus_priority_lists():
    assert telemetry.queue_keys("celery") == [
        "celery",
        "celery\x06\x163",
        "celery\x06\x166",
        "celery\x06\x169",
    ]


def test_clearing_the_directory_keeps_only_this_processs_files(tmp_path: Path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"old")
    (directory / "histogram_2.db").write_bytes(b"old")
    own = directory / f"counter_{os.getpid()}.db"
    own.write_bytes(b"mine")
    telemetry.clear_directory(directory)
    assert sorted(p.name for p in directory.iterdir()) == [own.name]
    telemetry.clear_directory(tmp_path / "new")  # made when missing
    assert (tmp_path / "new").is_dir()


RECORD = """
from mlservice import telemetry
telemetry.prediction("default", "onnxruntime", {rows})
telemetry.cache_bytes({held})
"""


def test_a_scrape_adds_up_every_processs_values(tmp_path: Path):
    """Two processes record (as two Gunicorn workers would); a third serves the sum."""
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    for rows, held in ((3, 100), (5, 250)):
        code = RECORD.format(rows=rows, held=held)
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    scrape = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom mlservice import telemetry\n"
         "sys.stdout.buffer.write(telemetry.exposition())"],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scrape.stdout.decode())
        for sample in family.samples
    }
    labels = (("engine", "onnxruntime"), ("kind", "default"))
    assert samples[("mlservice_predictions_total", labels)] == 2
    assert samples[("mlservice_prediction_rows_sum", labels)] == 8
    # a live gauge: the sum of processes not marked dead (neither was)
    assert samples[("mlservice_model_cache_bytes", ())] == 350


def test_registered_names_get_labels_for_a_bounded_number_of_pairs(monkeypatch):
    monkeypatch.setattr(telemetry, "_registry_labels", set())
    monkeypatch.setattr(telemetry, "REGISTRY_SERIES", 2)
    assert telemetry.registry_labels("churn", 1) == ("churn", "1")
    assert telemetry.registry_labels("churn", 2) == ("churn", "2")
    assert telemetry.registry_labels("churn", 3) == ("other", "other")
    assert telemetry.registry_labels("churn", 1) == ("churn", "1")  # labelled before: kept
    metric = "mlservice_registry_shadow_comparisons_total"
    labels = {"name": "other", "version": "other", "outcome": "dropped"}
    before = REGISTRY.get_sample_value(metric, labels) or 0.0
    telemetry.shadow_comparison("fraud", 7, "dropped")
    assert REGISTRY.get_sample_value(metric, labels) == before + 1
    with pytest.raises(ValueError, match="shadow outcome"):
        telemetry.shadow_comparison("churn", 1, "maybe")
