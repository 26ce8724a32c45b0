"""HTTPS at the edge: a token, a prediction and a large upload over TLS, verified against
the test's own certificate authority; plain HTTP redirected (308); HSTS; TLSv1.2 and 1.3.

A second NGINX, with TLS, in front of the session stack's API (like ``nginx_alone``),
from the same template and render-listen.sh that ``make run`` and the container use.
"""

import json
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
import requests

from mlservice.config import REPO_DIR
from mlservice.stack import Stack, free_port
from tests.helpers import eventually

HSTS = "max-age=31536000"


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> dict[str, Path]:
    """A CA, and a server certificate it signed for 127.0.0.1 and localhost."""
    where = tmp_path_factory.mktemp("tls")
    ca_key, ca, key, csr, cert = (
        where / "ca-key.pem",
        where / "ca.pem",
        where / "key.pem",
        where / "server.csr",
        where / "cert.pem",
    )
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
        "-keyout", str(ca_key), "-out", str(ca),
    )  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr),
    )  # fmt: skip
    extensions = where / "san.ext"
    extensions.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(extensions), "-out", str(cert),
    )  # fmt: skip
    return {"ca": ca, "cert": cert, "key": key}


@pytest.fixture(scope="module")
def tls_nginx(stack, certificates, tmp_path_factory) -> Stack:
    """NGINX with TLS in front of the session stack's API."""
    edge = Stack(
        run_dir=tmp_path_factory.mktemp("nginx-tls"),
        http_port=free_port(),
        redis_port=stack.redis_port,
        api_port=stack.api_port,
        config_path=stack.config_path,
        redis_config_path=stack.redis_config_path,
        extra_env=stack.extra_env,
        tls_cert=certificates["cert"],
        tls_key=certificates["key"],
    )
    edge.start_nginx()
    yield edge
    edge.stop()


@pytest.fixture(scope="module")
def https(certificates) -> requests.Session:
    """A session that trusts the test CA alone."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the CA below
    session.verify = str(certificates["ca"])
    return session


def test_the_stack_says_https(tls_nginx):
    assert tls_nginx.url == f"https://127.0.0.1:{tls_nginx.http_port}"


def test_token_and_prediction_over_https(
    tls_nginx, https, admin_credentials, initialised, iris_record
):
    token = https.get(f"{tls_nginx.url}/resource/auth", auth=admin_credentials, timeout=30)
    assert token.status_code == 200, token.text
    assert token.headers["Strict-Transport-Security"] == HSTS
    answer = https.post(
        f"{tls_nginx.url}/resource/predict",
        json=iris_record,
        headers={"Authorization": f"Bearer {token.json()['token']}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == ["setosa"]
    assert answer.headers["Strict-Transport-Security"] == HSTS


def test_a_50_mb_upload_over_https(tls_nginx, https, client, admin_token):
    row = b"1.5,2.5,Paris,basic\n"
    rows = 50 * 1024**2 // len(row)
    body = b"a,b,city,plan\n" + row * rows
    answer = https.post(
        f"{tls_nginx.url}/resource/datasets?name=large.csv",
        data=body,
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "text/csv"},
        timeout=300,
    )
    assert answer.status_code in (201, 202), answer.text
    dataset = answer.json()
    assert dataset["id"]
    if answer.status_code == 201:
        assert dataset["rows"] == rows
    assert client.delete(f"/resource/datasets/{dataset['id']}", admin_token).status_code == 204


def test_plain_http_is_redirected_to_https_keeping_the_method(tls_nginx):
    http = f"http://127.0.0.1:{tls_nginx.http_port}"
    for method in ("GET", "POST"):
        answer = requests.request(
            method, f"{http}/resource/predict?probabilities=true", allow_redirects=False, timeout=10
        )
        assert answer.status_code == 308
        assert answer.headers["Location"] == (
            f"https://127.0.0.1:{tls_nginx.http_port}/resource/predict?probabilities=true"
        )
        assert "Strict-Transport-Security" not in answer.headers  # only over HTTPS


def test_nginx_own_answers_over_https_carry_hsts(tls_nginx, https):
    answer = https.get(f"{tls_nginx.url}/_protected/artifacts/x", timeout=10)
    assert answer.status_code == 404
    assert answer.json() == {"status": "not found"}
    assert answer.headers["Strict-Transport-Security"] == HSTS
    assert answer.headers["X-Content-Type-Options"] == "nosniff"  # the server's headers kept


def test_no_hsts_without_tls(client):
    assert "Strict-Transport-Security" not in client.get("/healthz").headers


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_modern_tls_versions_are_served(tls_nginx, certificates, version):
    context = ssl.create_default_context(cafile=str(certificates["ca"]))
    context.minimum_version = context.maximum_version = version
    with socket.create_connection(("127.0.0.1", tls_nginx.http_port), timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            assert tls.version() == version.name.replace("v1_", "v1.")


def test_the_access_log_says_https(tls_nginx, https):
    answer = https.get(f"{tls_nginx.url}/healthz", timeout=10)
    request_id = answer.headers["X-Request-ID"]

    def logged() -> list[dict]:  # NGINX writes the line once the answer has gone
        log = (tls_nginx.logs / "nginx-access.log").read_text().splitlines()
        return [entry for entry in map(json.loads, log) if entry["request_id"] == request_id]

    [line] = eventually(logged, timeout=10, message="the request was not logged")
    assert (line["scheme"], line["uri"], line["status"]) == ("https", "/healthz", 200)


def render_listen(out: Path, cert: Path | None, key: Path | None):
    """nginx/render-listen.sh as the container and make run call it."""
    return subprocess.run(
        ["sh", str(REPO_DIR / "nginx" / "render-listen.sh"), str(out)],
        env={
            "PATH": "/usr/bin:/bin",
            "MLSERVICE_LISTEN": "127.0.0.1:8880",
            "MLSERVICE_TLS_CERT": str(cert or ""),
            "MLSERVICE_TLS_KEY": str(key or ""),
        },
        capture_output=True,
        text=True,
    )


def test_without_a_certificate_it_says_plain_http_once(tmp_path):
    result = render_listen(tmp_path / "listen.conf", None, None)
    assert result.returncode == 0
    assert result.stderr == (
        "mlservice: NGINX serves plain HTTP on 127.0.0.1:8880, for local use only: no TLS "
        "certificate (set MLSERVICE_TLS_CERT and MLSERVICE_TLS_KEY to serve HTTPS)\n"
    )
    assert (tmp_path / "listen.conf").read_text().splitlines()[-1] == "listen 127.0.0.1:8880;"


def test_an_unreadable_key_stops_nginx_with_one_line(tmp_path, certificates):
    result = render_listen(tmp_path / "listen.conf", certificates["cert"], tmp_path / "no.pem")
    assert result.returncode == 1
    assert result.stderr == (
        f"mlservice: TLS file {tmp_path / 'no.pem'} cannot be read "
        "(MLSERVICE_TLS_CERT, MLSERVICE_TLS_KEY)\n"
    )


def test_a_certificate_without_its_key_is_refused(tmp_path, certificates):
    result = render_listen(tmp_path / "listen.conf", certificates["cert"], None)
    assert result.returncode == 1
    assert "set both MLSERVICE_TLS_CERT and MLSERVICE_TLS_KEY" in result.stderr
