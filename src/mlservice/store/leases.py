"""Leases: how long work (a training run, later any job) says "I am still on it".

Celery delivers a task again when its worker dies, but only after the broker's
visibility timeout (hours). A job that must heal within seconds holds a
*lease* instead: a Redis key with a short TTL that a thread of the job
refreshes (:class:`LeaseHolder`), and the job's id in a *running* sorted set
from its start to its end. A member of the running set without a live lease
is a job that died; a sweeper claims it (exactly one caller does, see
:meth:`Leases.claim_expired`) and sends it again. Every start is counted, so
a job that keeps killing its worker can be failed after a few deliveries.

Keys, for a lease kind ``<kind>`` (``model`` for training runs):
``mlservice:<kind>:<id>:lease`` (the holder, JSON: host, pid, run id),
``mlservice:<kind>:<id>:deliveries``, ``mlservice:<kind>:<id>:request`` (the
request id of its last start, for the run the sweep sends again), and the
running set the caller names.
Every step that reads and writes several keys is one Lua script.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType

import redis

from ..redis_client import key, text

log = logging.getLogger(__name__)

#: A lease lapses this long after its last refresh.
LEASE_SECONDS = 30.0
#: How often a holder refreshes its lease.
HEARTBEAT_SECONDS = 5.0
#: How long a job's request id is kept after its last start.
REQUEST_ID_SECONDS = 7 * 24 * 3600

_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[5] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return redis.call('INCR', KEYS[2])
"""
_REFRESH = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not current then return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) and 1 end
return 0
"""
_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Ends a job unless another holder has the lease: ARGV[2] is the lease's holder, or "".
_END = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[2] then return 0 end
if current then redis.call('DEL', KEYS[1]) end
return redis.call('ZREM', KEYS[2], ARGV[1])
"""


class Leases:
    """The leases of one kind of job, and its running set."""

    def __init__(self, redis_client: redis.Redis, kind: str, running_key: str) -> None:
        self.redis = redis_client
        self.kind = kind
        self.running_key = running_key
        self._acquire = redis_client.register_script(_ACQUIRE)
        self._refresh = redis_client.register_script(_REFRESH)
        self._drop = redis_client.register_script(_DROP)
        self._end = redis_client.register_script(_END)

    def lease_key(self, job_id: str) -> str:
        return key(self.kind, job_id, "lease")

    def deliveries_key(self, job_id: str) -> str:
        return key(self.kind, job_id, "deliveries")

    def holder(self, job_id: str) -> str | None:
        """The holder of the job's lease (JSON), if any."""
        return text(self.redis.get(self.lease_key(job_id)))

    def acquire(
        self, job_id: str, holder: str, seconds: float, replacing: str | None = None
    ) -> int | None:
        """Take the job's lease for ``holder`` and count a delivery: its number.

        ``None`` if another holder has it; ``replacing`` names a holder known to
        be dead, whose lease is taken over.
        """
        delivery = self._acquire(
            keys=[self.lease_key(job_id), self.deliveries_key(job_id), self.running_key],
            args=[holder, int(seconds * 1000), time.time(), job_id, replacing or ""],
        )
        return int(delivery) or None

    def refresh(self, job_id: str, holder: str, seconds: float) -> bool:
        """Extend the lease (taking it again if it lapsed); False if another holder has it."""
        return bool(
            self._refresh(keys=[self.lease_key(job_id)], args=[holder, int(seconds * 1000)])
        )

    def release(self, job_id: str, holder: str) -> None:
        """The job has finished (done, failed or deleted): its lease and running entry go.

        Unless another holder has taken the lease meanwhile: that run is then the job's.
        """
        self._end(keys=[self.lease_key(job_id), self.running_key], args=[job_id, holder])

    def drop(self, job_id: str, holder: str) -> None:
        """The job stops unfinished: its lease goes, it stays in the running set."""
        self._drop(keys=[self.lease_key(job_id)], args=[holder])

    def running(self) -> list[str]:
        """Jobs that started and have not finished (or died)."""
        return [str(text(item)) for item in self.redis.zrange(self.running_key, 0, -1)]

    def claim_expired(self, job_id: str, dead_holder: str | None = None) -> bool:
        """Take a job out of the running set if its lease lapsed (or is ``dead_holder``'s).

        True for exactly one caller: the one that then resumes or discards it.
        """
        claimed = self._end(
            keys=[self.lease_key(job_id), self.running_key], args=[job_id, dead_holder or ""]
        )
        return bool(claimed)

    def mark_running(self, job_id: str) -> None:
        """Put a job back in the running set (its resumption could not be sent)."""
        self.redis.zadd(self.running_key, {job_id: time.time()})

    def forget(self, job_id: str) -> None:
        """Forget how many times a deleted job started (its lease, if any, stays its own)."""
        self.redis.delete(self.deliveries_key(job_id), self.request_key(job_id))

    def request_key(self, job_id: str) -> str:
        return key(self.kind, job_id, "request")

    def request_id(self, job_id: str) -> str | None:
        """The request id the job's last start ran under (a resumed run is sent with it)."""
        return text(self.redis.get(self.request_key(job_id)))

    def begin(self, job_id: str, request_id: str | None = None) -> LeaseHolder | None:
        """Take the job's lease for this delivery, counting it; ``None`` if a live run has it.

        ``request_id``: the request that started the job, kept for a week so that the
        sweep sends a resumed run with it (its log lines then name that request).
        """
        holder = json.dumps(
            {"host": _this_host(), "pid": os.getpid(), "run": uuid.uuid4().hex, "at": time.time()}
        )
        current = self.holder(job_id)
        dead = current if current is not None and holder_is_dead(current) else None
        if current is not None and dead is None:
            return None
        delivery = self.acquire(job_id, holder, LEASE_SECONDS, replacing=dead)
        if delivery is None:
            return None
        if request_id is not None:
            self.redis.set(self.request_key(job_id), request_id, ex=REQUEST_ID_SECONDS)
        return LeaseHolder(self, job_id, holder, delivery)

    def expired(self) -> list[str]:
        """Claim every running job whose lease lapsed or whose holder died: the ids claimed.

        Each is claimed by exactly one caller, which must then resume or settle it.
        """
        claimed = []
        for job_id in self.running():
            current = self.holder(job_id)
            if current is not None and not holder_is_dead(current):
                continue
            if self.claim_expired(job_id, current):
                claimed.append(job_id)
        return claimed


