"""Reminders before a webinar's start: planned on publish, sent by a scheduled job.

Each reminder is a :class:`~..models.Reminder` row (webinar, start, offset) and,
once due, one mailing to the link holders (the same engine, ledger, jobs, retries
and resume as any mailing). Why a row per reminder: it is the unit of "never
twice" — the job moves it from 'planned' to 'sent' under a row lock in the same
transaction that creates its mailing, and ``Mailing.reminder`` is unique, so a
duplicate job, a re-run or the ``paidwebinar_reminders`` command running at the
same time cannot create a second mailing. A worker killed after that commit
leaves a mailing whose ledger resumes like every other (``paidwebinar_send``).

The job is queued with ``enqueue_at`` (django-rq's scheduler: the worker must run
``--with-scheduler``) under a job id derived from the row, so planning again
replaces it. Whatever happened since (the start moved, reminders were turned off,
the page was unpublished, deleted or cancelled), the job re-checks at run time
and a stale one does nothing. The embedded queue (no Redis, jobs inline) has no
scheduler: nothing is scheduled there and ``paidwebinar_reminders --send-due``
sends what is due.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from ..models import (
    Mailing,
    MailingKind,
    Reminder,
    ReminderStatus,
    WebinarPage,
)
from . import audience, jobs, siteid
from .api import LINK_HOLDERS, create_mailing, start_mailing
from .render import webinar_language

logger = logging.getLogger(__name__)

JOB = "wagtail_paidwebinar.mailing.reminders.run_reminder"
# A scheduler may run a job a moment before its time (clock skew between
# machines); earlier than this it is not the reminder's time yet.
EARLY_TOLERANCE = dt.timedelta(minutes=2)


def job_id(reminder_id: int) -> str:
    return f"paidwebinar-reminder-{reminder_id}"


def _live_row(webinar_id: int) -> WebinarPage | None:
    """The webinar as published (the row, not a draft revision)."""
    return WebinarPage.objects.filter(pk=webinar_id).first()


def wanted_offsets(webinar: WebinarPage, now: dt.datetime) -> list[int]:
    """The offsets (minutes) of the webinar's current start that may still be
    sent: none when it is not live, cancelled, started or has reminders off."""
    if not webinar.live or webinar.is_cancelled or webinar.starts_at <= now:
        return []
    return webinar.reminder_minutes()


def plan_reminders(webinar: WebinarPage, *, now: dt.datetime | None = None) -> int:
    """Bring the webinar's reminders in line with its published start and
    settings: planned rows that no longer fit are dropped (and their jobs
    removed), the ones to come are created or kept and scheduled once the
    transaction commits. Returns how many are planned."""
    now = now or timezone.now()
    page = _live_row(webinar.pk)
    wanted = wanted_offsets(page, now) if page is not None else []
    with transaction.atomic():
        stale = Reminder.objects.filter(
            webinar_id=webinar.pk, status=ReminderStatus.PLANNED
        )
        if page is not None:
            stale = stale.exclude(starts_at=page.starts_at, offset_minutes__in=wanted)
        dropped = list(stale.values_list("pk", flat=True))
        Reminder.objects.filter(pk__in=dropped).update(status=ReminderStatus.DROPPED)
        planned: list[Reminder] = []
        for minutes in wanted:
            assert page is not None  # noqa: S101 - wanted is empty without a page
            if page.starts_at - dt.timedelta(minutes=minutes) <= now:
                # Its time has passed: never start one late (published an hour
                # before the start); one planned earlier and not sent yet (jobs
                # lost) is kept and goes out now, unless a later one supersedes it.
                reminder = Reminder.objects.filter(
                    webinar_id=page.pk,
                    starts_at=page.starts_at,
                    offset_minutes=minutes,
                    status=ReminderStatus.PLANNED,
                ).first()
                if reminder is not None:
                    planned.append(reminder)
                continue
            reminder, _created = Reminder.objects.get_or_create(
                webinar_id=page.pk, starts_at=page.starts_at, offset_minutes=minutes
            )
            if reminder.status == ReminderStatus.DROPPED:
                # The start moved back, or reminders were turned on again.
                Reminder.objects.filter(
                    pk=reminder.pk, status=ReminderStatus.DROPPED
                ).update(status=ReminderStatus.PLANNED)
                reminder.status = ReminderStatus.PLANNED
            if reminder.status == ReminderStatus.PLANNED:
                planned.append(reminder)
        transaction.on_commit(lambda: _schedule(planned, dropped))
    return len(planned)


def _schedule(planned: list[Reminder], dropped: list[int]) -> None:
    from redis.exceptions import RedisError

    try:
        _schedule_jobs(planned, dropped)
    except RedisError:
        # Publishing must not fail because Redis is away: the rows are right, and
        # every stale job re-checks them; only the jobs are missing.
        logger.exception(
            "Reminders: could not schedule %d reminders (Redis unavailable); run "
            "manage.py paidwebinar_reminders once it is back",
            len(planned),
        )


def _schedule_jobs(planned: list[Reminder], dropped: list[int]) -> None:
    queue = jobs.get_queue()
    if not queue.is_async:
        return  # the embedded queue has no scheduler: --send-due sends them
    registry = queue.scheduled_job_registry
    for pk in dropped:
        registry.remove(job_id(pk), delete_job=True)
    site = siteid.site_identity()
    for reminder in planned:
        queue.enqueue_at(
            reminder.due_at,
            JOB,
            reminder.pk,
            site,
            job_id=job_id(reminder.pk),
            description=f"paidwebinar reminder {reminder.pk}",
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
        )
    logger.info("Reminders: %d scheduled, %d dropped", len(planned), len(dropped))


def drop_reminders(webinar_id: int) -> int:
    """Drop every planned reminder of the webinar (unpublished, deleted or
    cancelled); returns how many."""
    dropped = list(
        Reminder.objects.filter(
            webinar_id=webinar_id, status=ReminderStatus.PLANNED
        ).values_list("pk", flat=True)
    )
    Reminder.objects.filter(pk__in=dropped).update(status=ReminderStatus.DROPPED)
    transaction.on_commit(lambda: _schedule([], dropped))
    return len(dropped)


def _stale_reason(
    reminder: Reminder, page: WebinarPage | None, now: dt.datetime
) -> str:
    """Why a planned reminder must not be sent any more ("" when it may be)."""
    if page is None or not page.live:
        return "unpublished"
    if page.is_cancelled:
        return "cancelled"
    if page.starts_at != reminder.starts_at:
        return "moved"
    offsets = page.reminder_minutes()
    if reminder.offset_minutes not in offsets:
        return "off"
    if now >= page.starts_at:
        return "too late"
    # Sent late (no worker for a while): a smaller reminder that is due as well
    # supersedes this one, so nobody gets two reminders in a row.
    if any(
        m < reminder.offset_minutes and page.starts_at - dt.timedelta(minutes=m) <= now
        for m in offsets
    ):
        return "superseded"
    return ""


def reminder_text(webinar: WebinarPage, language: str) -> tuple[str, str]:
    """The reminder's subject and body (merge fields) in ``language``."""
    with translation.override(language):
        subject = gettext("Reminder: {{ webinar }} starts {{ starts_at }}")
        greeting = gettext("Hello {{ name }},")
        text = gettext(
            "this is a reminder: {{ webinar }} starts on {{ starts_at }}. Your "
            "personal link and how to join are below. The link admits one "
            "person: please do not share it."
        )
    return subject, f"<p>{greeting}</p><p>{text}</p>"


