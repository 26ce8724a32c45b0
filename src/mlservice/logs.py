"""Log lines for operators: JSON (or text), each with the request and task it belongs to.

One request is followed by one id from NGINX to the worker that does its
work: NGINX sends its ``X-Request-ID`` to the API, the API keeps it in the
*log context* of the request (:func:`bind`, done by
:mod:`mlservice.api.request_log`), every Celery task published meanwhile
carries it in its message headers (:func:`_carry_context`, Celery's
``before_task_publish``), and the worker puts it back into the log context
of the task it runs (``task_prerun``), where the callbacks that task sends
find it too. :class:`ContextFilter` adds the context to every log record, so
every line names its ``request_id`` (and ``user``, ``route``, ``model_id``,
``task_id``, ``task_name`` where they apply) without the code that logs
knowing about it.

The context lives in a :class:`contextvars.ContextVar`: each thread of a
Gunicorn worker and each task of a Celery worker has its own.

``[logging] format`` (``MLSERVICE_LOGGING_FORMAT``) chooses between one JSON
object per line (the default: for collectors) and text (for a terminal).
Gunicorn (``src/gunicorn.conf.py``), the Celery worker and beat
(:mod:`mlservice.worker`) configure logging with :func:`dict_config`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import re
import uuid
from typing import Any

from celery import Task
from celery.signals import before_task_publish, task_postrun, task_prerun
from pythonjsonlogger.json import JsonEncoder
from pythonjsonlogger.orjson import OrjsonFormatter

from .celery_app import MODEL_ID_ARGUMENT

#: The values of ``[logging] format``.
FORMATS = ("json", "text")

#: The header that carries the request id, from NGINX to the API and on to callbacks.
REQUEST_ID_HEADER = "X-Request-ID"
#: The Celery message header that carries it to the worker.
TASK_HEADER = "request_id"
#: A request id taken from outside: bounded, and nothing a log line could be forged with.
#: NGINX's template applies the same rule to a client's X-Request-ID.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

#: What the log context may hold, in the order text lines show it.
CONTEXT_FIELDS = ("request_id", "user", "route", "model_id", "task_id", "task_name")

#: Characters a text line shows escaped: the C0 controls (line breaks among them),
#: DEL, the C1 controls and Unicode's line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

#: The current log context; a new dict for each change, never changed in place.
_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "mlservice_log_context", default=None
)
Token = contextvars.Token[dict[str, str] | None]
#: ``task_prerun`` tokens by task id, so ``task_postrun`` restores the context before it.
_task_tokens: dict[str, Token] = {}


# --- the context ---------------------------------------------------------------------


def bind(**fields: object) -> Token:
    """Add ``fields`` (``None`` values left out) to the current log context.

    Returns the token that :func:`reset` takes to restore the context as it
    was before, with whatever was bound after it.
    """
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"not log context fields: {', '.join(sorted(unknown))}")
    added = {name: str(value) for name, value in fields.items() if value is not None}
    return _context.set(context() | added)


def reset(token: Token) -> None:
    """Restore the log context from before :func:`bind` gave ``token``."""
    _context.set(None if token.old_value is contextvars.Token.MISSING else token.old_value)


def context() -> dict[str, str]:
    """The current log context (a copy)."""
    return dict(_context.get() or {})


def request_id() -> str | None:
    """The id of the request the current work is for, if any."""
    return context().get("request_id")


def sane_request_id(value: object) -> str | None:
    """``value`` if it may be used as a request id (see :data:`SANE_REQUEST_ID`), else ``None``."""
    if isinstance(value, str) and SANE_REQUEST_ID.fullmatch(value):
        return value
    return None


def new_request_id() -> str:
    """A request id for work that came without one (32 hex digits, like NGINX's)."""
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Adds the log context's fields to each record that does not have them already."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_context.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


# --- formats -----------------------------------------------------------------------


def escape_controls(text: str) -> str:
    """``text`` with its control characters written as escapes (``\\n``, ``\\x1b``...).

    A text log line is one line: a value from a request (a path whose ``%0a``
    Werkzeug decoded, a user name) must not start a line of its own that
    looks like the service's, nor send escape sequences to a terminal.
    """
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    """One control character as Python would write it in a string."""
    char = match.group()
    return _ESCAPES.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


class TextFormatter(logging.Formatter):
    """``time level logger: message [request_id=... task_id=...]``: for a person at a terminal.

    The line's message and fields are escaped (:func:`escape_controls`), so a
    record is always one line; a traceback, written by the service, stays below it.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The first line, escaped: what came from outside cannot break it."""
        return escape_controls(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(
            f"{name}={escape_controls(str(getattr(record, name)))}"
            for name in CONTEXT_FIELDS
            if hasattr(record, name)
        )
        if not fields:
            return line
        first, newline, rest = line.partition("\n")  # a traceback stays below the line
        return f"{first} [{fields}]{newline}{rest}"


class JsonLineFormatter(OrjsonFormatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    then the context's fields and the record's extras (``status``, ``duration_s``...).

    Written by orjson, compact and in UTF-8: every request writes a line (its
    access line), and the standard library's encoder took twice as long.
    """

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        """The line; what orjson refuses (an integer beyond 64 bits in an extra) goes through
        the standard library instead of losing the line."""
        try:
            return super().jsonify_log_record(log_data)
        except TypeError:
            return json.dumps(log_data, cls=JsonEncoder, ensure_ascii=False)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """The time first, where a reader's eye starts."""
        return {"time": log_data.pop("time"), **log_data}


def formatter(log_format: str = "json") -> logging.Formatter:
    """The formatter of ``[logging] format`` (``json`` or ``text``)."""
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r} is not one of {', '.join(FORMATS)}")
    return JsonLineFormatter() if log_format == "json" else TextFormatter()


def dict_config(log_format: str, level: str | int) -> dict[str, Any]:
    """:func:`logging.config.dictConfig`'s configuration: every logger to stdout in
    ``log_format`` (``[logging] format``).

    Gunicorn's own loggers are included: its error log goes the same way, and
    its access log is silent (the app writes one line per request, with the
    route and the user Gunicorn does not know: :mod:`mlservice.api.request_log`).
    """
    level = logging.getLevelName(level) if isinstance(level, int) else level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"mlservice": {"()": f"{__name__}.formatter", "log_format": log_format}},
        "filters": {"context": {"()": f"{__name__}.ContextFilter"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "mlservice",
                "filters": ["context"],
            }
        },
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
    }


