"""The API's one error handler: every exception answers JSON ``{"status": message}``."""

import logging

import pytest
from flask import Flask
from werkzeug.exceptions import InternalServerError, MethodNotAllowed

from mlservice.api.error_handler import handle
from mlservice.errors import NotFound, Unauthorized


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
