"""Path variables in the service's own formats: anything else is 404 before a route runs.

Ids end up in Redis keys and file paths; a route only ever sees an id of the
shape the service itself hands out, so ``/resource/models/default:bundle``
cannot name another key. The patterns are in ml-service.yml too.
"""

from __future__ import annotations

from werkzeug.routing import BaseConverter

from ..bodies import ALIAS_NAME, REGISTERED_NAME
from ..store.user_records import USERNAME_PATTERN


class HexId(BaseConverter):
    """A data set or model id: 32 lower-case hex digits (``uuid4().hex``)."""

    regex = "[0-9a-f]{32}"


class TaskId(BaseConverter):
    """A task id: a UUID, with or without its dashes (Celery's own, or ``uuid4().hex``)."""

    regex = "[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}"


class Username(BaseConverter):
    """A user name as accounts are created with."""

    regex = USERNAME_PATTERN


class RegisteredName(BaseConverter):
    """A registered model's name (no ``@``, so ``name@alias`` splits where it should)."""

    regex = REGISTERED_NAME


class Alias(BaseConverter):
    """An alias of a registered model: a letter first, never a number."""

    regex = ALIAS_NAME


class Version(BaseConverter):
    """A registered model's version number: 1 and up, no leading zero."""

    regex = "[1-9][0-9]{0,8}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: object) -> str:
        return str(value)


#: Name in a route (``<hexid:model_id>``) -> converter.
CONVERTERS: dict[str, type[BaseConverter]] = {
    "hexid": HexId,
    "taskid": TaskId,
    "username": Username,
    "regname": RegisteredName,
    "alias": Alias,
    "version": Version,
}
