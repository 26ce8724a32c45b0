"""A request whose Gunicorn worker dies answers the documented 503 JSON, and the API heals.

A prediction whose body arrives slowly keeps a worker busy reading it; every
API worker is then killed (-9). NGINX loses the upstream connection (a 502
inside) and answers 503 with Retry-After; Gunicorn's master starts new
workers, and the next requests are served.
"""

import os
import signal
import threading
import time

import requests

from tests.helpers import eventually


def test_a_lost_worker_is_503_json_then_the_api_heals(stack, client, admin_token):
    answers: list[requests.Response] = []

    def slow_body():
        yield b'{"sepal length (cm)": 5.1, '
        time.sleep(5)  # the API workers are killed meanwhile
        yield b'"sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}'

    def predict() -> None:
        answers.append(
            client.post(
                "/resource/predict",
                admin_token,
                data=slow_body(),
                headers={"Content-Type": "application/json"},
            )
        )

    waiting = threading.Thread(target=predict)
    waiting.start()
    time.sleep(2.0)
    for pid in stack.api_worker_pids():
        os.kill(pid, signal.SIGKILL)
    waiting.join(timeout=120)
    response = answers[0]
    assert response.status_code == 503
    assert response.json() == {"status": "the API is not reachable behind NGINX; retry shortly"}
    assert response.headers["Retry-After"] == "5"
    eventually(
        lambda: client.get("/resource/estimators", admin_token).status_code == 200,
        timeout=60,
        message="the API did not come back after its workers were killed",
    )
