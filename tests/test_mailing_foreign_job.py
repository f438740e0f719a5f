"""A job for a mailing this site's database does not know fails loudly (issue 11,
item 11): two sites sharing a Redis and a queue must not swallow each other's jobs
as silent no-ops. A real RQ worker on real Redis + PostgreSQL.

Run with DATABASE_URL=postgres://… REDIS_URL=redis://…; skipped otherwise.
"""

from __future__ import annotations

import django_rq
import pytest
from rq import Retry
from rq.registry import FailedJobRegistry

from tests.fixtures_mailing import make_link_holders, wait_for
from wagtail_paidwebinar.mailing import create_mailing, start_mailing
from wagtail_paidwebinar.mailing.jobs import send_batch
from wagtail_paidwebinar.mailing.siteid import site_identity
from wagtail_paidwebinar.models import Mailing, MailingStatus

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.redis,
    pytest.mark.postgres,
]


def wait_failed(queue, job, worker):
    registry = FailedJobRegistry(queue=queue)
    wait_for(
        lambda: job.id in registry.get_job_ids(),
        timeout=60,
        message=f"job {job.id} not failed ({job.get_status()}):\n{worker.log()}",
    )


def test_job_for_an_unknown_mailing_fails(webinar, rq_worker):
    queue = django_rq.get_queue("default")
    missing = Mailing.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    missing += 1000
    job = queue.enqueue(send_batch, missing, [1, 2], 0, site_identity())
    worker = rq_worker()
    wait_failed(queue, job, worker)
    assert (
        f"Mailing {missing} does not exist on this site"
        in job.latest_result().exc_string
    )
    assert "no such mailing in database" in worker.log()


def test_job_of_another_site_fails_and_leaves_the_mailing_untouched(
    webinar, rq_worker, smtp_server
):
    make_link_holders(webinar, 3)
    mailing = create_mailing(webinar, subject="Hi", body_html="<p>x</p>")
    # Started, but its jobs are not queued: only the foreign job below can run.
    assert start_mailing(mailing, enqueue=False) == 3
    ids = list(mailing.recipients.values_list("pk", flat=True))
    before = mailing.progress()

    queue = django_rq.get_queue("default")
    # Retries would only delay the failure: a foreign job fails at once (a retry
    # would wait 300 s, longer than wait_failed).
    job = queue.enqueue(
        send_batch, mailing.pk, ids, 0, "0" * 24, retry=Retry(max=3, interval=[300])
    )
    worker = rq_worker()
    wait_failed(queue, job, worker)
    assert "belongs to another site" in job.latest_result().exc_string
    assert "was queued by another site" in worker.log()

    mailing.refresh_from_db()
    assert mailing.status == MailingStatus.QUEUED
    assert mailing.progress() == before
    assert smtp_server.messages == []


def test_job_of_this_site_sends(webinar, rq_worker, smtp_server):
    """The control: the identity the site puts in its jobs is the one it accepts."""
    links = make_link_holders(webinar, 2)
    mailing = create_mailing(webinar, subject="Hi", body_html="<p>x</p>")
    assert start_mailing(mailing) == 2
    worker = rq_worker()
    wait_for(
        lambda: Mailing.objects.get(pk=mailing.pk).status == MailingStatus.DONE,
        timeout=60,
        message=worker.log(),
    )
    assert smtp_server.by_recipient() == {link.email: 1 for link in links}
