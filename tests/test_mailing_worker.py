"""The mailing engine with a real RQ worker (subprocess, ``rqworker --with-scheduler``)
on real Redis and PostgreSQL, sending to a real SMTP server (aiosmtpd).

Run with DATABASE_URL=postgres://postgres@127.0.0.1:5432/pw_mailing
REDIS_URL=redis://127.0.0.1:6379/3; skipped otherwise.

Delivery is at-least-once with at most one duplicate per crash (DESIGN.md): the one
row a killed worker was sending stays 'sending' until it is stale, and resuming sends
it again. Every other row is sent exactly once.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import close_old_connections, connection

from tests.fixtures_mailing import make_link_holders, wait_for
from wagtail_paidwebinar.mailing import (
    create_mailing,
    pause_mailing,
    resume_mailing,
    start_mailing,
)
from wagtail_paidwebinar.models import (
    Mailing,
    MailingRecipient,
    MailingStatus,
    RecipientStatus,
)

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.redis,
    pytest.mark.postgres,
]


def status_of(mailing) -> str:
    return Mailing.objects.values_list("status", flat=True).get(pk=mailing.pk)


def sent_count(mailing) -> int:
    return MailingRecipient.objects.filter(
        mailing=mailing, status=RecipientStatus.SENT
    ).count()


def wait_done(mailing, worker, timeout=120):
    wait_for(
        lambda: status_of(mailing) == MailingStatus.DONE,
        timeout=timeout,
        message=f"mailing not done: {mailing.progress()}\n{worker.log()}",
    )


def test_three_recipients_through_a_worker(webinar, rq_worker, smtp_server):
    links = make_link_holders(webinar, 3)
    mailing = create_mailing(webinar, subject="Hi {{ name }}", body_html="<p>x</p>")
    assert start_mailing(mailing) == 3
    worker = rq_worker()
    wait_done(mailing, worker)
    assert smtp_server.by_recipient() == {link.email: 1 for link in links}
    by_to = {m["To"].addresses[0].addr_spec: m for m in smtp_server.messages}
    for link in links:
        assert link.get_url() in by_to[link.email].get_body(("plain",)).get_content()


def in_flight_rows(mailing) -> set[str]:
    return set(
        MailingRecipient.objects.filter(
            mailing=mailing, status=RecipientStatus.SENDING
        ).values_list("email", flat=True)
    )


def assert_everyone_once_but_the_in_flight(smtp_server, mailing, links, in_flight):
    """Nobody missing, every message to its own recipient with their own link,
    and a second message only for a row that was 'sending' at the crash."""
    counts = smtp_server.by_recipient()
    assert set(counts) == {link.email for link in links}
    duplicates = {addr for addr, n in counts.items() if n > 1}
    assert duplicates <= in_flight, duplicates  # only rows in flight, if any
    assert all(n <= 2 for n in counts.values())
    assert mailing.progress()["sent"] == len(links)
    url_of = {link.email: link.get_url() for link in links}
    for message in smtp_server.messages:
        to = message["To"].addresses[0].addr_spec
        text = message.get_body(("plain",)).get_content()
        assert url_of[to] in text
        others = [url for email, url in url_of.items() if email != to]
        assert not any(url in text for url in others[:50])
    return duplicates


@pytest.mark.parametrize(
    ("connections", "pipelining"), [(1, False), (8, False), (8, True)]
)
def test_killed_worker_resumes_without_sending_twice(
    webinar, rq_worker, smtp_server, settings, connections, pipelining
):
    """At most one duplicate per connection per crash: SIGKILL in the middle of a
    500-recipient mailing leaves at most one row 'sending' per connection — also
    when each message's content goes out with the next message's envelope
    (a server offering PIPELINING)."""
    smtp_server.handler.pipelining = pipelining
    links = make_link_holders(webinar, 500)
    mailing = create_mailing(webinar, subject="Hi {{ name }}", body_html="<p>x</p>")
    assert start_mailing(mailing) == 500
    worker = rq_worker(
        PW_SEND_DELAY="0.01", PW_BATCH_SIZE="50", PW_SMTP_CONNECTIONS=connections
    )
    wait_for(lambda: sent_count(mailing) >= 120, timeout=120, message=worker.log())
    worker.kill()
    time.sleep(0.5)
    progress = mailing.progress()
    assert 120 <= progress["sent"] < 500, progress
    # At most the row each connection was sending at the crash is left 'sending'.
    assert progress["sending"] <= connections, progress
    in_flight = in_flight_rows(mailing)

    # After the stale limit, resume puts those rows back and re-queues every
    # pending row directly (the dead worker's scheduler lock does not matter).
    settings.WAGTAIL_PAIDWEBINAR_STALE_SENDING_SECONDS = 0
    assert resume_mailing(mailing) == 500 - progress["sent"], mailing.progress()
    worker = rq_worker(PW_BATCH_SIZE="50", PW_SMTP_CONNECTIONS=connections)
    wait_done(mailing, worker)

    duplicates = assert_everyone_once_but_the_in_flight(
        smtp_server, mailing, links, in_flight
    )
    assert len(duplicates) <= connections


def busy_workers(redis) -> set[str]:
    """Names of the RQ workers that have run or are running a job."""
    from rq import Worker

    return {
        worker.name
        for worker in Worker.all(connection=redis)
        if worker.successful_job_count or worker.get_current_job_id()
    }


def settled(mailing) -> bool:
    """The queue is empty and nothing was sent for a second."""
    import django_rq

    before = sent_count(mailing)
    time.sleep(1)
    queue = django_rq.get_queue("default")
    return queue.count == 0 and sent_count(mailing) == before


def test_two_workers_share_one_mailing_and_survive_a_crash(
    webinar, rq_worker, smtp_server, settings, real_queue
):
    """Two workers (as on two machines sharing PostgreSQL and Redis), 4
    connections each, drain one mailing together; one of them is killed midway.
    Everybody gets their own link, the duplicates are at most the rows the dead
    worker had in flight (one per connection)."""
    settings.WAGTAIL_PAIDWEBINAR_BATCH_SIZE = 20  # jobs for both workers
    links = make_link_holders(webinar, 400)
    mailing = create_mailing(webinar, subject="Hi {{ name }}", body_html="<p>x</p>")
    assert start_mailing(mailing) == 400
    knobs = {"PW_SEND_DELAY": "0.01", "PW_BATCH_SIZE": "20", "PW_SMTP_CONNECTIONS": 4}
    first = rq_worker(**knobs)
    second = rq_worker(**knobs)
    wait_for(
        lambda: sent_count(mailing) >= 100 and len(busy_workers(real_queue)) == 2,
        timeout=120,
        message=first.log(),
    )
    first.kill()
    time.sleep(0.5)
    progress = mailing.progress()
    assert progress["sending"] <= 4 + 4, progress
    # The survivor drains the queue: everything but the dead worker's job (its
    # rows stay pending, the one per connection in flight 'sending').
    wait_for(lambda: settled(mailing), timeout=180, message=second.log())
    in_flight = in_flight_rows(mailing)
    assert len(in_flight) <= 4, in_flight  # the dead worker's, one per connection
    settings.WAGTAIL_PAIDWEBINAR_STALE_SENDING_SECONDS = 0
    resume_mailing(mailing)
    wait_done(mailing, second)
    duplicates = assert_everyone_once_but_the_in_flight(
        smtp_server, mailing, links, in_flight
    )
    assert len(duplicates) <= 4


def test_smtp_down_then_back_delivers_everyone_once(webinar, rq_worker, smtp_server):
    links = make_link_holders(webinar, 40)
    mailing = create_mailing(webinar, subject="Hi", body_html="<p>x</p>")
    start_mailing(mailing)
    worker = rq_worker(
        PW_SEND_DELAY="0.05",
        PW_BATCH_SIZE="20",
        PW_RETRY_DELAYS="[1,1,1,2,2,2,3,3,3,3]",
    )
    # The server goes away in the middle of the first batch...
    wait_for(lambda: sent_count(mailing) >= 5, timeout=60, message=worker.log())
    smtp_server.stop()
    time.sleep(4)
    stalled = mailing.progress()
    assert stalled["sent"] < 40 and stalled["failed"] == 0, stalled
    assert status_of(mailing) == MailingStatus.SENDING
    # ...and comes back: the scheduled retries deliver the rest.
    smtp_server.start()
    wait_done(mailing, worker)
    assert smtp_server.by_recipient() == {link.email: 1 for link in links}
    assert mailing.progress()["sent"] == 40
    retried = MailingRecipient.objects.filter(mailing=mailing, attempts__gt=1)
    assert retried.exists()


def test_transient_4xx_for_one_address_is_retried(webinar, rq_worker, smtp_server):
    links = make_link_holders(webinar, 3)
    smtp_server.handler.codes[links[0].email] = "450 4.2.1 Mailbox busy, try later"
    mailing = create_mailing(webinar, subject="Hi", body_html="<p>x</p>")
    start_mailing(mailing)
    worker = rq_worker(PW_RETRY_DELAYS="[1,1,1,1,1,1,1,1]")
    wait_for(lambda: sent_count(mailing) == 2, timeout=60, message=worker.log())
    row = MailingRecipient.objects.get(mailing=mailing, email=links[0].email)
    assert row.status in (RecipientStatus.PENDING, RecipientStatus.SENDING)
    assert "450" in row.last_error or row.status == RecipientStatus.SENDING
    del smtp_server.handler.codes[links[0].email]
    wait_done(mailing, worker)
    assert smtp_server.by_recipient() == {link.email: 1 for link in links}


def test_permanent_5xx_fails_one_row_only(webinar, rq_worker, smtp_server):
    links = make_link_holders(webinar, 5)
    smtp_server.handler.codes[links[2].email] = "550 5.1.1 User unknown"
    mailing = create_mailing(webinar, subject="Hi", body_html="<p>x</p>")
    start_mailing(mailing)
    worker = rq_worker()
    wait_done(mailing, worker)
    progress = mailing.progress()
    assert progress["sent"] == 4 and progress["failed"] == 1
    assert MailingRecipient.objects.get(
        mailing=mailing, email=links[2].email
    ).status == (RecipientStatus.FAILED)


def test_pause_and_resume_with_a_worker(webinar, rq_worker, smtp_server):
    links = make_link_holders(webinar, 60)
    mailing = create_mailing(webinar, subject="Hi", body_html="<p>x</p>")
    start_mailing(mailing)
    worker = rq_worker(PW_SEND_DELAY="0.05", PW_BATCH_SIZE="20")
    wait_for(lambda: sent_count(mailing) >= 5, timeout=60, message=worker.log())
    assert pause_mailing(mailing)
    time.sleep(1.5)
    paused_at = sent_count(mailing)
    time.sleep(1.5)
    assert sent_count(mailing) == paused_at < 60
    assert mailing.progress()["sending"] == 0
    assert resume_mailing(mailing) == 60 - paused_at
    wait_done(mailing, worker)
    assert smtp_server.by_recipient() == {link.email: 1 for link in links}


def test_concurrent_double_start_is_one_mailing(webinar, rq_worker, smtp_server):
    links = make_link_holders(webinar, 30)
    mailing = create_mailing(webinar, subject="Hi", body_html="<p>x</p>")
    results: list[int] = []
    barrier = threading.Barrier(2)

    def click():
        try:
            barrier.wait()
            results.append(start_mailing(Mailing.objects.get(pk=mailing.pk)))
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 30]
    worker = rq_worker()
    wait_done(mailing, worker)
    assert smtp_server.by_recipient() == {link.email: 1 for link in links}
