"""The upload hand-off: a body file NGINX wrote is moved into place or refused, and goes either way.

NGINX is played by the test: it writes a body into the store's ``uploads``
directory under a name of digits, and sends the request with no body and
``X-Mlservice-Body-File`` (nginx/templates/ml-service.conf.template).
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from mlservice.api.uploads import BODY_FILE_HEADER, UPLOADS_DIR
from tests.data import make_customers

_names = itertools.count(1)
KEY = "([service] max_upload_mb)"


@pytest.fixture(scope="module")
def customers_csv() -> bytes:
    return make_customers.customers().head(50).to_csv(index=False).encode()


def nginx_wrote(ctx, data: bytes) -> Path:
    """A body file as NGINX leaves it for the API."""
    directory = ctx.datasets.artifacts.root / UPLOADS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{next(_names):010d}"
    path.write_bytes(data)
    return path


def post(http, url: str, path: Path, content_type: str, headers: dict[str, str]):
    """POST as NGINX does: no body, the body file named, the client's Content-Type as is."""
    return http.post(
        url,
        headers=headers | {BODY_FILE_HEADER: str(path)},
        # as a WSGI variable: the test client would encode a multipart body of its own
        environ_overrides={"CONTENT_TYPE": content_type, "CONTENT_LENGTH": "0"},
    )


def test_a_raw_body_file_is_moved_into_place(http, admin, ctx, customers_csv):
    path = nginx_wrote(ctx, customers_csv)
    inode = path.stat().st_ino
    answer = post(http, "/resource/datasets?name=handed.csv", path, "text/csv", admin)
    assert answer.status_code == 201, answer.get_json()
    record = answer.get_json()
    assert (record["name"], record["rows"], record["size_bytes"]) == (
        "handed.csv",
        50,
        len(customers_csv),
    )
    stored = ctx.datasets.path(ctx.datasets.catalog.get(record["id"]))
    assert stored.stat().st_ino == inode  # the same file: moved, not copied
    assert stored.read_bytes() == customers_csv
    assert not path.exists()
    assert http.delete(f"/resource/datasets/{record['id']}", headers=admin).status_code == 204


def test_a_multipart_body_file_is_parsed_from_disk(http, admin, ctx, customers_csv):
    boundary, body = encode_multipart(
        {
            "file": FileStorage(io.BytesIO(customers_csv), "parts.csv", content_type="text/csv"),
            "name": "from parts",
        }
    )
    path = nginx_wrote(ctx, body)
    content_type = f"multipart/form-data; boundary={boundary}"
    answer = post(http, "/resource/datasets", path, content_type, admin)
    assert answer.status_code == 201, answer.get_json()
    record = answer.get_json()
    assert (record["name"], record["rows"]) == ("from parts", 50)
    assert ctx.datasets.path(ctx.datasets.catalog.get(record["id"])).read_bytes() == customers_csv
    assert not path.exists()
    assert list(ctx.datasets.artifacts.incoming().iterdir()) == []  # no spooled part left
    assert http.delete(f"/resource/datasets/{record['id']}", headers=admin).status_code == 204


def test_a_multipart_body_file_without_the_file_field_is_400(http, admin, ctx):
    boundary, body = encode_multipart(
        {"other": FileStorage(io.BytesIO(b"a\n1\n"), "a.csv", content_type="text/csv")}
    )
    path = nginx_wrote(ctx, body)
    content_type = f"multipart/form-data; boundary={boundary}"
    answer = post(http, "/resource/datasets", path, content_type, admin)
    assert (answer.status_code, answer.get_json()) == (
        400,
        {"status": "multipart/form-data upload needs a file field named 'file'"},
    )
    assert not path.exists()
    assert list(ctx.datasets.artifacts.incoming().iterdir()) == []


@pytest.mark.parametrize(
    "token, data, status",
    [
        ("Bearer not-a-token", b"a,b\n1,2\n", 401),  # refused before the route runs
        (None, b"a,b\n1,2\n3,4,5\n", 422),  # a ragged CSV
        (None, b"", 400),  # empty
    ],
)
def test_a_refused_body_file_is_removed_and_nothing_stored(http, admin, ctx, token, data, status):
    path = nginx_wrote(ctx, data)
    before = ctx.redis.zcard("mlservice:datasets")
    headers = admin if token is None else {"Authorization": token}
    answer = post(http, "/resource/datasets", path, "text/csv", headers)
    assert answer.status_code == status, answer.get_json()
    assert not path.exists()
    assert ctx.redis.zcard("mlservice:datasets") == before


def test_a_body_file_over_the_limit_is_413_naming_the_key(http, admin, ctx, monkeypatch):
    path = nginx_wrote(ctx, b"a,b\n" + b"1,2\n" * 300_000)  # 1.2 MB
    service = ctx.settings.service
    monkeypatch.setattr(type(service), "max_upload_bytes", property(lambda _: 1024 * 1024))
    answer = post(http, "/resource/datasets", path, "text/csv", admin)
    assert (answer.status_code, answer.get_json()) == (
        413,
        {"status": f"the upload is larger than the limit of {1024**2} bytes {KEY}"},
    )
    assert not path.exists()


@pytest.mark.parametrize("where", ["outside", "not digits", "symlink"])
def test_a_file_nginx_did_not_write_is_never_read_nor_removed(
    http, admin, ctx, tmp_path, customers_csv, where
):
    outside = tmp_path / "0000000042"
    outside.write_bytes(customers_csv)
    named = outside
    if where == "not digits":
        named = nginx_wrote(ctx, customers_csv).rename(
            ctx.datasets.artifacts.root / UPLOADS_DIR / "upload.csv"
        )
    elif where == "symlink":
        named = ctx.datasets.artifacts.root / UPLOADS_DIR / f"{next(_names):010d}"
        named.symlink_to(outside)
    before = ctx.redis.zcard("mlservice:datasets")
    answer = post(http, "/resource/datasets", named, "text/csv", admin)
    assert (answer.status_code, answer.get_json()) == (
        400,
        {"status": "the upload could not be received; send it again"},
    )
    assert named.exists() and outside.read_bytes() == customers_csv
    assert ctx.redis.zcard("mlservice:datasets") == before
    named.unlink()


@pytest.mark.parametrize("multipart", [False, True])
def test_a_body_shorter_than_its_content_length_is_400_and_stores_nothing(
    http, admin, ctx, multipart
):
    """Without NGINX in front: the stream ends where the client stopped sending."""
    if multipart:
        data = b"a,b\n1,2\n3,4\n" * 1000
        boundary, body = encode_multipart(
            {"file": FileStorage(io.BytesIO(data), "short.csv", content_type="text/csv")}
        )
        content_type = f"multipart/form-data; boundary={boundary}"
    else:
        body, content_type = b"a,b\n1,2\n3,4\n", "text/csv"
    sent = body[: len(body) // 2]
    before = ctx.redis.zcard("mlservice:datasets")
    answer = http.post(
        "/resource/datasets",
        headers=admin,
        data=sent,
        content_type=content_type,
        environ_overrides={"CONTENT_LENGTH": str(len(body))},  # what the client declared
    )
    assert (answer.status_code, answer.get_json()) == (
        400,
        {
            "status": f"the body ended after {len(sent)} of the {len(body)} bytes its "
            "Content-Length declares; nothing was stored: send the whole body"
        },
    )
    assert ctx.redis.zcard("mlservice:datasets") == before
    assert list(ctx.datasets.artifacts.incoming().iterdir()) == []
