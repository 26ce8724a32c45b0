"""Training callbacks through the stack: delivery ids, the host name kept, redirects refused."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.helpers import eventually, train, upload, wait_ready

SECRET = "receiver-chosen-secret"


class Receiver:
    """A loopback server recording callbacks; answers ``statuses`` in turn, then the last one."""

    def __init__(self, *statuses: int, headers: dict[str, str] | None = None) -> None:
        self.calls: list = []
        receiver = self
        answers = list(statuses) or [200]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append((self.headers, body))
                self.send_response(answers[min(len(receiver.calls), len(answers)) - 1])
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 60) -> None:
        def arrived():
            assert len(self.calls) >= count, f"{len(self.calls)} callbacks of {count}"
            return True

        eventually(arrived, timeout=timeout, interval=0.1, message="callbacks missing")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def dataset_id(client, admin_token, customers):
    return upload(client, admin_token, customers)


def request(dataset_id: str, callback_url: str) -> dict:
    return {
        "dataset_id": dataset_id,
        "target": "plan",
        "features": ["age", "city"],
        "estimator": "GaussianNB",
        "params": {},
        "callback_url": callback_url,
        "callback_secret": SECRET,
    }


def test_every_attempt_carries_the_same_signed_delivery_id(client, admin_token, dataset_id):
    """Sent to ``localhost`` by name: the Host header keeps it, the socket goes to loopback."""
    receiver = Receiver(500, 200)
    try:
        url = f"http://localhost:{receiver.port}/hook"
        accepted = train(client, admin_token, request(dataset_id, url))
        receiver.wait(2)
    finally:
        receiver.close()
    expected_id = f"{accepted['model_id']}:ready"
    for headers, body in receiver.calls:
        payload = json.loads(body)
        assert payload["model_id"] == accepted["model_id"] and payload["status"] == "ready"
        assert payload["delivery_id"] == expected_id
        assert headers["X-MLService-Delivery"] == expected_id
        assert headers["Host"] == f"localhost:{receiver.port}"
        signed = hmac.new(
            SECRET.encode(),
            headers["X-MLService-Timestamp"].encode() + b"." + body,
            hashlib.sha256,
        ).hexdigest()
        assert headers["X-MLService-Signature"] == f"sha256={signed}"


def test_a_redirect_is_a_failed_attempt_and_never_followed(client, admin_token, dataset_id):
    target = Receiver()
    redirector = Receiver(302, headers={"Location": f"http://127.0.0.1:{target.port}/hook"})
    try:
        url = f"http://127.0.0.1:{redirector.port}/hook"
        accepted = train(client, admin_token, request(dataset_id, url))
        redirector.wait(2)  # retried like any failed delivery
    finally:
        redirector.close()
        target.close()
    assert target.calls == []
    record = wait_ready(client, admin_token, accepted["model_id"])
    assert record["status"] == "ready" and "error" not in record
