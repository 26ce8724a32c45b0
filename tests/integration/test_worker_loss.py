"""A request whose Gunicorn worker dies is not lost, and the API heals.

NGINX absorbs request bodies, so a slow client never keeps a worker busy; a
request that waits *inside* the API does: a synchronous ``GET /resource/init``
waits for its Celery task, and with the Celery worker stopped it waits for as
long as the test likes. Every API worker is then killed (-9). NGINX sees the
upstream connection fail before any answer and, the request being a GET (safe
to send again, its body already buffered), sends it to the next worker
Gunicorn's master starts; the Celery worker comes back, the init runs, and
the client gets its 204 as if nothing had happened. (A request that is not
safe to repeat, a POST, gets NGINX's 503 JSON with Retry-After instead:
``test_http_errors`` checks that answer where no API listens.)
"""

import os
import signal
import threading
import time

import requests

from tests.helpers import eventually


def test_a_request_whose_worker_dies_is_answered_and_the_api_heals(stack, client, admin_token):
    assert stack.stop_worker() == 0  # nothing runs the init: the request waits in the API
    answers: list[requests.Response] = []
    waiting = threading.Thread(
        target=lambda: answers.append(client.get("/resource/init", admin_token, timeout=180))
    )
    try:
        waiting.start()
        time.sleep(2.0)  # the init is queued and its request waits in a worker
        assert waiting.is_alive(), answers[0].text if answers else "no answer"
        killed = stack.api_worker_pids()
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        eventually(
            lambda: (
                set(stack.api_worker_pids()).isdisjoint(killed)
                and len(stack.api_worker_pids()) == len(killed)
            ),
            timeout=60,
            message="Gunicorn did not start new workers",
        )
        assert waiting.is_alive()  # sent again to a new worker, still waiting for the init
    finally:
        stack.start_worker()
    waiting.join(timeout=150)
    assert answers and answers[0].status_code == 204, answers[0].text if answers else "none"
    assert client.get("/resource/estimators", admin_token).status_code == 200
    eventually(
        lambda: requests.get(f"{stack.url}/readyz", timeout=5).status_code == 200,
        timeout=90,
        message="the Celery worker did not come back",
    )
