"""Big audiences start in the background: above START_IN_BACKGROUND_ABOVE
estimated recipients, start_mailing() only marks the mailing 'preparing' and
queues a job that resolves the audience and queues the sending jobs."""

from __future__ import annotations

import django_rq
import pytest
from rq import SimpleWorker

from tests.fixtures_mailing import make_link_holders
from tests.utils import admin_url, embedded_queue_config
from wagtail_paidwebinar.mailing import (
    cancel_mailing,
    create_mailing,
    resume_mailing,
    start_mailing,
)
from wagtail_paidwebinar.mailing.api import prepare_mailing
from wagtail_paidwebinar.models import Mailing, MailingStatus

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

QUEUE = "paidwebinar-background"


@pytest.fixture
def worker_queue(settings, smtp_settings):
    """A queue served by a worker (jobs wait in a fake Redis until
    :func:`work` runs them), so the start goes to the background."""
    from django_rq import settings as rq_settings

    rq_settings.QUEUES[QUEUE] = {**embedded_queue_config(), "ASYNC": True}
    settings.WAGTAIL_PAIDWEBINAR_QUEUE = QUEUE
    settings.WAGTAIL_PAIDWEBINAR_START_IN_BACKGROUND_ABOVE = 5
    yield django_rq.get_queue(QUEUE)
    rq_settings.QUEUES.pop(QUEUE, None)


def work(queue) -> None:
    """What a worker does: run every queued job, here, until none is left."""
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def status_of(mailing) -> str:
    return Mailing.objects.values_list("status", flat=True).get(pk=mailing.pk)


def test_big_audience_is_prepared_by_a_job(webinar, worker_queue, smtp_server):
    links = make_link_holders(webinar, 8)
    mailing = create_mailing(webinar, subject="Hi {{ name }}", body_html="<p>x</p>")
    assert start_mailing(mailing) == 0  # returns at once
    assert mailing.status == MailingStatus.PREPARING
    assert mailing.started_at is not None
    assert mailing.progress()["total"] == 0
    summary = mailing.progress_summary()
    assert summary["preparing"] and not summary["finished"]
    # A second click changes nothing: still one preparation job.
    assert start_mailing(Mailing.objects.get(pk=mailing.pk)) == 0
    assert worker_queue.count == 1

    work(worker_queue)  # prepares, then sends the batches it queued
    assert status_of(mailing) == MailingStatus.DONE
    assert smtp_server.by_recipient() == {link.email: 1 for link in links}
    mailing.refresh_from_db()
    assert mailing.frozen_render
    # The job run again (RQ retry, stray copy) does nothing.
    assert prepare_mailing(mailing.pk) == 0
    assert mailing.progress()["total"] == 8


def test_small_audience_still_starts_at_once(webinar, worker_queue, smtp_server):
    make_link_holders(webinar, 5)
    mailing = create_mailing(webinar, subject="Hi", body_html="<p>x</p>")
    assert start_mailing(mailing) == 5
    assert status_of(mailing) == MailingStatus.QUEUED


def test_cancelled_while_preparing_sends_nothing(webinar, worker_queue, smtp_server):
    make_link_holders(webinar, 8)
    mailing = create_mailing(webinar, subject="Hi", body_html="<p>x</p>")
    start_mailing(mailing)
    assert cancel_mailing(mailing)
    work(worker_queue)
    assert status_of(mailing) == MailingStatus.CANCELLED
    assert mailing.progress()["total"] == 0
    assert smtp_server.by_recipient() == {}


def test_lost_preparation_is_queued_again_by_resume(webinar, worker_queue, smtp_server):
    links = make_link_holders(webinar, 8)
    mailing = create_mailing(webinar, subject="Hi", body_html="<p>x</p>")
    start_mailing(mailing)
    for job_id in worker_queue.job_ids:  # the job was lost with its worker
        worker_queue.remove(job_id)
    assert worker_queue.count == 0
    assert resume_mailing(mailing) == 0
    work(worker_queue)
    assert status_of(mailing) == MailingStatus.DONE
    assert smtp_server.by_recipient() == {link.email: 1 for link in links}


def test_mailing_page_shows_preparing_then_progress(
    webinar, worker_queue, smtp_server, admin_client
):
    make_link_holders(webinar, 8)
    mailing = create_mailing(webinar, subject="Hi", body_html="<p>x</p>")
    start_mailing(mailing)
    page = admin_client.get(admin_url("mailing", "detail", mailing.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert "data-pw-preparing>" in html  # shown (not hidden)
    progress = admin_client.get(admin_url("mailing", "progress", mailing.pk)).json()
    assert progress["status"] == "preparing" and progress["preparing"]
    assert not progress["finished"]

    work(worker_queue)
    progress = admin_client.get(admin_url("mailing", "progress", mailing.pk)).json()
    assert not progress["preparing"]
    assert progress["total"] == 8 and progress["sent"] == 8 and progress["finished"]
