"""Log lines: the JSON and text formats, the context filter, request ids, task arguments."""

import inspect
import io
import json
import logging
import logging.config

import pytest

from mlservice import logs
from mlservice.celery_app import MODEL_ID_ARGUMENT, TaskName, app
from mlservice.tasks import (  # noqa: F401
    callback_tasks,
    monitoring_tasks,
    scoring_tasks,
    training_tasks,
)


@pytest.fixture
def capture():
    """A logger configured by ``logs.dict_config`` (root's part, on a logger of its own) that
    writes into a buffer."""
    stream = io.StringIO()

    def configure(log_format: str) -> logging.Logger:
        name = f"tests.logs.{log_format}"
        config = logs.dict_config(log_format, "INFO")
        config["handlers"]["stdout"]["stream"] = stream
        config["loggers"] = {name: config.pop("root") | {"propagate": False}}
        logging.config.dictConfig(config)
        return logging.getLogger(name)

    yield configure, stream


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_json_line_has_time_level_logger_message_then_context_and_extras(capture):
    configure, stream = capture
    logger = configure("json")
    token = logs.bind(request_id="req-1", user="ann", route="/resource/models/<model_id>")
    try:
        logger.info("GET %s %d", "/x", 200, extra={"status": 200, "duration_s": 0.25})
    finally:
        logs.reset(token)
    [line] = lines(stream)
    record = json.loads(line)
    assert list(record) == [
        "time",
        "level",
        "logger",
        "message",
        "status",
        "duration_s",
        "request_id",
        "user",
        "route",
    ]
    assert record["time"].endswith("+00:00")
    assert {k: v for k, v in record.items() if k != "time"} == {
        "level": "INFO",
        "logger": "tests.logs.json",
        "message": "GET /x 200",
        "status": 200,
        "duration_s": 0.25,
        "request_id": "req-1",
        "user": "ann",
        "route": "/resource/models/<model_id>",
    }


def test_outside_any_request_a_line_has_no_context_keys(capture):
    configure, stream = capture
    configure("json").warning("starting")
    record = json.loads(lines(stream)[0])
    assert sorted(record) == ["level", "logger", "message", "time"]
    assert record["level"] == "WARNING"


def test_an_exception_stays_inside_its_json_line(capture):
    configure, stream = capture
    logger = configure("json")
    try:
        raise ValueError("bad value")
    except ValueError:
        logger.exception("failed")
    [line] = lines(stream)
    record = json.loads(line)
    assert record["message"] == "failed"
    assert record["exc_info"].endswith("ValueError: bad value")


def test_text_lines_show_the_context_in_brackets(capture):
    configure, stream = capture
    logger = configure("text")
    token = logs.bind(request_id="req-2", task_id="t-9")
    try:
        logger.info("trained")
    finally:
        logs.reset(token)
    logger.info("idle")
    first, second = lines(stream)
    assert first.endswith(" INFO tests.logs.text: trained [request_id=req-2 task_id=t-9]")
    assert second.endswith(" INFO tests.logs.text: idle")


def test_a_text_line_cannot_be_forged_from_a_request(capture):
    """A path (Werkzeug decodes %0a) or a field with control characters stays on its line."""
    configure, stream = capture
    logger = configure("text")
    forged = "/x\n2026-01-01 00:00:00,000 INFO mlservice.access: GET /admin 200"
    token = logs.bind(request_id="req-3", user="eve\r\x1b[2Jadmin", route="/a\u2028b")
    try:
        logger.info("GET %s %s", forged, 404)
    finally:
        logs.reset(token)
    [line] = lines(stream)
    assert line.endswith(
        " INFO tests.logs.text: GET /x\\n2026-01-01 00:00:00,000 INFO mlservice.access: "
        "GET /admin 200 404 [request_id=req-3 user=eve\\r\\x1b[2Jadmin route=/a\\u2028b]"
    )


def test_a_traceback_stays_below_its_text_line(capture):
    configure, stream = capture
    logger = configure("text")
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logger.exception("failed\tonce")
    first, *rest = lines(stream)
    assert first.endswith(" ERROR tests.logs.text: failed\\tonce")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-2:] == ["ValueError: bad", "value"]


def test_control_characters_are_escaped_as_python_writes_them():
    assert logs.escape_controls("a\x00b\x7fc\x85d\te\u2029") == ("a\\x00b\\x7fc\\x85d\\te\\u2029")
    assert logs.escape_controls("caf\u00e9 \\n") == "caf\u00e9 \\n"


def test_an_explicit_field_wins_over_the_context(capture):
    configure, stream = capture
    logger = configure("json")
    token = logs.bind(user="ann")
    try:
        logger.info("as another", extra={"user": "bob"})
    finally:
        logs.reset(token)
    assert json.loads(lines(stream)[0])["user"] == "bob"


def test_bind_and_reset_nest():
    outer = logs.bind(request_id="r1", model_id=None)
    inner = logs.bind(task_id="t1")
    assert logs.context() == {"request_id": "r1", "task_id": "t1"}
    logs.reset(inner)
    assert logs.context() == {"request_id": "r1"}
    assert logs.request_id() == "r1"
    logs.reset(outer)
    assert logs.context() == {}
    assert logs.request_id() is None


def test_only_known_fields_can_be_bound():
    with pytest.raises(ValueError, match="not log context fields: colour"):
        logs.bind(colour="red")


@pytest.mark.parametrize(
    "value, sane",
    [
        ("6f1c0a9e2b7d4c3a8e5f1b2c3d4e5f60", True),
        ("client-trace:42.a_b", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        ("has space", False),
        ('quote"', False),
        ("line\nbreak", False),
        (None, False),
    ],
)
def test_sane_request_ids(value, sane):
    assert logs.sane_request_id(value) == (value if sane else None)


def test_new_request_ids_look_like_nginx_ones():
    first, second = logs.new_request_id(), logs.new_request_id()
    assert first != second
    assert len(first) == 32 and int(first, 16) >= 0


def test_the_model_id_of_a_task_call():
    train, callback, init = TaskName.TRAIN_MODEL, TaskName.SEND_CALLBACK, TaskName.INIT_SERVICE
    assert logs.task_model_id(train, ("m1",), {}) == "m1"
    assert logs.task_model_id(callback, ("m2", "http://x", {}), None) == "m2"
    assert logs.task_model_id(callback, (), {"model_id": "m3"}) == "m3"
    assert logs.task_model_id(init, (), {}) is None
    assert logs.task_model_id(None, ("m1",), {}) is None
    assert logs.task_model_id(train, (), {}) is None


def test_every_task_about_a_model_takes_its_id_where_the_table_says():
    for name, position in MODEL_ID_ARGUMENT.items():
        parameters = list(inspect.signature(app.tasks[name].run).parameters)
        assert parameters[position] == "model_id", name


def test_the_format_must_be_known():
    with pytest.raises(ValueError, match="'xml' is not one of json, text"):
        logs.formatter("xml")


def test_gunicorn_logs_through_the_root_handler_and_writes_no_access_line():
    config = logs.dict_config("json", "warning")
    assert config["root"]["level"] == "WARNING"
    assert config["loggers"]["gunicorn.error"] == {
        "level": "WARNING",
        "handlers": [],
        "propagate": True,
    }
    assert config["loggers"]["gunicorn.access"]["propagate"] is False
