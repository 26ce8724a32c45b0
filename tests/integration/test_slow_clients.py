"""Slow and cut-short clients are NGINX's to hold: never an API worker's.

NGINX reads every request body whole before the API sees the request and
takes every answer as fast as the API writes it (docs/deployment.md). So
clients trickling uploads, or not reading what they asked for, leave
predictions as fast as ever; an upload that stops short never reaches the
API and stores nothing; one address can hold only so many connections.

The p99 bounds below are correctness bounds (a held worker makes predictions
wait for the client's timeout, tens of seconds), not speed targets.
"""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from mlservice.api.uploads import UPLOADS_DIR
from mlservice.stack import Stack, free_port
from tests.helpers import eventually

SLOW_UPLOADS = 16
PREDICTIONS = 200
#: Seconds a single-row prediction may take at the 99th percentile while clients dawdle.
P99_BOUND = 1.0
ONE_ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}


@pytest.fixture(autouse=True)
def _model(initialised):
    """Every test here predicts with the default model."""


@pytest.fixture(scope="module")
def strict_nginx(stack, tmp_path_factory) -> Stack:
    """A second NGINX in front of the same API: 2 s client timeout, 4 connections an address."""
    strict = Stack(
        run_dir=tmp_path_factory.mktemp("strict-nginx"),
        http_port=free_port(),
        redis_port=stack.redis_port,
        api_port=stack.api_port,
        config_path=stack.config_path,
        redis_config_path=stack.redis_config_path,
        extra_env=stack.extra_env
        | {
            "MLSERVICE_LIMITS_CLIENT_TIMEOUT_SECONDS": "2",
            "MLSERVICE_LIMITS_CONNECTIONS_PER_ADDRESS": "4",
        },
    )
    strict.start_nginx()
    yield strict
    strict.stop()


def open_upload(port: int, token: str, declared: int, request_id: str = "") -> socket.socket:
    """A connection that has sent an upload's headers and no body yet."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    extra = f"X-Request-ID: {request_id}\r\n" if request_id else ""
    sock.sendall(
        (
            "POST /resource/datasets?name=slow.csv HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: text/csv\r\n"
            f"Content-Length: {declared}\r\n{extra}\r\n"
        ).encode()
    )
    return sock


def answer_of(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or resets) the connection."""
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:  # NGINX resets a connection that timed out
        pass
    return answer


class Tricklers:
    """Connections each sending a few bytes of their upload every ``interval`` seconds."""

    def __init__(self, sockets: list[socket.socket], interval: float) -> None:
        self.sockets = sockets
        self.interval = interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        sent = 0
        while not self.stop.wait(self.interval):
            for sock in self.sockets:
                sock.sendall(b"1,2\n")
            sent += 4

    def __enter__(self) -> Tricklers:
        for sock in self.sockets:
            sock.sendall(b"a,b\n")
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()