def send_reminder(
    reminder_id: int, *, now: dt.datetime | None = None
) -> Mailing | None:
    """Send the reminder if it is still current and due: its mailing to the
    webinar's link holders, in the webinar's language, started at once. Returns
    the mailing, or None when there was nothing to send (already sent, dropped,
    not due yet, or no longer current — then it is dropped)."""
    now = now or timezone.now()
    with transaction.atomic():
        reminder = (
            Reminder.objects.select_for_update()
            .filter(pk=reminder_id, status=ReminderStatus.PLANNED)
            .first()
        )
        if reminder is None:
            return None
        page = _live_row(reminder.webinar_id)
        reason = _stale_reason(reminder, page, now)
        if reason:
            Reminder.objects.filter(pk=reminder.pk).update(
                status=ReminderStatus.DROPPED
            )
            logger.info("Reminder %s dropped (%s)", reminder.pk, reason)
            return None
        if now < reminder.due_at - EARLY_TOLERANCE:
            return None
        assert page is not None  # noqa: S101 - _stale_reason returned a reason
        language = webinar_language(page)
        subject, body = reminder_text(page, language)
        try:
            with transaction.atomic():
                mailing = create_mailing(
                    page,
                    subject=subject,
                    body_html=body,
                    audience=LINK_HOLDERS,
                    language=language,
                    kind=MailingKind.REMINDER,
                    reminder=reminder,
                )
        except IntegrityError:
            return None  # another run created it (only without row locks: SQLite)
        Reminder.objects.filter(pk=reminder.pk).update(
            status=ReminderStatus.SENT, sent_at=now
        )
        start_mailing(mailing)
    logger.info("Reminder %s: mailing %s started", reminder_id, mailing.pk)
    return mailing


