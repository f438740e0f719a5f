"""The django-rq surface of sending: what is enqueued, the job, and its retries.

A job gets a mailing id and a batch of ledger row ids (never model instances) and
hands them to :func:`.delivery.send_rows`. Rows a transient failure put back to
pending go into a new job scheduled after the next delay of RETRY_DELAYS
(``enqueue_in``: the worker must run ``--with-scheduler``); after the last delay
they fail.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence

import django_rq
from rq import Retry

from ..conf import get_setting
from . import delivery, ledger, siteid

logger = logging.getLogger(__name__)


def get_queue():
    """The django-rq queue named by WAGTAIL_PAIDWEBINAR_QUEUE (resolved per call)."""
    return django_rq.get_queue(get_setting("QUEUE"))


def enqueue_ids(
    mailing_id: int,
    recipient_ids: Sequence[int],
    *,
    attempt: int = 0,
    delay: float | None = None,
) -> int:
    """Queue ``recipient_ids`` in jobs of BATCH_SIZE; with ``delay``, as scheduled
    jobs. Under COMMIT_MODE=on_db_commit the jobs enter Redis when the current
    transaction commits. Returns the number of jobs."""
    if not recipient_ids:
        return 0
    queue = get_queue()
    size = max(1, int(get_setting("BATCH_SIZE")))
    per_message = max(float(get_setting("SEND_DELAY")), 0.0) + 30
    jobs = 0
    site = siteid.site_identity()
    for start in range(0, len(recipient_ids), size):
        chunk = list(recipient_ids[start : start + size])
        options = {
            "job_id": (
                f"paidwebinar-mailing-{mailing_id}-{chunk[0]}-{uuid.uuid4().hex[:8]}"
            ),
            "description": f"paidwebinar mailing {mailing_id}: {len(chunk)} recipients",
            "job_timeout": int(60 + per_message * len(chunk)),
            "result_ttl": 3600,
            "failure_ttl": 7 * 24 * 3600,
        }
        if queue.is_async:
            # An unexpected crash of the job (database restart...) is retried by
            # RQ; SMTP errors never get here, they are handled row by row.
            options["retry"] = Retry(max=3, interval=[10, 60, 300])
        if delay:
            queue.enqueue_in(
                dt.timedelta(seconds=delay),
                send_batch,
                mailing_id,
                chunk,
                attempt,
                site,
                **options,
            )
        else:
            queue.enqueue(send_batch, mailing_id, chunk, attempt, site, **options)
        jobs += 1
    return jobs


PREPARE_JOB = "wagtail_paidwebinar.mailing.api.prepare_mailing"


def enqueue_prepare(mailing_id: int, user_id: int | None) -> None:
    """Queue :func:`.api.prepare_mailing` (when the current transaction commits, under
    COMMIT_MODE=on_db_commit)."""
    queue = get_queue()
    options = {
        "job_id": f"paidwebinar-prepare-{mailing_id}-{uuid.uuid4().hex[:8]}",
        "description": f"paidwebinar mailing {mailing_id}: resolve the audience",
        # 100,000 recipients took ~15 s; room for a slow database.
        "job_timeout": 30 * 60,
        "result_ttl": 3600,
        "failure_ttl": 7 * 24 * 3600,
    }
    if queue.is_async:
        options["retry"] = Retry(max=3, interval=[10, 60, 300])
    # By dotted path: api imports this module, so importing it back would be a cycle.
    queue.enqueue(PREPARE_JOB, mailing_id, user_id=user_id, **options)


def send_batch(
    mailing_id: int,
    recipient_ids: Sequence[int],
    attempt: int = 0,
    site: str | None = None,
) -> dict:
    """Send to the pending rows among ``recipient_ids`` (the RQ job); ``attempt``
    counts the earlier tries of these rows. Rows that hit a transient error go back
    to pending and into a job scheduled after the next RETRY_DELAYS entry. Returns
    the counts. Raises :class:`.siteid.ForeignJobError` for a job queued by another
    site (``site``) or for a mailing this database does not know."""
    siteid.check_job(mailing_id, site)
    counts, retry = delivery.send_rows(mailing_id, recipient_ids)
    if retry:
        _retry_later(mailing_id, retry, attempt, counts.get("error", ""))
    ledger.finish_if_complete(mailing_id)
    return counts


def retry_delay(attempt: int) -> float | None:
    """The retry policy for transient failures, for jobs and for
    :func:`.api.send_now` alike: seconds to wait before trying again rows that
    failed on try ``attempt`` (0 = the first), or None once RETRY_DELAYS is
    exhausted and they must fail."""
    delays = list(get_setting("RETRY_DELAYS") or [])
    return float(delays[attempt]) if attempt < len(delays) else None


def give_up(mailing_id: int, ids: Sequence[int], attempt: int, error: str) -> None:
    """Fail the rows still pending among ``ids`` after try ``attempt``."""
    ledger.fail_pending(list(ids), ledger.gave_up_message(attempt + 1, error))
    logger.warning(
        "Mailing %s: gave up on %d recipients: %s", mailing_id, len(ids), error
    )


def _retry_later(mailing_id: int, ids: list[int], attempt: int, error: str) -> None:
    delay = retry_delay(attempt)
    if delay is None:
        give_up(mailing_id, ids, attempt, error)
        return
    queue = get_queue()
    if not queue.is_async:
        # The embedded queue runs jobs inline and has no scheduler: leave the rows
        # pending; "resume" (admin or paidwebinar_send) sends them later.
        logger.warning(
            "Mailing %s: %d recipients left pending (%s); resume to retry",
            mailing_id,
            len(ids),
            error,
        )
        return
    enqueue_ids(mailing_id, ids, attempt=attempt + 1, delay=delay)
