"""Answers as text for people: aligned tables, sizes, times, a model's metrics.

``--json`` prints the service's JSON instead; these functions are only for
the terminal, so they may shorten ids and round numbers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any


def table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    """Columns padded to their widest cell; numbers right-aligned, text left-aligned."""
    cells = [[_text(c) for c in row] for row in ([header] if header else []) + list(rows)]
    if not cells:
        return ""
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(len(cells[0]))]
    numeric = [
        all(_is_number(row[i]) for row in rows if i < len(row)) and bool(rows)
        for i in range(len(widths))
    ]
    lines = []
    for row in cells:
        padded = [
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e6 else f"{value:.4g}"
    return str(value)


def size(n: int | None) -> str:
    """Bytes as a person reads them (1.5 MiB)."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def when(seconds: float | None) -> str:
    """A Unix time as local ``YYYY-MM-DD HH:MM``."""
    if seconds is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """``key  value`` lines, keys aligned."""
    width = max((len(k) for k, _ in pairs), default=0)
    return "\n".join(f"{k.ljust(width)}  {_text(v)}" for k, v in pairs)


#: Metrics in the order a person reads them; anything else follows.
METRIC_ORDER = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "r2", "rmse", "mae")


def metrics(values: dict[str, Any]) -> str:
    """A model's held-out metrics (beside the training rows' when known), cross-validation and
    confusion matrix as text."""
    training = values.get("training")
    rows: list[tuple[Any, ...]]
    if isinstance(training, dict):
        rows = [(k, values[k], training.get(k, "")) for k in METRIC_ORDER if k in values]
    else:
        rows = [(k, values[k]) for k in METRIC_ORDER if k in values]
    counts: list[tuple[str, Any]] = [
        (key, values[key]) for key in ("train_rows", "test_rows") if key in values
    ]
    cv = values.get("cv")
    if isinstance(cv, dict):
        counts.append(
            (
                f"cv {cv.get('scoring', 'score')}",
                f"{cv.get('mean', 0):.4f} ± {cv.get('std', 0):.4f} ({cv.get('folds')} folds)",
            )
        )
    if isinstance(training, dict):  # the counts below, not widening the metrics' columns
        text = table(rows, ("metric", "held-out", "training"))
        if counts:
            text += "\n\n" + table(counts)
    else:
        text = table(rows + counts, ("metric", "value"))
    matrix = values.get("confusion_matrix")
    if isinstance(matrix, dict) and matrix.get("labels"):
        labels = [str(label) for label in matrix["labels"]]
        body = [[label, *counts] for label, counts in zip(labels, matrix["matrix"], strict=True)]
        text += "\n\nconfusion matrix (rows: true class, columns: predicted)\n"
        text += table(body, ["", *labels])
    return text


def warnings(items: list[dict[str, Any]]) -> str:
    """What training warned of, one line each."""
    return "warnings\n" + "\n".join(f"- {item.get('message', item)}" for item in items)
