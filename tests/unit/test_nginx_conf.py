"""NGINX's settings from the service's: the CORS origin map and the body cap.

The rules are checked by rendering them into the real server template and
asking NGINX itself which origin each map lookup gives (``nginx -t`` first).
"""

import shutil
import string
import subprocess
from dataclasses import replace

import pytest
import requests

from mlservice import nginx_conf
from mlservice.api.uploads import BODY_FILE_HEADER, UPLOADS_DIR
from mlservice.config import REPO_DIR, CorsSettings, ServiceSettings, load_settings
from mlservice.stack import free_port
from tests.helpers import eventually
from tests.unit.test_config import SEED_CONFIG, write_configs

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def settings_with(tmp_path, origins, max_upload_mb=20480):
    settings = load_settings(write_configs(tmp_path, SEED_CONFIG))
    return replace(
        settings,
        cors=CorsSettings(allowed_origins=origins),
        service=replace(ServiceSettings(), max_upload_mb=max_upload_mb),
    )


def test_render_lists_each_origin_once_escaped(tmp_path):
    text = nginx_conf.render(settings_with(tmp_path, ("https://a-b.example:8443",), 7))
    assert "client_max_body_size 8m;\n" in text
    assert '    "~^https://a\\-b\\.example:8443\\|" $http_origin;\n' in text
    assert text.count("$http_origin;") == 2  # the service's own origin, and a-b.example


def test_render_bounds_what_one_client_may_hold(tmp_path):
    settings = settings_with(tmp_path, (), 7)
    settings = replace(
        settings,
        limits=replace(settings.limits, connections_per_address=12, client_timeout_seconds=9),
    )
    lines = nginx_conf.render(settings).splitlines()
    for line in (
        "client_header_timeout 9s;",
        "client_body_timeout 9s;",
        "send_timeout 9s;",
        "limit_conn mlservice_conn 12;",
        "proxy_max_temp_file_size 1031m;",  # the largest upload and 1 GiB
    ):
        assert line in lines


def test_the_template_hands_uploads_over_as_the_api_expects():
    """The body file header, its directory and the upload locations agree with the API's."""
    template = (REPO_DIR / "nginx" / "templates" / "ml-service.conf.template").read_text()
    assert f"proxy_set_header {BODY_FILE_HEADER} $mlservice_body_file;" in template
    for path in ("/resource/datasets", "/resource/models/upload"):
        location = template.split(f"location = {path} {{", 1)[1].split("\n    }", 1)[0]
        assert "client_body_in_file_only clean;" in location
        assert f"client_body_temp_path ${{MLSERVICE_ARTIFACT_DIR}}/{UPLOADS_DIR};" in location
        assert "proxy_pass_request_body off;" in location
        assert f"    {path} $request_body_file;" in template  # the header's map


def test_any_origin_answers_a_star(tmp_path):
    assert nginx_conf.ANY_ORIGIN_RULE in nginx_conf.render(settings_with(tmp_path, ("*",)))


def test_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "nginx" / "settings.conf"
    nginx_conf.write(settings_with(tmp_path, ()), path)
    assert path.read_text() == nginx_conf.render(settings_with(tmp_path, ()))
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in path.parent.iterdir()] == ["settings.conf"]


@pytest.fixture
def answering_nginx(tmp_path):
    """Factory: NGINX with the real template and these origins, echoing $cors_allow_origin."""
    started = []

    def start(origins):
        settings_file = tmp_path / "settings.conf"
        nginx_conf.write(settings_with(tmp_path, origins), settings_file)
        port = free_port()
        template = (REPO_DIR / "nginx" / "templates" / "ml-service.conf.template").read_text()
        (tmp_path / "listen.conf").write_text(f"listen 127.0.0.1:{port};\n")
        server = string.Template(template).safe_substitute(
            MLSERVICE_LISTEN_CONF=str(tmp_path / "listen.conf"),
            MLSERVICE_ACCESS_LOG=str(tmp_path / "access.log"),
            MLSERVICE_API_UPSTREAM=f"127.0.0.1:{free_port()}",
            MLSERVICE_ARTIFACT_DIR=str(tmp_path),
            MLSERVICE_NGINX_SETTINGS=str(settings_file),
        )
        (tmp_path / "server.conf").write_text(server)
        main = tmp_path / "nginx.conf"
        main.write_text(
            f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; daemon off;\n"
            "events {}\n"
            f"http {{ access_log off; client_body_temp_path {tmp_path}/body; "
            f"proxy_temp_path {tmp_path}/proxy; include {tmp_path}/server.conf; }}\n"
        )
        check = subprocess.run([NGINX, "-t", "-c", str(main)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        process = subprocess.Popen([NGINX, "-c", str(main), "-p", str(tmp_path)])
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        eventually(
            lambda: requests.get(url, timeout=2) is not None,
            timeout=10,
            message="NGINX did not start",
            retry_on=requests.ConnectionError,
        )
        return url

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


def allowed(url: str, origin: str, host: str | None = None) -> str | None:
    headers = {"Origin": origin} | ({"Host": host} if host else {})
    response = requests.options(url + "/resource/auth", headers=headers, timeout=5)
    return response.headers.get("Access-Control-Allow-Origin")


def test_nginx_allows_exactly_the_listed_origins(answering_nginx):
    url = answering_nginx(("https://editor.swagger.io", "http://127.0.0.1:9000"))
    assert allowed(url, "https://editor.swagger.io") == "https://editor.swagger.io"
    assert allowed(url, "http://127.0.0.1:9000") == "http://127.0.0.1:9000"
    for other in (
        "https://editor.swagger.io:444",
        "http://editor.swagger.io",
        "https://editor.swagger.io.evil.example",
        "https://editorxswagger.io",
        "http://127.0.0.1:900",
        "http://127.0.0.1:90000",
    ):
        assert allowed(url, other) is None, other


def test_nginx_allows_the_services_own_origin_on_any_host(answering_nginx):
    url = answering_nginx(())
    assert allowed(url, "http://ml.example:8880", host="ml.example:8880") == (
        "http://ml.example:8880"
    )
    assert allowed(url, "http://ml.example:8880", host="other.example:8880") is None
    assert allowed(url, "https://editor.swagger.io") is None


def test_nginx_star_allows_any_origin(answering_nginx):
    url = answering_nginx(("*",))
    assert allowed(url, "https://anything.example") == "*"
