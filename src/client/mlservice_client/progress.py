"""Progress bars on standard error, and only when it is a terminal.

Scripts that pipe ``mls`` get clean output; people watching get a bar with
bytes, rate and time left for transfers, the task's own progress and step
for training, and the state and time taken for work that reports no
percentage (a data set being profiled). Each bar is made on first use, when
its total is known.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import IO, Any

from tqdm import tqdm  # type: ignore[import-untyped]

from .schemas import TaskStatus


def wanted(stream: IO[str] | None = None) -> bool:
    """Whether to draw bars: standard error is a terminal."""
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


class ByteBar:
    """A :data:`~mlservice_client.streaming.Progress` callback drawing a bytes bar (rate, ETA)."""

    def __init__(self, description: str, enabled: bool | None = None) -> None:
        self.description = description
        self.enabled = wanted() if enabled is None else enabled
        self._bar: Any = None

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            self._bar = tqdm(
                total=total,
                desc=self.description,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                dynamic_ncols=True,
                mininterval=0.2,
            )
        self._bar.update(done)

    def close(self) -> None:
        """End the bar's line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ByteBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TaskBar:
    """A callback for task statuses: a percent bar with the step the worker is on."""

    def __init__(self, description: str, enabled: bool | None = None) -> None:
        self.description = description
        self.enabled = wanted() if enabled is None else enabled
        self._bar: Any = None

    def __call__(self, status: TaskStatus) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            self._bar = tqdm(
                total=100,
                desc=self.description,
                bar_format="{desc}: {percentage:3.0f}%|{bar:30}| {elapsed}{postfix}",
                file=sys.stderr,
                dynamic_ncols=True,
            )
        self._bar.n = round(100 * float(status.get("progress", 0.0)))
        self._bar.set_postfix_str(str(status.get("status", "")), refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        """End the bar's line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> TaskBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StatusLine:
    """A callback for records whose work has no percentage: their ``status`` and the time taken.

    A data set being profiled says only ``profiling`` until it is ``ready`` or
    ``failed``; a bar that never moves would look stuck, a clock does not.
    """

    def __init__(self, description: str, enabled: bool | None = None) -> None:
        self.description = description
        self.enabled = wanted() if enabled is None else enabled
        self._bar: Any = None

    def __call__(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            self._bar = tqdm(
                total=None,
                desc=self.description,
                bar_format="{desc}: {elapsed}{postfix}",
                file=sys.stderr,
                dynamic_ncols=True,
            )
        self._bar.set_postfix_str(str(record.get("status", "")), refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        """End the line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> StatusLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: ANSI: the cursor to the start of the line ``n`` lines up, and erase to the end of the screen.
_UP = "\x1b[{}F"
_ERASE = "\x1b[J"


class LiveBoard:
    """A callback for search records: a search's line and its leaderboard's first rows,
    drawn again in place on each record (plain ANSI cursor moves, no curses).

    ``render`` turns a record into lines (the CLI's table); only a terminal gets them.
    """

    def __init__(
        self,
        render: Any,
        enabled: bool | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        self.render = render
        self.stream = stream or sys.stderr
        self.enabled = wanted(self.stream) if enabled is None else enabled
        self._drawn = 0
        self._last: list[str] = []

    def __call__(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        lines: list[str] = self.render(record)
        if lines == self._last:
            return
        text = (_UP.format(self._drawn) + _ERASE) if self._drawn else ""
        self.stream.write(text + "\n".join(lines) + "\n")
        self.stream.flush()
        self._drawn = len(lines)
        self._last = lines

    def close(self) -> None:
        """Leave the last drawing where it is."""
        self._drawn = 0

    def __enter__(self) -> LiveBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
