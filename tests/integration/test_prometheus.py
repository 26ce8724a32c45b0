"""A real Prometheus (Debian's binary) scrapes the native stack with the shipped scrape config.

The config is src/monitoring/prometheus.yml with its targets replaced by the
test stack's API and worker ports; after known traffic one counter is queried
through Prometheus's HTTP API.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import requests
import yaml

from mlservice.config import SRC_DIR
from mlservice.stack import free_port
from tests.helpers import eventually

SHIPPED = SRC_DIR / "monitoring" / "prometheus.yml"
PREDICTIONS = 'sum(mlservice_predictions_total{kind="default"})'


def scrape_config(api: str, worker: str) -> dict:
    """The shipped config, scraping every second, with the stack's addresses as targets."""
    config = yaml.safe_load(SHIPPED.read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(SHIPPED.parent / name) for name in config["rule_files"]]
    targets = {"mlservice-api": api, "mlservice-worker": worker}
    for job in config["scrape_configs"]:
        job.pop("dns_sd_configs")
        job["static_configs"] = [{"targets": [targets.pop(job["job_name"])]}]
    assert targets == {}, "a job of the shipped config is missing"
    return config


@pytest.fixture(scope="module")
def prometheus(stack, tmp_path_factory):
    """Prometheus on a free loopback port; its URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("no prometheus binary: `make test` installs it (Debian package prometheus)")
    directory = tmp_path_factory.mktemp("prometheus")
    config = directory / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            scrape_config(f"127.0.0.1:{stack.api_port}", f"127.0.0.1:{stack.worker_metrics_port}")
        )
    )
    port = free_port()
    with open(directory / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(
            lambda: requests.get(f"{url}/-/ready", timeout=5).status_code == 200,
            timeout=60,
            message=lambda: (directory / "prometheus.log").read_text()[-2000:],
        )
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def query(prometheus: str, expression: str) -> dict:
    response = requests.get(f"{prometheus}/api/v1/query", params={"query": expression}, timeout=10)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "success", answer
    return answer


def scalar(answer: dict) -> float | None:
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def direct_count(stack) -> float:
    """The prediction counter as the API's /metrics says it now (both workers summed)."""
    text = requests.get(f"http://127.0.0.1:{stack.api_port}/metrics", timeout=30).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("mlservice_predictions_total{") and 'kind="default"' in line
    )


def test_prometheus_scrapes_both_targets(prometheus):
    def both_up() -> bool:
        answer = query(prometheus, "up")
        jobs = {r["metric"]["job"]: r["value"][1] for r in answer["data"]["result"]}
        assert jobs == {"mlservice-api": "1", "mlservice-worker": "1"}, jobs
        return True

    eventually(both_up, timeout=60)


def test_prometheus_counts_known_predictions_exactly(
    prometheus, stack, client, admin_token, initialised, iris_record
):
    before = direct_count(stack)
    sent = 7
    for _ in range(sent):
        response = client.post("/resource/predict", admin_token, json=iris_record)
        assert response.status_code == 200, response.text
    expected = before + sent
    assert direct_count(stack) == expected

    def scraped() -> dict:
        answer = query(prometheus, PREDICTIONS)
        assert scalar(answer) == expected, answer
        return answer

    answer = eventually(scraped, timeout=60, message="Prometheus never saw the predictions")
    print(f"\n{PREDICTIONS} after {sent} predictions (from {before:g}):\n{json.dumps(answer)}")
