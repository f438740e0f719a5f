"""When the queue is not there: no worker listening, a stalled mailing, Redis down
(issue 11, items 9 and 10), through the mailing admin pages and their JSON."""

from __future__ import annotations

import datetime as dt

import fakeredis
import pytest
import redis
from django.utils import timezone
from rq import Worker

from tests.utils import admin_url
from wagtail_paidwebinar.mailing import health, start_mailing
from wagtail_paidwebinar.models import (
    Mailing,
    MailingRecipient,
    MailingStatus,
    RecipientStatus,
)

ASYNC_QUEUE = "paidwebinar-health-async"
DOWN_QUEUE = "paidwebinar-health-down"


def url(action: str, *args) -> str:
    return admin_url("mailing", action, *args)


@pytest.fixture
def async_queue(settings):
    """A real-looking queue (ASYNC on) on fakeredis: jobs wait for a worker."""
    from django_rq import settings as rq_settings

    rq_settings.QUEUES[ASYNC_QUEUE] = {
        "HOST": "fake",
        "PORT": 0,
        "DB": 0,
        "REDIS_CLIENT_KWARGS": {
            "connection_pool": redis.ConnectionPool(
                connection_class=fakeredis.FakeRedisConnection,
                server=fakeredis.FakeServer(),
            )
        },
    }
    settings.WAGTAIL_PAIDWEBINAR_QUEUE = ASYNC_QUEUE
    yield ASYNC_QUEUE
    rq_settings.QUEUES.pop(ASYNC_QUEUE, None)


@pytest.fixture
def down_queue(settings):
    """A queue whose Redis refuses connections (a closed port)."""
    from django_rq import settings as rq_settings

    rq_settings.QUEUES[DOWN_QUEUE] = {
        "URL": "redis://127.0.0.1:1/0",
        "REDIS_CLIENT_KWARGS": {"socket_connect_timeout": 2},
    }
    settings.WAGTAIL_PAIDWEBINAR_QUEUE = DOWN_QUEUE
    yield DOWN_QUEUE
    rq_settings.QUEUES.pop(DOWN_QUEUE, None)


def shown(page: str, notice: str) -> bool:
    """Is the queue notice ``notice`` rendered visible (not ``hidden``)?"""
    assert f'data-pw-queue-notice="{notice}"' in page
    return f'data-pw-queue-notice="{notice}">' in page


def start_worker_registration(queue_name: str) -> Worker:
    """A worker as RQ registers it (what `rqworker` does at birth), no process."""
    import django_rq

    queue = django_rq.get_queue(queue_name)
    worker = Worker([queue], connection=queue.connection)
    worker.register_birth()
    return worker


# --- no worker listening (item 9) ------------------------------------------------


def test_worker_status_rule(async_queue, invitations_queue):
    embedded = health.worker_status(invitations_queue)
    assert embedded.embedded and not embedded.needs_worker

    status = health.worker_status(async_queue)
    assert (status.embedded, status.workers, status.needs_worker) == (False, 0, True)
    assert status.command == (
        f"python manage.py rqworker {async_queue} --with-scheduler"
    )
    start_worker_registration(async_queue)
    status = health.worker_status(async_queue)
    assert (status.workers, status.needs_worker) == (1, False)


def test_send_page_says_no_worker_listens(
    mailing_editor_client, draft_mailing, async_queue
):
    page = mailing_editor_client.get(url("send", draft_mailing.pk)).content.decode()
    assert shown(page, "needs_worker")
    assert "No worker is listening on the queue" in page
    assert f"python manage.py rqworker {async_queue} --with-scheduler" in page


def test_send_page_quiet_with_a_worker(
    mailing_editor_client, draft_mailing, async_queue
):
    start_worker_registration(async_queue)
    page = mailing_editor_client.get(url("send", draft_mailing.pk)).content.decode()
    assert not shown(page, "needs_worker")
    assert not shown(page, "unreachable")


