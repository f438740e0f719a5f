"""Reminders through a real RQ worker started ``--with-scheduler`` (subprocess) on
real Redis and PostgreSQL, sending to a real SMTP server (aiosmtpd).

Run with DATABASE_URL=postgres://postgres@127.0.0.1:5432/pw_a
REDIS_URL=redis://127.0.0.1:6379/3; skipped otherwise. The worker uses the real
clock, so the reminders here fall due a few seconds after publishing.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from tests.fixtures_mailing import make_link_holders, wait_for
from tests.utils import make_webinar
from wagtail_paidwebinar.mailing import reminders, resume_mailing, schedule
from wagtail_paidwebinar.models import (
    Mailing,
    MailingKind,
    MailingRecipient,
    MailingStatus,
    RecipientStatus,
    Reminder,
    ReminderStatus,
    WebinarPage,
)

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.redis,
    pytest.mark.postgres,
]


def scheduled_jobs(redis) -> dict[str, dt.datetime]:
    import django_rq

    registry = django_rq.get_queue("default").scheduled_job_registry
    return {
        job_id: registry.get_scheduled_time(job_id).replace(tzinfo=dt.UTC)
        for job_id in registry.get_job_ids()
    }


def soon_webinar(index, seconds: float, *, title: str, offsets: str = "1h"):
    """A webinar whose ``offsets`` reminder falls due in ``seconds``."""
    start = timezone.now() + dt.timedelta(hours=1, seconds=seconds)
    return make_webinar(
        index,
        title=title,
        starts_at=start,
        reminder_offsets=offsets,
        room_password="kawa123",
    )


def publish(page: WebinarPage, **changes) -> None:
    page = WebinarPage.objects.get(pk=page.pk)
    for name, value in changes.items():
        setattr(page, name, value)
    page.save_revision().publish()


def reminder_mailings(webinar):
    return Mailing.objects.filter(webinar=webinar, kind=MailingKind.REMINDER)


def sent_count(mailing) -> int:
    return MailingRecipient.objects.filter(
        mailing=mailing, status=RecipientStatus.SENT
    ).count()


def test_replanned_on_a_change_dropped_on_cancel_sent_when_due(
    index, real_queue, rq_worker, smtp_server
):
    moved = soon_webinar(index, 15, title="Moved")
    cancelled = soon_webinar(index, 15, title="Cancelled")
    kept = soon_webinar(index, 15, title="Kept")
    for webinar in (moved, cancelled, kept):
        make_link_holders(webinar, 2, domain=f"{webinar.slug}.example.org")
    jobs = scheduled_jobs(real_queue)
    assert len(jobs) == 3

    # The start moves a day later: the job due in seconds is replaced by one a
    # day later. The other is cancelled: its job is removed.
    new_start = moved.starts_at + dt.timedelta(days=1)
    publish(moved, starts_at=new_start)
    schedule.cancel_webinar(cancelled)
    jobs = scheduled_jobs(real_queue)
    assert len(jobs) == 2
    moved_reminder = Reminder.objects.get(webinar=moved, status=ReminderStatus.PLANNED)
    due = jobs[reminders.job_id(moved_reminder.pk)]
    assert abs(due - (new_start - dt.timedelta(hours=1))) < dt.timedelta(seconds=1)

    worker = rq_worker()
    wait_for(
        lambda: Mailing.objects.filter(
            webinar=kept, kind=MailingKind.REMINDER, status=MailingStatus.DONE
        ).exists(),
        timeout=60,
        message=worker.log(),
    )
    time.sleep(2)  # the other two were due at the same time
    assert not reminder_mailings(moved).exists()
    assert not reminder_mailings(cancelled).exists()
    # SMTP saw the kept webinar's reminders and the cancellation, nothing else.
    counts = smtp_server.by_recipient()
    kept_addresses = {a for a in counts if a.endswith("@kept.example.org")}
    assert len(kept_addresses) == 2
    assert all(counts[a] == 1 for a in kept_addresses)
    subjects = sorted(str(m["Subject"]) for m in smtp_server.messages)
    assert [s for s in subjects if s.startswith("Cancelled: ")] == [
        "Cancelled: Cancelled"
    ] * 2
    sent = [s for s in subjects if s.startswith("Reminder: ")]
    assert len(sent) == 2 and all(s.startswith("Reminder: Kept starts") for s in sent)
    assert len(subjects) == 4


def test_reminder_sent_once_across_a_worker_kill(
    index, real_queue, rq_worker, smtp_server, settings
):
    webinar = soon_webinar(index, 3, title="Crash")
    links = make_link_holders(webinar, 300)
    reminder = Reminder.objects.get(webinar=webinar)
    worker = rq_worker(PW_SEND_DELAY="0.01", PW_BATCH_SIZE="50", PW_SMTP_CONNECTIONS=1)
    wait_for(
        lambda: (
            reminder_mailings(webinar).exists()
            and sent_count(reminder_mailings(webinar).get()) >= 60
        ),
        timeout=90,
        message=worker.log(),
    )
    worker.kill()
    time.sleep(0.5)
    mailing = reminder_mailings(webinar).get()
    progress = mailing.progress()
    assert 60 <= progress["sent"] < 300, progress
    in_flight = set(
        MailingRecipient.objects.filter(
            mailing=mailing, status=RecipientStatus.SENDING
        ).values_list("email", flat=True)
    )
    assert len(in_flight) <= 1

    # The job runs again (a duplicate in Redis, the command, a re-plan): nothing
    # new is created.
    import django_rq

    django_rq.get_queue("default").enqueue(reminders.JOB, reminder.pk)
    assert reminders.send_reminder(reminder.pk) is None
    assert reminders.replan_all()[1] == 0

    # Resume after the stale limit: the ledger finishes the one mailing.
    settings.WAGTAIL_PAIDWEBINAR_STALE_SENDING_SECONDS = 0
    resume_mailing(mailing)
    worker = rq_worker(PW_BATCH_SIZE="50", PW_SMTP_CONNECTIONS=1)
    wait_for(
        lambda: Mailing.objects.get(pk=mailing.pk).status == MailingStatus.DONE,
        timeout=120,
        message=worker.log(),
    )
    time.sleep(1)  # the duplicate job has run too
    assert reminder_mailings(webinar).count() == 1
    counts = smtp_server.by_recipient()
    assert set(counts) == {link.email for link in links}
    duplicates = {a for a, n in counts.items() if n > 1}
    assert duplicates <= in_flight
    assert all(n <= 2 for n in counts.values())
    url_of = {link.email: link.get_url() for link in links}
    for message in smtp_server.messages[:20]:
        to = message["To"].addresses[0].addr_spec
        text = message.get_body(("plain",)).get_content()
        assert url_of[to] in text and "kawa123" in text
