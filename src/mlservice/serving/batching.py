"""Adaptive batching: concurrent calls in one process grouped into one call.

A scikit-learn pipeline costs about the same for 64 rows as for one, so when
several requests for the same model arrive together in one Gunicorn worker
(its threads), running them as one predict serves them all for the price of
one. :class:`Batcher` does that without a background thread:

* The first caller to find nobody collecting becomes the *leader*. It waits
  at most ``max_wait`` seconds for others (less once ``max_rows`` rows are
  queued), takes what is queued, runs it, and hands each caller its part.
* Callers that arrive while a batch runs queue up; when the batch ends, the
  leader promotes the first of them to lead the next one, at once. So under
  load the batches form by themselves, and an idle model answers after
  ``max_wait``.
* One batch runs at a time per model and process, so a burst does not start
  many slow predict calls fighting for the same two cores.

``run`` receives the queued payloads in arrival order and must return one
result per payload; if it raises, every caller of that batch gets the error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from .. import telemetry

Payload = TypeVar("Payload")
Result = TypeVar("Result")


class _Call(Generic[Payload, Result]):
    """One caller's payload, and where its result (or error) is handed back."""

    __slots__ = ("payload", "rows", "done", "lead", "result", "error")

    def __init__(self, payload: Payload, rows: int) -> None:
        self.payload = payload
        self.rows = rows
        self.done = threading.Event()
        self.lead = False
        self.result: Result | None = None
        self.error: BaseException | None = None


class Batcher(Generic[Payload, Result]):
    """Groups concurrent :meth:`submit` calls into calls of ``run`` over several payloads."""

    def __init__(
        self, run: Callable[[Sequence[Payload]], Sequence[Result]], max_rows: int, max_wait: float
    ) -> None:
        self._run = run
        self.max_rows = max_rows
        self.max_wait = max_wait
        self._queue: list[_Call[Payload, Result]] = []
        self._queued_rows = 0
        self._leading = False  # a leader is collecting or running a batch
        self._changed = threading.Condition()
        #: Batches run so far and the payloads they held (for tests and metrics).
        self.batches = 0
        self.payloads = 0

    def submit(self, payload: Payload, rows: int) -> Result:
        """Run ``payload`` (``rows`` rows) as part of a batch; return its own result."""
        if rows >= self.max_rows:
            telemetry.batch(1, rows)
            return self._run([payload])[0]  # already a full batch on its own
        call: _Call[Payload, Result] = _Call(payload, rows)
        with self._changed:
            self._queue.append(call)
            self._queued_rows += rows
            if self._leading:
                self._changed.notify_all()  # a collecting leader may now have enough
                lead = False
            else:
                self._leading = lead = True
        if not lead:
            call.done.wait()
            if not call.lead:
                return self._outcome(call)
        # A promoted leader does not wait: its batch queued up while the last one ran.
        self._lead(wait=lead)
        return self._outcome(call)

    @staticmethod
    def _outcome(call: _Call[Payload, Result]) -> Result:
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]

    def _lead(self, wait: bool) -> None:
        """Collect a batch, run it, hand out results, then pass the lead on."""
        deadline = time.monotonic() + (self.max_wait if wait else 0.0)
        with self._changed:
            while self._queued_rows < self.max_rows:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            batch: list[_Call[Payload, Result]] = []
            rows = 0
            while self._queue and (not batch or rows + self._queue[0].rows <= self.max_rows):
                call = self._queue.pop(0)
                batch.append(call)
                rows += call.rows
            self._queued_rows -= rows
        try:
            results = self._run([call.payload for call in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batch of {len(batch)} gave {len(results)} results")
            for call, result in zip(batch, results, strict=True):
                call.result = result
        except BaseException as exc:  # every caller of the batch hears of it
            for call in batch:
                call.error = exc
        self.batches += 1
        self.payloads += len(batch)
        telemetry.batch(len(batch), rows)
        with self._changed:
            if self._queue:
                successor = self._queue[0]
                successor.lead = True
                successor.done.set()
            else:
                self._leading = False
        for call in batch:
            call.done.set()