def test_send_page_quiet_with_the_embedded_queue(
    mailing_editor_client, draft_mailing, invitations_queue
):
    page = mailing_editor_client.get(url("send", draft_mailing.pk)).content.decode()
    assert "No worker is listening" not in page
    assert "data-pw-queue" not in page


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_mailing_page_and_json_say_no_worker_then_stalled(
    mailing_editor_client, draft_mailing, async_queue, settings
):
    client = mailing_editor_client
    response = client.post(url("send", draft_mailing.pk))
    assert response.status_code == 302
    draft_mailing.refresh_from_db()
    assert draft_mailing.status == MailingStatus.QUEUED

    page = client.get(url("detail", draft_mailing.pk)).content.decode()
    assert shown(page, "needs_worker")
    assert not shown(page, "stalled")
    data = client.get(url("progress", draft_mailing.pk)).json()
    assert data["queue"]["needs_worker"] is True
    assert data["queue"]["stalled"] is False
    assert data["percent"] == 0

    # Nothing moved for longer than STALL_SECONDS: the page says so.
    settings.WAGTAIL_PAIDWEBINAR_STALL_SECONDS = 120
    Mailing.objects.filter(pk=draft_mailing.pk).update(
        started_at=timezone.now() - dt.timedelta(minutes=5)
    )
    data = client.get(url("progress", draft_mailing.pk)).json()
    assert data["queue"]["stalled"] is True
    assert data["queue"]["stalled_minutes"] == 5
    page = client.get(url("detail", draft_mailing.pk)).content.decode()
    assert shown(page, "stalled")
    assert "No progress for <span data-pw-stalled-minutes>5</span> min." in page

    # A worker appears and a row moves: both notices go away.
    start_worker_registration(async_queue)
    MailingRecipient.objects.filter(mailing=draft_mailing).filter(
        pk=MailingRecipient.objects.filter(mailing=draft_mailing).first().pk
    ).update(status=RecipientStatus.SENT, sent_at=timezone.now())
    data = client.get(url("progress", draft_mailing.pk)).json()
    assert data["queue"]["needs_worker"] is False
    assert data["queue"]["stalled"] is False


def test_finished_mailing_has_no_queue_notice(
    mailing_editor_client, draft_mailing, async_queue
):
    Mailing.objects.filter(pk=draft_mailing.pk).update(status=MailingStatus.DONE)
    data = mailing_editor_client.get(url("progress", draft_mailing.pk)).json()
    assert data["queue"] is None


# --- Redis down (item 10) ---------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_send_with_redis_down_shows_a_message_and_keeps_the_draft(
    mailing_editor_client, draft_mailing, down_queue, settings, invitations_queue
):
    settings.WAGTAIL_PAIDWEBINAR_QUEUE = down_queue
    client = mailing_editor_client
    page = client.get(url("send", draft_mailing.pk)).content.decode()
    assert shown(page, "unreachable")
    assert not shown(page, "needs_worker")

    response = client.post(url("send", draft_mailing.pk), follow=True)
    assert response.status_code == 200
    assert "The queue (Redis) cannot be reached, so nothing was sent." in (
        response.content.decode()
    )
    draft_mailing.refresh_from_db()
    assert draft_mailing.status == MailingStatus.DRAFT
    assert not MailingRecipient.objects.filter(mailing=draft_mailing).exists()

    # Redis is back (here: the embedded queue): Send works.
    settings.WAGTAIL_PAIDWEBINAR_QUEUE = invitations_queue
    response = client.post(url("send", draft_mailing.pk), follow=True)
    assert "Sending started: 3 recipients queued." in response.content.decode()
    draft_mailing.refresh_from_db()
    assert draft_mailing.status == MailingStatus.DONE
    assert draft_mailing.progress()["sent"] == 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_redis_lost_at_commit_leaves_a_requeueable_mailing(
    mailing_editor_client,
    draft_mailing,
    down_queue,
    invitations_queue,
    settings,
    monkeypatch,
):
    """Redis answers the check but is gone when the jobs are queued at commit."""
    settings.WAGTAIL_PAIDWEBINAR_QUEUE = down_queue
    monkeypatch.setattr(
        health,
        "worker_status",
        lambda queue_name=None: health.WorkerStatus(queue=down_queue, embedded=False),
    )
    client = mailing_editor_client
    response = client.post(url("send", draft_mailing.pk), follow=True)
    assert response.status_code == 200
    assert "cannot be reached" in response.content.decode()
    draft_mailing.refresh_from_db()
    assert draft_mailing.status == MailingStatus.QUEUED
    assert draft_mailing.progress()["pending"] == 3

    # Resume with Redis still down: the message again, no 500.
    response = client.post(url("resume", draft_mailing.pk), follow=True)
    assert response.status_code == 200
    assert "cannot be reached" in response.content.decode()

    # Redis is back: "Re-queue if stuck" sends everyone once.
    monkeypatch.undo()
    settings.WAGTAIL_PAIDWEBINAR_QUEUE = invitations_queue
    response = client.post(url("resume", draft_mailing.pk), follow=True)
    assert "Resumed: 3 recipients queued." in response.content.decode()
    draft_mailing.refresh_from_db()
    assert draft_mailing.status == MailingStatus.DONE
    assert draft_mailing.progress()["sent"] == 3


def test_start_mailing_api_untouched_by_the_check(draft_mailing, invitations_queue):
    """The Python API is not the admin boundary: it queues as before."""
    assert start_mailing(draft_mailing) == 3
