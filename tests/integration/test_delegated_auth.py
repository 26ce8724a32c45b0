"""Delegated authentication: /resource/auth forwards Basic credentials to a data server."""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests

ACCOUNTS = {"dana": "dana-secret", "admin": "data-server-admin-pw"}


class DataServer(BaseHTTPRequestHandler):
    """Answers 200 {"username": "Dana.Smith"} for dana's password, 401 otherwise."""

    def do_GET(self):
        header = self.headers.get("Authorization", "")
        user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        if ACCOUNTS.get(user) == password:
            body = json.dumps({"username": "Dana.Smith" if user == "dana" else user}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(401)
            self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def delegated_api(extra_api, tmp_path):
    """A second API process (same Redis) configured with ``[auth_info] delegate_url``."""
    server = HTTPServer(("127.0.0.1", 0), DataServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield extra_api(
        "[auth_info]\nexpiry = 1\nexpiry_time_unit = hours\n"
        f"delegate_url = http://127.0.0.1:{server.server_port}/check\n",
        tmp_path / "config.properties",
    )
    server.shutdown()


def test_data_server_decides_and_names_the_user(delegated_api, client):
    refused = requests.get(f"{delegated_api}/resource/auth", auth=("dana", "wrong"), timeout=10)
    assert refused.status_code == 401
    answer = requests.get(
        f"{delegated_api}/resource/auth", auth=("dana", "dana-secret"), timeout=10
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["token"]
    # The token works on the main stack, as the user the data server named.
    datasets = client.get("/resource/datasets", token)
    assert datasets.status_code == 200
    assert client.get("/resource/users", token).status_code == 403  # a plain user


def test_local_passwords_are_not_used_when_delegating(delegated_api, admin_credentials):
    response = requests.get(f"{delegated_api}/resource/auth", auth=admin_credentials, timeout=10)
    assert response.status_code == 401


def test_data_server_cannot_speak_for_a_local_account(delegated_api):
    """Even if the data server vouches for 'admin', the local admin is not handed out."""
    response = requests.get(
        f"{delegated_api}/resource/auth", auth=("admin", "data-server-admin-pw"), timeout=10
    )
    assert response.status_code == 401
