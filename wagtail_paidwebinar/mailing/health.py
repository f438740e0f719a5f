"""Is the queue there? Workers, Redis and stalled mailings, as the admin shows them.

After "Send" a mailing only moves when an RQ worker listens on the plugin's queue.
Nothing in RQ tells the sender that nobody listens, so these functions ask Redis
(the worker registry RQ keeps per queue) and the ledger (when did a row last move)
and return values the mailing pages turn into notices. The embedded in-process
queue (``ASYNC: False``) runs jobs inline: it needs no worker and gets no notice.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import redis.exceptions
from django.db.models import Max
from django.utils import timezone
from rq import Worker

from ..conf import get_setting
from ..models import Mailing, MailingStatus, RecipientStatus

logger = logging.getLogger(__name__)

#: What enqueueing (or asking for workers) raises when Redis cannot be reached.
#: Caught at the admin boundary: a message instead of a 500.
QUEUE_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


@dataclass(frozen=True)
class WorkerStatus:
    """The state of the plugin's queue as far as sending is concerned."""

    queue: str
    #: The in-process queue (``ASYNC: False``): jobs run inline, no worker needed.
    embedded: bool
    #: Workers registered on the queue (0 when Redis is unreachable or embedded).
    workers: int = 0
    #: Why Redis could not be asked ("" when it answered).
    error: str = ""

    @property
    def reachable(self) -> bool:
        return not self.error

    @property
    def needs_worker(self) -> bool:
        """True when jobs would wait forever: a real queue nobody listens on."""
        return not self.embedded and self.reachable and self.workers == 0

    @property
    def command(self) -> str:
        """The command that starts a worker for this queue."""
        return f"python manage.py rqworker {self.queue} --with-scheduler"

    def as_dict(self) -> dict:
        return {
            "queue": self.queue,
            "embedded": self.embedded,
            "workers": self.workers,
            "reachable": self.reachable,
            "needs_worker": self.needs_worker,
            "command": self.command,
        }


def worker_status(queue_name: str | None = None) -> WorkerStatus:
    """Ask Redis how many RQ workers listen on ``queue_name`` (default: the
    WAGTAIL_PAIDWEBINAR_QUEUE). Never raises for an unreachable Redis: the error
    is returned in :attr:`WorkerStatus.error`."""
    import django_rq

    name = queue_name or get_setting("QUEUE")
    queue = django_rq.get_queue(name)
    if not queue.is_async:
        return WorkerStatus(queue=name, embedded=True)
    try:
        # Worker.all() drops registrations whose worker key expired (a worker
        # killed without deregistering), which Worker.count() would still count.
        workers = len(Worker.all(queue=queue))
    except QUEUE_ERRORS as exc:
        logger.warning("Redis of queue %r is unreachable: %s", name, exc)
        return WorkerStatus(queue=name, embedded=False, error=str(exc) or repr(exc))
    return WorkerStatus(queue=name, embedded=False, workers=workers)


def last_activity(mailing: Mailing) -> dt.datetime | None:
    """When a row of ``mailing`` last moved (claimed or sent), or when it started."""
    moments = mailing.recipients.order_by().aggregate(
        claimed=Max("claimed_at"), sent=Max("sent_at")
    )
    found = [m for m in (mailing.started_at, *moments.values()) if m is not None]
    return max(found) if found else None


def stalled_since(
    mailing: Mailing, now: dt.datetime | None = None
) -> dt.datetime | None:
    """The moment a queued or sending mailing with rows left to send last moved, if
    that is longer ago than STALL_SECONDS; else None (moving, paused or finished)."""
    if mailing.status not in (MailingStatus.QUEUED, MailingStatus.SENDING):
        return None
    left = mailing.recipients.filter(
        status__in=[RecipientStatus.PENDING, RecipientStatus.SENDING]
    )
    if not left.exists():
        return None
    last = last_activity(mailing)
    now = now or timezone.now()
    limit = dt.timedelta(seconds=float(get_setting("STALL_SECONDS")))
    if last is None or now - last < limit:
        return None
    return last


def queue_state(mailing: Mailing, *, now: dt.datetime | None = None) -> dict:
    """What the mailing page and its progress JSON say about the queue: the
    :class:`WorkerStatus` (as a dict) plus ``stalled`` and ``stalled_minutes``."""
    status = worker_status()
    since = stalled_since(mailing, now)
    minutes = 0
    if since is not None:
        minutes = int(((now or timezone.now()) - since).total_seconds() // 60)
    return {
        **status.as_dict(),
        "stalled": since is not None,
        "stalled_minutes": minutes,
    }


__all__ = [
    "QUEUE_ERRORS",
    "WorkerStatus",
    "last_activity",
    "queue_state",
    "stalled_since",
    "worker_status",
]
