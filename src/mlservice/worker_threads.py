"""Native threads per Celery pool process: the cores shared out, not all cores each.

OpenMP (scikit-learn's HistGradientBoosting, its k-means and others) and BLAS
(numpy, scipy) start one thread per core in every process that calls them. A
worker of N pool processes on C cores then runs up to N x C busy threads for C
cores, and they spin waiting on each other: a HistGradientBoosting fit that
takes 0.17 s alone took 3 to 17 s in the worker. So each pool process gets
``max(1, C // N)`` threads when it starts (``worker_process_init``):
threadpoolctl sets the limit of the libraries already loaded, and
``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` (set in
the worker's main process, before the pool forks) hold it for those loaded
later. An ``OMP_NUM_THREADS`` the operator set is left as it is.
"""

from __future__ import annotations

import logging
import os

from threadpoolctl import threadpool_limits

log = logging.getLogger(__name__)

#: What the native thread pools read when they are loaded.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

#: The limit planned by the main process for its pool processes (None: the operator's own).
_planned: int | None = None


def available_cores() -> int:
    """The CPUs this process may run on (its affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity (not Linux)
        return os.cpu_count() or 1


def per_process(cores: int, processes: int) -> int:
    """Each pool process's share of the cores: at least one thread."""
    return max(1, cores // max(1, processes))


def plan(processes: int) -> int | None:
    """In the worker's main process, before the pool starts: the threads each pool process
    will get, written to the environment the pool inherits; ``None`` when the operator set
    ``OMP_NUM_THREADS`` (left alone)."""
    global _planned
    if os.environ.get("OMP_NUM_THREADS"):
        _planned = None
        return None
    _planned = per_process(available_cores(), processes)
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(_planned)
    return _planned


def apply() -> None:
    """In a pool process, as it starts: limit the native libraries already loaded."""
    if _planned is None:
        log.info("pool process: native threads as OMP_NUM_THREADS says (set by the operator)")
        return
    threadpool_limits(limits=_planned)
    log.info(
        "pool process: limited to %d native thread(s) (%d cores shared by the pool)",
        _planned,
        available_cores(),
    )