def configure(log_format: str, level: str | int) -> None:
    """Configure this process's logging (the Celery worker and beat; Gunicorn uses
    :func:`dict_config` through its ``logconfig_dict``)."""
    logging.config.dictConfig(dict_config(log_format, level))


# --- Celery: the context travels in task headers ---------------------------------------


def task_model_id(name: str | None, args: Any, kwargs: Any) -> str | None:
    """The model id a call of the task ``name`` is about, if it is about one
    (:data:`mlservice.celery_app.MODEL_ID_ARGUMENT`)."""
    position = MODEL_ID_ARGUMENT.get(name or "")
    if position is None:
        return None
    if isinstance(kwargs, dict) and kwargs.get("model_id") is not None:
        return str(kwargs["model_id"])
    if isinstance(args, tuple | list) and len(args) > position:
        return str(args[position])
    return None


@before_task_publish.connect
def _carry_context(
    sender: str | None = None,
    body: Any = None,
    headers: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    """Every task sent while a request (or a task) is handled carries its request id.

    Sent by the API (training, init, any task added later) and by tasks that
    send tasks (callbacks, retries). In a request, the task's id (and model id)
    join the request's context, so the request's line names the task it started.
    """
    if headers is None:
        return
    current = context()
    if "request_id" not in current:
        return
    headers.setdefault(TASK_HEADER, current["request_id"])
    if "task_id" not in current:  # in a request, not in a task
        args, kwargs = body[:2] if isinstance(body, tuple | list) else ((), {})
        bind(task_id=headers.get("id"), model_id=task_model_id(sender, args, kwargs))


@task_prerun.connect
def _enter_task(
    task_id: str | None = None,
    task: Task | None = None,
    args: object = (),
    kwargs: object = None,
    **_: Any,
) -> None:
    """The task's log context: its id and name, its model, and the request that sent it."""
    if task is None or task_id is None:
        return
    _task_tokens[task_id] = bind(
        request_id=sane_request_id(task.request.get(TASK_HEADER)),
        task_id=task_id,
        task_name=task.name,
        model_id=task_model_id(task.name, args, kwargs),
    )


@task_postrun.connect
def _leave_task(task_id: str | None = None, **_: Any) -> None:
    """Back to the context from before the task (the worker's own: none)."""
    token = _task_tokens.pop(task_id or "", None)
    if token is not None:
        reset(token)
