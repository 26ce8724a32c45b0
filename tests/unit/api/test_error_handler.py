"""The API's one error handler: every exception answers JSON ``{"status": message}``."""

import errno
import logging
import os

import pytest
import redis
from flask import Flask
from werkzeug.exceptions import InternalServerError, MethodNotAllowed

from mlservice.api.error_handler import REDIS_FULL, handle
from mlservice.errors import ARTIFACT_STORE_FULL, NotFound, Unauthorized


@pytest.fixture
def app_context():
    with Flask(__name__).app_context():
        yield


def test_a_service_error_answers_its_status_and_message(app_context):
    response = handle(NotFound("no model 'x'"))
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "no model 'x'"}


def test_a_service_error_keeps_its_headers(app_context):
    challenge = 'Bearer realm="ml-service", error="invalid_token"'
    response = handle(Unauthorized("token expired", headers={"WWW-Authenticate": challenge}))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == challenge
    assert response.get_json() == {"status": "token expired"}


def test_a_werkzeug_http_error_keeps_its_status(app_context):
    response = handle(MethodNotAllowed(valid_methods=["GET"]))
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": MethodNotAllowed.description}


def test_an_unexpected_error_is_a_bare_500_and_logged(app_context, caplog):
    try:
        raise RuntimeError("secret detail of the failure")
    except RuntimeError as exc:
        with caplog.at_level(logging.ERROR, logger="mlservice.api.error_handler"):
            response = handle(exc)
    assert response.status_code == 500
    assert response.get_json() == {"status": InternalServerError.description}
    body = response.get_data(as_text=True)
    assert "Traceback" not in body and "secret detail" not in body
    assert "Traceback" in caplog.text and "secret detail of the failure" in caplog.text


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_is_507_naming_the_artifact_store(app_context, number):
    response = handle(OSError(number, os.strerror(number), "/var/artifacts/x.part"))
    assert response.status_code == 507
    assert response.get_json() == {"status": ARTIFACT_STORE_FULL}  # no path given away


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'"),
        redis.exceptions.ResponseError("MISCONF Errors writing to the AOF file: No space left"),
    ],
)
def test_redis_refusing_writes_for_want_of_room_is_507_naming_redis(app_context, error):
    response = handle(error)
    assert response.status_code == 507
    assert response.get_json() == {"status": REDIS_FULL}


def test_another_os_error_is_still_a_bare_500(app_context):
    assert handle(OSError(errno.EIO, "I/O error")).status_code == 500
