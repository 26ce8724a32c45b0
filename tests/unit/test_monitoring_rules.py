"""src/monitoring/: Prometheus's config and alerting rules are valid, and the alerts fire when
they should (and only then), checked by Debian's promtool (`make test` installs it)."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mlservice.config import SRC_DIR

MONITORING = SRC_DIR / "monitoring"
ALERTS = MONITORING / "alerts.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("no promtool: `make test` installs it (Debian package prometheus)")
    return found


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_the_scrape_config_is_valid(promtool):
    result = run(promtool, "check", "config", str(MONITORING / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_the_alerting_rules_are_valid(promtool):
    result = run(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def descriptions() -> dict[str, str]:
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    return {rule["alert"]: rule["annotations"]["description"] for rule in rules}


def expect(alert: str, summary: str, **labels: str) -> dict:
    """One alert as promtool expects it: labels and both annotations."""
    return {
        "exp_labels": labels,
        "exp_annotations": {"summary": summary, "description": descriptions()[alert]},
    }


def series(name: str, values: str, **labels: str) -> dict:
    text = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{text}}}", "values": values}


PREDICT = {"route": "/resource/predict", "method": "POST"}


def troubled() -> list[dict]:
    """10 % errors, p99 over 0.5 s, 30 queued trainings, the worker down: 20 minutes of it."""
    bucket = "mlservice_http_request_duration_seconds_bucket"
    return [
        series("mlservice_http_requests_total", "0+90x20", **PREDICT, status="200"),
        series("mlservice_http_requests_total", "0+10x20", **PREDICT, status="500"),
        series(bucket, "0+90x20", **PREDICT, le="0.5"),
        series(bucket, "0+100x20", **PREDICT, le="1"),
        series(bucket, "0+100x20", **PREDICT, le="+Inf"),
        # every API replica reports the same queue lengths
        series("mlservice_celery_queue_length", "30x20", queue="celery.training", instance="a"),
        series("mlservice_celery_queue_length", "30x20", queue="celery.training", instance="b"),
        series("up", "0x20", job="mlservice-worker", instance="worker:9808"),
        series("up", "1x20", job="mlservice-api", instance="api:8000"),
        # two API replicas report the same drift of one model's column
        series("mlservice_feature_drift", "3.5x20", model_id="m1", feature="x", instance="a"),
        series("mlservice_feature_drift", "3.5x20", model_id="m1", feature="x", instance="b"),
        series("mlservice_feature_drift", "0.05x20", model_id="m1", feature="y", instance="a"),
    ]


def healthy() -> list[dict]:
    """No errors, every prediction within 0.5 s, 5 queued, everything up."""
    bucket = "mlservice_http_request_duration_seconds_bucket"
    return [
        series("mlservice_http_requests_total", "0+100x20", **PREDICT, status="200"),
        series(bucket, "0+100x20", **PREDICT, le="0.5"),
        series(bucket, "0+100x20", **PREDICT, le="+Inf"),
        series("mlservice_celery_queue_length", "5x20", queue="celery.training", instance="a"),
        series("up", "1x20", job="mlservice-worker", instance="worker:9808"),
        series("up", "1x20", job="mlservice-api", instance="api:8000"),
        series("mlservice_feature_drift", "0.05x20", model_id="m1", feature="x", instance="a"),
    ]


ALL = [
    "MLServiceHighErrorRate",
    "MLServicePredictionLatencyHigh",
    "MLServiceQueueBacklog",
    "MLServiceWorkerDown",
    "MLServiceApiDown",
    "MLServiceFeatureDrift",
]


def test_the_alerts_fire_on_trouble_and_stay_quiet_otherwise(promtool, tmp_path: Path):
    fired = {
        "MLServiceHighErrorRate": [
            expect("MLServiceHighErrorRate", "10% of API answers are 5xx", severity="page")
        ],
        "MLServicePredictionLatencyHigh": [
            expect(
                "MLServicePredictionLatencyHigh", "p99 prediction latency is 950ms", severity="warn"
            )
        ],
        "MLServiceQueueBacklog": [
            expect(
                "MLServiceQueueBacklog",
                "30 tasks waiting in Celery queue celery.training",
                severity="warn",
                queue="celery.training",
            )
        ],
        "MLServiceWorkerDown": [
            expect(
                "MLServiceWorkerDown",
                "A Celery worker is down (worker:9808)",
                severity="page",
                job="mlservice-worker",
                instance="worker:9808",
            )
        ],
        "MLServiceApiDown": [],
        "MLServiceFeatureDrift": [
            expect(
                "MLServiceFeatureDrift",
                "Input x of model m1 drifted (PSI 3.5)",
                severity="warn",
                model_id="m1",
                feature="x",
            )
        ],
    }
    tests = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": troubled(),
                "alert_rule_test": [
                    {"eval_time": "15m", "alertname": name, "exp_alerts": fired[name]}
                    for name in ALL
                ],
            },
            {
                "interval": "1m",
                "input_series": healthy(),
                "alert_rule_test": [
                    {"eval_time": "15m", "alertname": name, "exp_alerts": []} for name in ALL
                ],
            },
        ],
    }
    path = tmp_path / "alerts_test.yml"
    path.write_text(yaml.safe_dump(tests))
    result = run(promtool, "test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