def prediction_p99(url: str, token: str) -> float:
    """Seconds of the 99th percentile of PREDICTIONS sequential single-row predictions."""
    latencies = []
    with requests.Session() as session:
        for _ in range(PREDICTIONS):
            started = time.perf_counter()
            response = session.post(
                f"{url}/resource/predict",
                json=ONE_ROW,
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    return statistics.quantiles(latencies, n=100)[98]


def uploads_left(settings) -> list[Path]:
    return list((Path(settings.artifact_dir) / UPLOADS_DIR).iterdir())


@pytest.mark.slow
def test_slow_uploads_leave_predictions_fast(stack, admin_token, store, settings):
    datasets_before = store.zcard("mlservice:datasets")
    sockets = [open_upload(stack.http_port, admin_token, 1_000_000) for _ in range(SLOW_UPLOADS)]
    with Tricklers(sockets, interval=0.2):
        p99 = prediction_p99(stack.url, admin_token)
    print(f"\n{SLOW_UPLOADS} slow uploads: single-row predict p99 {p99 * 1000:.0f} ms")
    assert p99 < P99_BOUND
    assert store.zcard("mlservice:datasets") == datasets_before
    eventually(lambda: uploads_left(settings) == [], timeout=10, message="body files left")


@pytest.mark.slow
def test_slow_readers_of_large_answers_leave_predictions_fast(stack, client, admin_token, tmp_path):
    """Downloads the app writes itself (a CSV with formula cells, escaped) read by nobody."""
    row = b"=SUM(A%d),%d,some text to make the row longer\n"
    rows = b"".join(row % (i, i) for i in range(400_000))
    uploaded = client.post(
        "/resource/datasets?name=formulas.csv",
        admin_token,
        data=b"formula,n,text\n" + rows,
        headers={"Content-Type": "text/csv"},
        timeout=300,
    )
    assert uploaded.status_code in (201, 202), uploaded.text
    location = uploaded.headers["Location"]

    def ready() -> bool:
        return client.get(location, admin_token).json()["status"] == "ready"

    eventually(ready, timeout=120, message="the formula data set was not profiled")
    readers = []
    for _ in range(8):
        sock = socket.create_connection(("127.0.0.1", stack.http_port), timeout=30)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(
            (
                f"GET {location}/download HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {admin_token}\r\n\r\n"
            ).encode()
        )
        readers.append(sock)
    try:
        time.sleep(1)  # the API writes its answers meanwhile
        p99 = prediction_p99(stack.url, admin_token)
    finally:
        for sock in readers:
            sock.close()
    print(f"\n8 readers who never read: single-row predict p99 {p99 * 1000:.0f} ms")
    assert p99 < P99_BOUND
    client.delete(location, admin_token)


def test_an_upload_that_stops_short_stores_nothing(stack, admin_token, store, settings):
    """Declares 1,000,000 bytes, sends 12 and closes its side: NGINX never asks the API."""
    before = store.zcard("mlservice:datasets")
    request_id = f"short-{uuid.uuid4().hex}"
    sock = open_upload(stack.http_port, admin_token, 1_000_000, request_id)
    sock.sendall(b"a,b\n1,2\n3,4\n")
    sock.shutdown(socket.SHUT_WR)
    with sock:
        assert answer_of(sock) == b""  # the client is gone: NGINX closes without an answer
    assert store.zcard("mlservice:datasets") == before
    eventually(lambda: uploads_left(settings) == [], timeout=10, message="body files left")
    assert request_id not in (stack.logs / "api.log").read_text()  # never reached the API
    logged = eventually(
        lambda: [
            json.loads(line)
            for line in (stack.logs / "nginx-access.log").read_text().splitlines()
            if request_id in line
        ],
        timeout=10,
    )
    assert [line["status"] for line in logged] == [400]


def test_an_upload_that_stalls_is_dropped_after_the_client_timeout(
    strict_nginx, admin_token, store, settings
):
    before = store.zcard("mlservice:datasets")
    sock = open_upload(strict_nginx.http_port, admin_token, 1_000_000)
    sock.sendall(b"a,b\n1,2\n3,4\n")
    with sock:
        assert answer_of(sock) == b""  # after 2 s of silence ([limits] client_timeout_seconds)
    assert store.zcard("mlservice:datasets") == before
    eventually(lambda: uploads_left(settings) == [], timeout=10, message="body files left")


def test_a_short_body_straight_to_gunicorn_is_400_and_stores_nothing(stack, admin_token, store):
    """Without NGINX in front, the API itself refuses what did not all arrive."""
    before = store.zcard("mlservice:datasets")
    sock = open_upload(stack.api_port, admin_token, 1_000_000)
    sock.sendall(b"a,b\n1,2\n3,4\n")
    sock.shutdown(socket.SHUT_WR)
    with sock:
        head, _, body = answer_of(sock).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert json.loads(body) == {
        "status": "the body ended after 12 of the 1000000 bytes its Content-Length declares; "
        "nothing was stored: send the whole body"
    }
    assert store.zcard("mlservice:datasets") == before


def test_connections_per_address_are_limited(strict_nginx, admin_token):
    url = strict_nginx.url
    sockets = [open_upload(strict_nginx.http_port, admin_token, 1_000_000) for _ in range(4)]
    with Tricklers(sockets, interval=0.5):
        time.sleep(0.5)  # each request has reached NGINX's connection count
        refused = requests.get(f"{url}/healthz", timeout=10)
        assert refused.status_code == 429
        assert refused.json() == {
            "status": "too many connections at once from your address "
            "([limits] connections_per_address): finish or close some, then retry"
        }
        assert refused.headers["Retry-After"] == "1"
    eventually(
        lambda: requests.get(f"{url}/healthz", timeout=10).status_code == 200,
        timeout=10,
        message="the address's connections were not released",
    )


def test_a_clients_own_body_file_header_never_reaches_the_api(client, admin_token, tmp_path):
    """NGINX names its own body file in X-Mlservice-Body-File, whatever the client sent."""
    elsewhere = tmp_path / "0000000001"
    elsewhere.write_bytes(b"x,y\n9,9\n")
    response = client.post(
        "/resource/datasets?name=forged.csv",
        admin_token,
        data=b"a,b\n1,2\n3,4\n",
        headers={"Content-Type": "text/csv", "X-Mlservice-Body-File": str(elsewhere)},
    )
    assert response.status_code == 201, response.text
    assert (response.json()["rows"], response.json()["columns"][0]["name"]) == (2, "a")
    assert elsewhere.exists()
    client.delete(response.headers["Location"], admin_token)