def run_reminder(reminder_id: int, site: str | None = None) -> int | None:
    """The scheduled RQ job: :func:`send_reminder`; returns the mailing id."""
    if site is not None and site not in siteid.accepted_identities():
        # Another site sharing Redis and the queue: its reminder ids mean other
        # rows here. Fail loudly instead of sending someone else's reminder.
        raise siteid.ForeignJobError(
            f"Reminder job {reminder_id} belongs to another site (identity {site})."
        )
    mailing = send_reminder(reminder_id)
    return mailing.pk if mailing is not None else None


def send_due(*, now: dt.datetime | None = None) -> list[Mailing]:
    """Send every planned reminder that is due (the embedded queue's way, and a
    catch-up after jobs were lost); returns the mailings started."""
    now = now or timezone.now()
    started = []
    for reminder in Reminder.objects.filter(status=ReminderStatus.PLANNED).order_by(
        "starts_at", "-offset_minutes"
    ):
        if reminder.due_at - EARLY_TOLERANCE <= now:
            mailing = send_reminder(reminder.pk, now=now)
            if mailing is not None:
                started.append(mailing)
    return started


def replan_all(*, now: dt.datetime | None = None) -> tuple[int, int]:
    """Plan every webinar's reminders again (after Redis lost its scheduled
    jobs): returns (webinars, reminders planned)."""
    now = now or timezone.now()
    ids = set(
        WebinarPage.objects.live()
        .filter(starts_at__gt=now)
        .values_list("pk", flat=True)
    )
    ids |= set(
        Reminder.objects.filter(status=ReminderStatus.PLANNED).values_list(
            "webinar_id", flat=True
        )
    )
    planned = 0
    for pk in sorted(ids):
        planned += plan_reminders(WebinarPage(pk=pk), now=now)
    return len(ids), planned


@dataclass(frozen=True)
class NextReminder:
    """What the webinar's edit page says about reminders."""

    enabled: bool
    due_at: dt.datetime | None = None
    recipients: int = 0
    # False with a queue no worker serves (the embedded one): nothing is
    # scheduled, ``paidwebinar_reminders --send-due`` sends them.
    scheduled: bool = True


def next_reminder(
    webinar: WebinarPage, *, now: dt.datetime | None = None
) -> NextReminder:
    """The next planned reminder of the published webinar and how many people it
    would go to now (the link holders)."""
    now = now or timezone.now()
    page = _live_row(webinar.pk) if webinar.pk else None
    if page is None or not page.reminder_minutes() or page.is_cancelled:
        return NextReminder(enabled=False)
    upcoming = [
        r
        for r in Reminder.objects.filter(
            webinar_id=page.pk, status=ReminderStatus.PLANNED, starts_at=page.starts_at
        )
        if r.due_at > now - EARLY_TOLERANCE
    ]
    if not upcoming:
        return NextReminder(enabled=True)
    first = min(upcoming, key=lambda r: r.due_at)
    return NextReminder(
        enabled=True,
        due_at=first.due_at,
        recipients=audience.valid_links(page.pk, now).count(),
        scheduled=jobs.get_queue().is_async,
    )


__all__ = [
    "NextReminder",
    "drop_reminders",
    "next_reminder",
    "plan_reminders",
    "replan_all",
    "run_reminder",
    "send_due",
    "send_reminder",
]
