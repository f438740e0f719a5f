"""Reminders: planned on publish at the webinar's offsets, re-planned when the start
moves, dropped when off, unpublished, deleted or cancelled, sent once (frozen
clock; the scheduler's queue is fakeredis here, a real worker in
test_reminders_worker.py)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test import TestCase
from django.urls import reverse
from wagtail.models import Locale

from tests.utils import make_webinar
from wagtail_paidwebinar.actions import generate_links
from wagtail_paidwebinar.mailing import create_mailing, reminders
from wagtail_paidwebinar.models import (
    Mailing,
    MailingKind,
    Reminder,
    ReminderStatus,
    WebinarPage,
)
from wagtail_paidwebinar.validators import parse_reminder_offsets

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
START = dt.datetime(2026, 3, 10, 17, 0, tzinfo=dt.UTC)
SCHEDULED_QUEUE = "paidwebinar-scheduled-fake"


def committed():
    """Tests run in a transaction that never commits: run the on_commit callbacks
    of the block (scheduling, the sending jobs) when it ends, as a commit would."""
    return TestCase.captureOnCommitCallbacks(execute=True)


def make(index, **fields) -> WebinarPage:
    with committed():
        return make_webinar(index, **fields)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def scheduled_queue(settings):
    """A queue served by a worker (is_async) on fakeredis: enqueue_at writes to its
    scheduled registry, which the tests read; nothing runs."""
    import fakeredis
    import redis
    from django_rq import settings as rq_settings

    rq_settings.QUEUES[SCHEDULED_QUEUE] = {
        "HOST": "fake",
        "PORT": 0,
        "DB": 0,
        "ASYNC": True,
        "REDIS_CLIENT_KWARGS": {
            "connection_pool": redis.ConnectionPool(
                connection_class=fakeredis.FakeRedisConnection,
                server=fakeredis.FakeServer(),
            )
        },
    }
    settings.WAGTAIL_PAIDWEBINAR_QUEUE = SCHEDULED_QUEUE
    import django_rq

    yield django_rq.get_queue(SCHEDULED_QUEUE)
    rq_settings.QUEUES.pop(SCHEDULED_QUEUE, None)


def scheduled(queue) -> dict[str, dt.datetime]:
    """Job id -> scheduled time (UTC) of every job in the scheduled registry."""
    registry = queue.scheduled_job_registry
    return {
        job_id: registry.get_scheduled_time(job_id).replace(tzinfo=dt.UTC)
        for job_id in registry.get_job_ids()
    }


def holders(webinar):
    result = generate_links(
        webinar,
        "Anna Nowak <anna@example.com>\nJan Kowalski <jan@example.com>\nNo Mail",
    )
    assert result.ok, result
    return result.created


def publish(page: WebinarPage, **changes) -> WebinarPage:
    for name, value in changes.items():
        setattr(page, name, value)
    with committed():
        page.save_revision().publish()
    page.refresh_from_db()
    return page


def planned(webinar) -> set[tuple[dt.datetime, int]]:
    return set(
        Reminder.objects.filter(
            webinar=webinar, status=ReminderStatus.PLANNED
        ).values_list("starts_at", "offset_minutes")
    )


def test_offsets_parse_and_validate(db):
    assert parse_reminder_offsets("24h, 1h") == [1440, 60]
    assert parse_reminder_offsets("1h 2d;30m, 1h") == [2880, 60, 30]
    assert parse_reminder_offsets("") == []
    assert parse_reminder_offsets("tomorrow") is None
    assert parse_reminder_offsets("24") is None
    page = WebinarPage(title="x", slug="x", starts_at=START, reminder_offsets="soon")
    with pytest.raises(ValidationError) as excinfo:
        page.full_clean(exclude=["path", "depth"])
    assert "reminder_offsets" in excinfo.value.message_dict
    for bad in ("0m", "31d", "1h, 2h, 3h, 4h, 5h, 6h"):
        page.reminder_offsets = bad
        with pytest.raises(ValidationError):
            page.full_clean(exclude=["path", "depth"])


def test_publish_schedules_reminders_at_the_offsets(clock, index, scheduled_queue):
    webinar = make(index, starts_at=START)
    assert planned(webinar) == {(START, 1440), (START, 60)}
    jobs = scheduled(scheduled_queue)
    by_offset = {r.offset_minutes: r for r in Reminder.objects.filter(webinar=webinar)}
    assert jobs == {
        reminders.job_id(by_offset[1440].pk): START - dt.timedelta(hours=24),
        reminders.job_id(by_offset[60].pk): START - dt.timedelta(hours=1),
    }
    # Publishing again without a change plans nothing new.
    publish(webinar)
    assert Reminder.objects.filter(webinar=webinar).count() == 2
    assert scheduled(scheduled_queue) == jobs


def test_moving_the_start_replans_and_the_stale_job_is_a_noop(
    clock, index, scheduled_queue
):
    webinar = make(index, starts_at=START)
    old = {r.offset_minutes: r.pk for r in Reminder.objects.filter(webinar=webinar)}
    new_start = START + dt.timedelta(days=2)
    publish(webinar, starts_at=new_start)
    assert planned(webinar) == {(new_start, 1440), (new_start, 60)}
    assert set(
        Reminder.objects.filter(pk__in=old.values()).values_list("status", flat=True)
    ) == {ReminderStatus.DROPPED}
    jobs = scheduled(scheduled_queue)
    assert sorted(jobs.values()) == [
        new_start - dt.timedelta(hours=24),
        new_start - dt.timedelta(hours=1),
    ]
    assert not {reminders.job_id(pk) for pk in old.values()} & set(jobs)
    # A job of the old plan that still ran (Redis kept it) sends nothing.
    clock.move_to(START - dt.timedelta(hours=1))
    assert reminders.run_reminder(old[60]) is None
    assert Mailing.objects.count() == 0
    # Moving back re-activates the first rows instead of adding new ones.
    clock.move_to(NOW)
    publish(webinar, starts_at=START)
    assert planned(webinar) == {(START, 1440), (START, 60)}
    assert Reminder.objects.filter(webinar=webinar).count() == 4


def test_off_unpublished_deleted_drop_reminders(clock, index, scheduled_queue):
    webinar = make(index, starts_at=START)
    publish(webinar, reminders_enabled=False)
    assert planned(webinar) == set()
    assert scheduled(scheduled_queue) == {}
    publish(webinar, reminders_enabled=True, reminder_offsets="2d")
    assert planned(webinar) == {(START, 2880)}
    with committed():
        webinar.unpublish()
    assert planned(webinar) == set()
    assert scheduled(scheduled_queue) == {}
    publish(webinar)
    assert len(scheduled(scheduled_queue)) == 1
    with committed():
        webinar.delete()
    assert scheduled(scheduled_queue) == {}
    assert Reminder.objects.count() == 0


def test_no_late_reminder_for_a_webinar_published_close_to_its_start(
    clock, index, scheduled_queue
):
    webinar = make(index, starts_at=NOW + dt.timedelta(minutes=90))
    # 24h before has passed: only the 1h reminder.
    assert planned(webinar) == {(webinar.starts_at, 60)}


def test_due_reminder_mails_every_live_holder_once(
    clock, index, invitations_queue, django_capture_on_commit_callbacks
):
    webinar = make(index, starts_at=START, room_password="kawa123")
    anna, jan, _no_mail = holders(webinar)
    reminder = Reminder.objects.get(webinar=webinar, offset_minutes=60)
    # Not yet due: nothing.
    assert reminders.send_reminder(reminder.pk) is None
    clock.move_to(START - dt.timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        mailing = reminders.send_reminder(reminder.pk)
    assert mailing is not None and mailing.kind == MailingKind.REMINDER
    # A second run of the job, or a duplicate job: nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        assert reminders.send_reminder(reminder.pk) is None
        assert reminders.run_reminder(reminder.pk) is None
    assert Mailing.objects.filter(reminder=reminder).count() == 1
    assert sorted(m.to[0] for m in mail.outbox) == [
        "Anna Nowak <anna@example.com>",
        "Jan Kowalski <jan@example.com>",
    ]
    for link, message in zip(
        (anna, jan), sorted(mail.outbox, key=lambda m: m.to[0]), strict=True
    ):
        assert link.get_url() in message.body
        assert "kawa123" in message.body
        assert message.subject.startswith("Reminder: Django performance")
    # The database refuses a second mailing of the same reminder.
    with pytest.raises(IntegrityError), transaction.atomic():
        create_mailing(webinar, subject="x", body_html="", reminder=reminder)
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.SENT


def test_reminder_is_in_the_webinars_language(
    clock, index, invitations_queue, django_capture_on_commit_callbacks
):
    webinar = make(index, starts_at=START, title="Wydajność", slug="wyd")
    webinar.locale = Locale.objects.get_or_create(language_code="pl")[0]
    webinar.save()
    holders(webinar)
    reminder = Reminder.objects.get(webinar=webinar, offset_minutes=1440)
    clock.move_to(reminder.due_at)
    with django_capture_on_commit_callbacks(execute=True):
        mailing = reminders.send_reminder(reminder.pk)
    assert mailing.language == "pl"
    assert "Link osobisty (uprawnia do wejścia jedną osobę" in mail.outbox[0].body


def test_revoked_links_get_no_reminder_and_late_ones_are_superseded(
    clock, index, invitations_queue, django_capture_on_commit_callbacks
):
    from wagtail_paidwebinar.actions import revoke_link

    webinar = make(index, starts_at=START)
    anna, _jan, _ = holders(webinar)
    revoke_link(anna)
    # The worker was down for a day: at 30 minutes before the start both are
    # due; only the 1h one goes out.
    clock.move_to(START - dt.timedelta(minutes=30))
    with django_capture_on_commit_callbacks(execute=True):
        started = reminders.send_due()
    assert [m.reminder.offset_minutes for m in started] == [60]
    assert [m.to[0] for m in mail.outbox] == ["Jan Kowalski <jan@example.com>"]
    assert planned(webinar) == set()


def test_command_replans_and_sends_due_reminders(
    clock, index, invitations_queue, django_capture_on_commit_callbacks
):
    """The embedded queue has no scheduler: the command sends what is due."""
    webinar = make(index, starts_at=START)
    holders(webinar)
    Reminder.objects.all().delete()  # as if the plan was lost
    from io import StringIO

    out = StringIO()
    call_command("paidwebinar_reminders", stdout=out)
    assert "2 reminders planned for 1 webinars" in out.getvalue()
    clock.move_to(START - dt.timedelta(hours=24))
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("paidwebinar_reminders", "--send-due", stdout=out)
    assert "1 due reminders sent." in out.getvalue()
    assert len(mail.outbox) == 2
    with django_capture_on_commit_callbacks(execute=True):
        call_command("paidwebinar_reminders", "--send-due", stdout=out)
    assert len(mail.outbox) == 2


def test_edit_page_shows_the_next_reminder(
    clock, index, admin_client, invitations_queue
):
    webinar = make(index, starts_at=START, timezone="Europe/Warsaw")
    holders(webinar)
    url = reverse("wagtailadmin_pages:edit", args=[webinar.pk])
    html = admin_client.get(url).content.decode()
    # 24 h before 18:00 Warsaw time, to the two holders with an address.
    assert "Next reminder: March 9, 2026, 6 p.m. (Europe/Warsaw), to 2 people." in html
    # The embedded queue has no scheduler: the page says how reminders go out.
    assert "run manage.py paidwebinar_reminders --send-due" in html
    publish(webinar, reminders_enabled=False)
    html = admin_client.get(url).content.decode()
    assert "Reminders are off." in html
    assert "Next reminder" not in html


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row locks (select_for_update) need PostgreSQL; set DATABASE_URL",
)
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_simultaneous_runs_of_one_reminder_create_one_mailing(index, invitations_queue):
    """Eight copies of the job at the same instant (duplicate jobs, the command,
    a second worker): one mailing, one e-mail per holder."""
    import threading

    from django.db import connections

    start = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    webinar = make_webinar(index, starts_at=start, reminder_offsets="1h")
    holders(webinar)
    # Planned before its time passed (publishing now plans no late reminder).
    reminder = Reminder.objects.create(
        webinar=webinar, starts_at=webinar.starts_at, offset_minutes=60
    )
    barrier = threading.Barrier(8)
    results: list = [None] * 8

    def one(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            mailing = reminders.send_reminder(reminder.pk)
            results[i] = mailing.pk if mailing else None
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[i] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    created = [r for r in results if r is not None]
    assert len(created) == 1 and isinstance(created[0], int), results
    assert Mailing.objects.filter(reminder=reminder).count() == 1
    assert len(mail.outbox) == 2
