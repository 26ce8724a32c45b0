"""Callback deliveries against local servers: pinned addresses, no redirects, delivery ids."""

import hashlib
import hmac
import json
import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlservice.training.callbacks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryFailed,
    deliver,
    delivery_id,
)

SECRET = "receiver-chosen-secret"
PAYLOAD = {"model_id": "2d20e0ea5e2f473f8efe821907b025d5", "status": "ready", "metrics": {}}


class Server:
    """A loopback HTTP(S) server recording requests and answering ``status`` (+ headers)."""

    def __init__(self, status=200, headers=None, tls=None):
        self.calls = []
        self.server_names = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.calls.append((self.headers, body))
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            tls.sni_callback = lambda sock, name, context: self.server_names.append(name)
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers():
    started = []

    def start(*args, **kwargs):
        started.append(Server(*args, **kwargs))
        return started[-1]

    yield start
    for server in started:
        server.close()


def only(name, address="127.0.0.1"):
    """A resolver that knows one name, and counts its look-ups."""

    def resolver(host, port):
        resolver.calls += 1
        assert host == name, host
        return [address] if isinstance(address, str) else address

    resolver.calls = 0
    return resolver


def test_the_connection_goes_to_the_checked_address_with_the_original_host(servers):
    """``callback.test`` resolves nowhere but through the resolver: no second lookup happens."""
    receiver = servers()
    resolver = only("callback.test")
    url = f"http://callback.test:{receiver.port}/hook?x=1"
    assert deliver(url, PAYLOAD, SECRET, allow_private=True, resolver=resolver) == 200
    assert resolver.calls == 1
    ((headers, _body),) = receiver.calls
    assert headers["Host"] == f"callback.test:{receiver.port}"
    assert headers["User-Agent"] == "ml-service-callback"


def test_a_refused_address_is_never_connected_to(servers):
    receiver = servers()

    def rebinding(host, port):
        return ["93.184.216.34", "127.0.0.1"]

    url = f"http://callback.test:{receiver.port}/hook"
    with pytest.raises(DeliveryFailed, match="non-public address 127.0.0.1"):
        deliver(url, PAYLOAD, SECRET, allow_private=False, resolver=rebinding)
    assert receiver.calls == []


def test_the_next_checked_address_is_tried_when_one_does_not_answer(servers):
    receiver = servers()  # listens on 127.0.0.1 only: 127.0.0.2 refuses the connection
    resolver = only("callback.test", ["127.0.0.2", "127.0.0.1"])
    url = f"http://callback.test:{receiver.port}/hook"
    assert deliver(url, PAYLOAD, SECRET, allow_private=True, resolver=resolver) == 200
    assert len(receiver.calls) == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_failed_deliveries_and_never_followed(servers, status):
    target = servers()
    redirector = servers(status, {"Location": f"http://127.0.0.1:{target.port}/internal"})
    url = f"http://callback.test:{redirector.port}/hook"
    with pytest.raises(DeliveryFailed) as failed:
        deliver(url, PAYLOAD, SECRET, allow_private=True, resolver=only("callback.test"))
    message = str(failed.value)
    assert f"answered {status}" in message and "redirects are not followed" in message
    assert url in message and f"127.0.0.1:{target.port}/internal" in message
    assert len(redirector.calls) == 1 and target.calls == []


def test_other_statuses_and_connection_errors_fail_naming_the_url(servers):
    receiver = servers(500)
    url = f"http://callback.test:{receiver.port}/hook"
    with pytest.raises(DeliveryFailed, match=f"callback receiver {url} answered 500"):
        deliver(url, PAYLOAD, SECRET, allow_private=True, resolver=only("callback.test"))
    port = receiver.port
    receiver.close()
    with pytest.raises(DeliveryFailed, match="callback delivery to .* failed"):
        deliver(
            f"http://callback.test:{port}/hook",
            PAYLOAD,
            SECRET,
            allow_private=True,
            resolver=only("callback.test"),
        )


def test_the_delivery_id_is_sent_signed_and_stable(servers):
    receiver = servers()
    url = f"http://callback.test:{receiver.port}/hook"
    payload = dict(PAYLOAD)
    for _ in range(2):
        deliver(url, payload, SECRET, allow_private=True, resolver=only("callback.test"))
    assert payload == PAYLOAD  # the caller's payload is left as it was
    ids = set()
    for headers, body in receiver.calls:
        sent = json.loads(body)
        assert sent == {**PAYLOAD, "delivery_id": f"{PAYLOAD['model_id']}:ready"}
        assert headers[DELIVERY_HEADER] == sent["delivery_id"]
        expected = hmac.new(
            SECRET.encode(), headers[TIMESTAMP_HEADER].encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        assert headers[SIGNATURE_HEADER] == f"sha256={expected}"
        ids.add(headers[DELIVERY_HEADER])
    assert len(ids) == 1


def test_delivery_id_is_derived_from_the_payload():
    assert delivery_id({"model_id": "m1", "status": "failed", "error": "x"}) == "m1:failed"
    assert delivery_id({"model_id": "m1", "status": "ready"}) != "m1:failed"
    assert delivery_id({"delivery_id": "given", "model_id": "m1", "status": "ready"}) == "given"
    other = delivery_id({"b": 1, "a": [1, 2]})
    assert other == delivery_id({"a": [1, 2], "b": 1}) and other.startswith("sha256:")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for ``callback.test``."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", "/CN=callback.test",
            "-addext", "subjectAltName=DNS:callback.test",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def tls_pair(certificate):
    cert, key = certificate
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def test_https_keeps_the_name_for_sni_and_the_certificate(servers, certificate):
    server_tls, client_tls = tls_pair(certificate)
    receiver = servers(tls=server_tls)
    url = f"https://callback.test:{receiver.port}/hook"
    status = deliver(
        url,
        PAYLOAD,
        SECRET,
        allow_private=True,
        resolver=only("callback.test"),
        ssl_context=client_tls,
    )
    assert status == 200
    assert receiver.server_names == ["callback.test"]
    assert receiver.calls[0][0]["Host"] == f"callback.test:{receiver.port}"


def test_https_refuses_a_certificate_for_another_name(servers, certificate):
    server_tls, client_tls = tls_pair(certificate)
    receiver = servers(tls=server_tls)
    url = f"https://elsewhere.test:{receiver.port}/hook"
    with pytest.raises(DeliveryFailed, match="CERTIFICATE_VERIFY_FAILED|certificate"):
        deliver(
            url,
            PAYLOAD,
            SECRET,
            allow_private=True,
            resolver=only("elsewhere.test"),
            ssl_context=client_tls,
        )
    assert receiver.calls == []