class LeaseHolder:
    """One delivery's hold on a job, its lease refreshed by a thread.

    Leaving the ``with`` block stops the refreshes. A holder marked
    :attr:`finished` (the job ended done, failed or deleted) gives up its lease
    and its place in the running set; any other drops just its lease, so that
    the next sweep resumes the job at once.
    """

    def __init__(self, leases: Leases, job_id: str, holder: str, delivery: int) -> None:
        self.leases = leases
        self.job_id = job_id
        self.holder = holder
        #: 1 for the first start of the job, 2 for the next...
        self.delivery = delivery
        self.finished = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._keep, name=f"lease-{job_id}", daemon=True)

    def _keep(self) -> None:
        while not self._stopped.wait(HEARTBEAT_SECONDS):
            try:
                if not self.leases.refresh(self.job_id, self.holder, LEASE_SECONDS):
                    log.warning("%s %s: another run took the lease", self.leases.kind, self.job_id)
            except Exception:  # Redis away for a moment: the next beat tries again
                log.warning(
                    "%s %s: lease not refreshed", self.leases.kind, self.job_id, exc_info=True
                )

    def __enter__(self) -> LeaseHolder:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._thread.join(HEARTBEAT_SECONDS)
        try:
            if self.finished:
                self.leases.release(self.job_id, self.holder)
            else:
                self.leases.drop(self.job_id, self.holder)
        except Exception:  # the lease lapses by itself, and the sweep settles the job
            log.warning("%s %s: lease not given up", self.leases.kind, self.job_id, exc_info=True)


# --- is a holder alive? ------------------------------------------------------------------


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _this_host() -> str:
    """Processes whose ids this process can check: the host name and the pid namespace."""
    return f"{socket.gethostname()} {_pid_namespace()}"


def _process_runs(pid: int) -> bool:
    """The process exists and is not a zombie (killed, not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def holder_is_dead(holder: str) -> bool:
    """True only when a lease's holder provably died: a process of this host that is gone.

    A holder on another host (another container) is never judged: its lease lapses.
    """
    try:
        data = json.loads(holder)
        host, pid = data["host"], int(data["pid"])
    except (ValueError, TypeError, KeyError):
        return False
    return host == _this_host() and pid != os.getpid() and not _process_runs(pid)
