"""The ledger's guarantees, each pinned by a test that fails when the rule is
dropped: a row is claimed by one sender only (``ledger.claim``'s ``status =
pending`` condition), and a link revoked between "Send" and delivery is not sent.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from tests.fixtures_mailing import make_link_holders
from wagtail_paidwebinar.actions import revoke_link
from wagtail_paidwebinar.mailing import (
    create_mailing,
    delivery,
    ledger,
    send_now,
    start_mailing,
)
from wagtail_paidwebinar.models import MailingRecipient, RecipientStatus

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def sending(smtp_settings, inline_queue):
    return smtp_settings


def started(webinar, count: int):
    """A started mailing whose ledger rows exist but no job was queued."""
    links = make_link_holders(webinar, count)
    mailing = create_mailing(webinar, subject="Hi {{ name }}", body_html="<p>x</p>")
    assert start_mailing(mailing, enqueue=False) == count
    return mailing, links


def status_of(row_id: int) -> str:
    return MailingRecipient.objects.values_list("status", flat=True).get(pk=row_id)


def test_a_row_is_claimed_once(webinar, sending):
    """A second claim of a row being sent, or already sent, loses."""
    mailing, _links = started(webinar, 2)
    mailing.status = "sending"
    mailing.save(update_fields=["status"])
    first, second = ledger.pending_ids(mailing.pk)
    assert ledger.claim(mailing.pk, first)
    assert status_of(first) == RecipientStatus.SENDING
    assert not ledger.claim(mailing.pk, first)  # being sent by someone else
    assert ledger.mark_sent_and_claim(mailing.pk, first, "<id@x>", second)
    assert status_of(first) == RecipientStatus.SENT
    assert not ledger.claim(mailing.pk, first)  # already sent
    assert not ledger.mark_sent_and_claim(mailing.pk, second, "<id2@x>", first)
    assert status_of(first) == RecipientStatus.SENT
    assert MailingRecipient.objects.get(pk=first).attempts == 1


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="two jobs at once need a database with concurrent writers",
)
@pytest.mark.parametrize("connections_per_job", [1, 4])
def test_two_jobs_over_the_same_rows_send_each_row_once(
    webinar, sending, smtp_server, settings, monkeypatch, connections_per_job
):
    """Two jobs (a retried job and the original, two workers...) both read the
    same 30 rows as pending before either claims one: the claims decide, and each
    recipient gets one message, over one connection per job or several."""
    settings.WAGTAIL_PAIDWEBINAR_SMTP_CONNECTIONS = connections_per_job
    mailing, links = started(webinar, 30)
    ids = ledger.pending_ids(mailing.pk)

    # Both jobs have read their rows (all pending) before either sends.
    both_read = threading.Barrier(2, timeout=60)
    read_rows = delivery._RowSource.__init__

    def read_then_wait(self, rows):
        read_rows(self, rows)
        assert len(rows) == 30
        both_read.wait()

    monkeypatch.setattr(delivery._RowSource, "__init__", read_then_wait)
    results: list[dict] = []
    errors: list[BaseException] = []

    def job():
        try:
            counts, retry = delivery.send_rows(mailing.pk, ids)
            assert retry == []
            results.append(counts)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=job) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert smtp_server.by_recipient() == {link.email: 1 for link in links}
    assert sum(counts["sent"] for counts in results) == 30
    assert sum(counts["skipped"] for counts in results) >= 1
    assert mailing.progress()["sent"] == 30


def test_link_revoked_between_send_and_delivery_is_not_sent(
    webinar, sending, smtp_server
):
    """The editor pressed Send; before the row's turn its link is revoked (a
    refund): that row fails with the reason, nobody else is affected."""
    mailing, links = started(webinar, 3)
    assert revoke_link(links[1])
    send_now(mailing)
    assert smtp_server.by_recipient() == {links[0].email: 1, links[2].email: 1}
    row = MailingRecipient.objects.get(mailing=mailing, email=links[1].email)
    assert row.status == RecipientStatus.FAILED
    assert "revoked" in row.last_error
    assert row.sent_at is None and not row.message_id
    progress = mailing.progress()
    assert progress["sent"] == 2 and progress["failed"] == 1
