"""Helpers shared by the tests: waiting for a condition, uploading data, training models."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pytest
import requests
from requests.adapters import HTTPAdapter

T = TypeVar("T")


def eventually(
    check: Callable[[], T],
    timeout: float = 60,
    interval: float = 0.2,
    message: str | Callable[[], str] = "the condition did not hold",
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
) -> T:
    """Call ``check()`` until it returns a truthy value, and return that value.

    An exception of a ``retry_on`` type (by default any) counts as "not yet",
    so ``check`` may ``assert`` what it waits for. After ``timeout`` seconds
    the test fails with ``message`` (a string, or a function giving one when
    the time is up) and the last value or exception. With ``retry_on=()``
    an assertion in ``check`` fails the test at once: for what must hold on
    every call, not only in the end.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except retry_on as exc:
            value, error = None, exc
        else:
            if value:
                return value
            error = None
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            last = f"last exception: {error!r}" if error is not None else f"last value: {value!r}"
            raise pytest.fail.Exception(f"{text} (waited {timeout} s; {last})") from error
        time.sleep(interval)


class _FromAddress(HTTPAdapter):
    """Connections made from one local address (any of 127.0.0.0/8 is this machine)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(pool_connections=4, pool_maxsize=256)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, source_address=(self.address, 0), **kwargs)


def session_from(address: str) -> requests.Session:
    """A session whose connections come from ``address`` (e.g. 127.0.0.2): NGINX sees another
    client (``$remote_addr``) than the tests' usual 127.0.0.1, as a second machine would be."""
    session = requests.Session()
    session.mount("http://", _FromAddress(address))
    return session


def upload(client, token: str, frame: pd.DataFrame) -> str:
    """Upload ``frame`` as a CSV data set; its id."""
    data = frame.to_csv(index=False).encode()
    response = client.post(
        "/resource/datasets", token, files={"file": ("customers.csv", data, "text/csv")}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def train(client, token: str, body: dict[str, Any], expect: int = 202) -> dict[str, Any]:
    """POST /resource/models; the answer's body with its ``Location`` header as ``location``."""
    response = client.post("/resource/models", token, json=body)
    assert response.status_code == expect, response.text
    return response.json() | {"location": response.headers.get("Location")}


def wait_ready(client, token: str, model_id: str, timeout: float = 120) -> dict[str, Any]:
    """The model's record once its training has ended (``ready`` or ``failed``)."""

    def finished() -> dict[str, Any]:
        record = client.get(f"/resource/models/{model_id}", token).json()
        assert record["status"] in ("ready", "failed"), record
        return record

    return eventually(finished, timeout=timeout, message=f"model {model_id} still training")


class CallbackReceiver:
    """A loopback HTTP server that records the training callbacks it gets.

    ``calls`` holds (headers, body) per POST: the body as bytes, or decoded
    when ``parse_json``. The first ``failures`` POSTs are answered 500.
    """

    def __init__(self, failures: int = 0, parse_json: bool = False) -> None:
        self.calls: list = []
        self.failures = failures
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recorded = json.loads(body) if parse_json else body
                receiver.calls.append((self.headers, recorded))  # headers: case-insensitive
                failed = len(receiver.calls) <= receiver.failures
                self.send_response(500 if failed else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 60) -> None:
        """Until ``count`` callbacks have arrived."""

        def arrived():
            assert len(self.calls) >= count, f"{len(self.calls)} callbacks of {count}"
            return True

        eventually(arrived, timeout=timeout, interval=0.1, message="callbacks missing")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_over_limit(path: Path, limit: int, ending: str = "") -> int:
    """A CSV (id, value, city, label) just over ``limit`` bytes, then ``ending``; its rows.

    For uploads over ``[service] inline_profile_mb``, profiled by a worker:
    blocks of 10,000 rows, as few as pass the limit, so the file stays small.
    """
    block = "".join(
        f"{i},{i * 0.5},city{i % 7},{'yes' if i % 3 else 'no'}\n" for i in range(10_000)
    ).encode()
    rows = 0
    with path.open("wb") as handle:
        handle.write(b"id,value,city,label\n")
        while handle.tell() <= limit:
            handle.write(block)
            rows += 10_000
        handle.write(ending.encode())
    return rows
