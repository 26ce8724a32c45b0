"""A model's training runs in Redis: lease, deliveries, compile step and callbacks.

A training run keeps its state beside the model's record, so that a run cut
short by a dead worker is found and resumed (see :mod:`mlservice.training.jobs`):

* a *lease* ``model:<id>:lease`` (:mod:`.leases`: JSON naming the holder) with a
  TTL its run refreshes, and the model in the sorted set ``training:running``
  while a run has started and not finished: a member without a lease is a run
  that died; ``model:<id>:deliveries`` counts how many times a run has started;
* ``model:<id>:compile-pending`` and the held-out rows beside the bundle, from
  the moment the fitted model is stored until ONNX compilation is done;
* ``model:<id>:callback-secret``, the client's key that signs the callback, and
  ``model:<id>:callback:<status>``: the callback for that outcome was queued
  (once); until it is delivered or given up, ``<id>:<status>`` stays in the
  sorted set ``callbacks:pending``, scored by the time its next attempt must
  have started by: one overdue was lost with its worker, and is sent again.

Each step that reads and writes several keys is one Lua script, so two
workers never both believe they hold a run or owe a callback.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import redis

from ..redis_client import key, text
from .artifacts import ArtifactStore
from .leases import Leases
from .records import ModelStatus

#: The held-out rows ONNX compilation is checked on, kept until it is done.
HELD_OUT_FILENAME = "held-out.parquet"
#: Models whose training run started and has not finished, scored by start time.
RUNNING_KEY = key("training", "running")
#: Callbacks queued and neither delivered nor given up: ``<model_id>:<status>`` -> deadline.
CALLBACKS_KEY = key("callbacks", "pending")

_CLAIM_CALLBACK = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
  return 1
end
return 0
"""
# 1: the callback is to be attempted (its deadline moved to ARGV[1]); 0: it was settled.
_CALLBACK_DUE = """
if redis.call('ZSCORE', KEYS[2], ARGV[2]) then
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
  return 1
end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
return 1
"""
_OVERDUE_CALLBACKS = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], member) end
return due
"""


def _compile_key(model_id: str) -> str:
    return key("model", model_id, "compile-pending")


def _callback_key(model_id: str, status: str) -> str:
    return key("model", model_id, "callback", status)


def _callback_secret_key(model_id: str) -> str:
    return key("model", model_id, "callback-secret")


class TrainingRuns:
    """The run state of every model's training (see the module's docstring)."""

    KIND = "models"

    def __init__(self, redis_client: redis.Redis, artifacts: ArtifactStore) -> None:
        self.redis = redis_client
        self.artifacts = artifacts
        #: The runs' leases (``model:<id>:lease``) and the running set (``training:running``).
        self.leases = Leases(redis_client, "model", RUNNING_KEY)
        self._claim_callback = redis_client.register_script(_CLAIM_CALLBACK)
        self._callback_due = redis_client.register_script(_CALLBACK_DUE)
        self._overdue_callbacks = redis_client.register_script(_OVERDUE_CALLBACKS)

    def forget(self, model_id: str) -> None:
        """Remove a deleted model's run state (a running run's lease stays: see
        :meth:`mlservice.store.model_store.ModelStore.discard`)."""
        self.redis.delete(
            _callback_secret_key(model_id),
            _compile_key(model_id),
            *(_callback_key(model_id, status) for status in ModelStatus),
        )
        self.redis.zrem(CALLBACKS_KEY, *(f"{model_id}:{status}" for status in ModelStatus))
        self.leases.forget(model_id)

    # --- the compile step

    def _held_out_path(self, model_id: str) -> Path:
        return self.artifacts.path(self.KIND, model_id, HELD_OUT_FILENAME)

    def keep_for_compiling(self, model_id: str, held_out: pd.DataFrame) -> None:
        """Before the fitted model is stored: its compile step is due, on these rows."""
        with self.artifacts.writing(self.KIND, model_id, HELD_OUT_FILENAME) as (handle, _):
            held_out.to_parquet(handle, index=False)
        self.redis.set(_compile_key(model_id), 1)

    def compile_pending(self, model_id: str) -> bool:
        """The model is stored but its ONNX compile step has not finished."""
        return bool(self.redis.exists(_compile_key(model_id)))

    def held_out(self, model_id: str) -> pd.DataFrame | None:
        """The held-out rows kept for a pending compile step, or ``None``."""
        try:
            return pd.read_parquet(self._held_out_path(model_id))
        except FileNotFoundError:
            return None

    def compiled(self, model_id: str) -> None:
        """The compile step is over (whatever its outcome): forget it and its rows."""
        self.redis.delete(_compile_key(model_id))
        self._held_out_path(model_id).unlink(missing_ok=True)

    # --- the callback of each outcome

    def keep_callback_secret(self, model_id: str, secret: str) -> None:
        """The key the client chose for signing the model's callback (never shown by the API)."""
        self.redis.set(_callback_secret_key(model_id), secret)

    def callback_secret(self, model_id: str) -> str | None:
        """The key the client chose for signing this model's callback."""
        return text(self.redis.get(_callback_secret_key(model_id))) or None

    def claim_callback(self, model_id: str, status: str, delivery_id: str, deadline: float) -> bool:
        """True the first time only: the callback of this outcome is to be queued now.

        It is then pending: its first attempt must have started by ``deadline``.
        """
        claimed = self._claim_callback(
            keys=[_callback_key(model_id, status), CALLBACKS_KEY],
            args=[delivery_id, deadline, f"{model_id}:{status}"],
        )
        return bool(claimed)

    def callback_due(self, model_id: str, status: str, deadline: float) -> bool:
        """An attempt at the callback starts: False if it was already delivered or given up.

        Otherwise its next attempt, if any, must have started by ``deadline``.
        """
        due = self._callback_due(
            keys=[_callback_key(model_id, status), CALLBACKS_KEY],
            args=[deadline, f"{model_id}:{status}"],
        )
        return bool(due)

    def callback_settled(self, model_id: str, status: str) -> None:
        """The callback was delivered, or given up: never attempted again."""
        self.redis.zrem(CALLBACKS_KEY, f"{model_id}:{status}")

    def overdue_callbacks(self, now: float, next_deadline: float) -> list[tuple[str, str]]:
        """Pending callbacks whose attempt did not start in time: (model id, status) each.

        Claimed: their deadline moves to ``next_deadline``, so one caller sends each again.
        """
        members = self._overdue_callbacks(keys=[CALLBACKS_KEY], args=[now, next_deadline])
        overdue = []
        for member in members:
            model_id, _, status = str(text(member)).partition(":")
            overdue.append((model_id, status))
        return overdue
