"""The purchase webhook on PostgreSQL: 20 simultaneous deliveries of one order give
one link and one invitation; the invitation arrives through a real RQ worker and a
real SMTP server with exactly the link the webhook created.

Run with DATABASE_URL=postgres://... (and REDIS_URL=redis://... for the worker)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test import Client

from tests.fixtures_mailing import wait_for
from tests.fixtures_payments import post_signed, post_stripe, purchase_body
from tests.utils import make_webinar
from wagtail_paidwebinar.models import (
    DeliveryOutcome,
    Mailing,
    MailingRecipient,
    PersonalLink,
    RecipientStatus,
    WebhookDelivery,
)
from wagtail_paidwebinar.payments import record_refund

THREADS = 20

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks need PostgreSQL; set DATABASE_URL=postgres://... to run",
    ),
]


def race(body: bytes, n: int) -> list:
    """POST the same signed delivery from ``n`` threads released at once."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def one(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            response = post_signed(Client(), body)
            results[i] = (response.status_code, response.json())
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[i] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_twenty_simultaneous_deliveries_give_one_link_and_one_invitation(
    index, webhook_secret
):
    webinar = make_webinar(index, title="Race", slug="race")
    results = race(purchase_body(webinar), THREADS)
    assert all(isinstance(r, tuple) and r[0] == 200 for r in results), results
    link = PersonalLink.objects.get()
    assert {r[1]["link"] for r in results} == {str(link.pk)}
    assert sum(r[1]["created"] for r in results) == 1
    assert sorted(r[1]["invitation"] for r in results) == ["already_sent"] * (
        THREADS - 1
    ) + ["queued"]
    assert Mailing.objects.filter(invitation_link=link).count() == 1
    assert MailingRecipient.objects.filter(link=link).count() == 1
    assert WebhookDelivery.objects.count() == THREADS


def test_refund_racing_its_purchase_never_leaves_a_live_link(index, webhook_secret):
    webinar = make_webinar(index, title="Refund race", slug="refund-race")
    for round_ in range(5):
        reference = f"order-{round_}"
        purchase = purchase_body(
            webinar, reference=reference, email=f"r{round_}@example.org"
        )
        refund = purchase_body(webinar, reference=reference, event="refund")
        barrier = threading.Barrier(2)

        def post(body, barrier=barrier):
            try:
                barrier.wait(timeout=30)
                post_signed(Client(), body)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=post, args=(b,)) for b in (purchase, refund)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        live = PersonalLink.objects.live().filter(payment__reference=reference)
        assert not live.exists()


@pytest.mark.redis
def test_the_invitation_arrives_through_a_real_worker_and_smtp(
    index, webhook_secret, rq_worker, smtp_server, client
):
    webinar = make_webinar(index, title="Worker", slug="worker")
    others = [
        PersonalLink.objects.create(
            webinar=webinar,
            name=f"Earlier buyer {i}",
            email=f"earlier{i}@example.org",
            email_normalized=f"earlier{i}@example.org",
        )
        for i in range(3)
    ]
    response = post_signed(client, purchase_body(webinar, email="new@example.org"))
    assert response.json()["invitation"] == "queued"
    link = PersonalLink.objects.get(pk=response.json()["link"])
    worker = rq_worker()
    wait_for(
        lambda: MailingRecipient.objects.filter(
            link=link, status=RecipientStatus.SENT
        ).exists(),
        timeout=120,
        message=worker.log(),
    )
    # Nobody else got anything, the buyer got one message with their own link.
    assert smtp_server.by_recipient() == {"new@example.org": 1}
    text = smtp_server.messages[0].get_body(("plain",)).get_content()
    assert link.get_url() in text
    for other in others:
        assert other.get_url() not in text
    # The repeat delivery sends nothing more.
    again = post_signed(client, purchase_body(webinar, email="new@example.org"))
    assert again.json() == {
        "link": str(link.pk),
        "created": False,
        "invitation": "already_sent",
        "webinar_cancelled": False,
    }
    worker.stop()
    assert smtp_server.by_recipient() == {"new@example.org": 1}


def test_a_stripe_refund_committing_during_its_checkout_event_leaves_no_live_link(
    index, stripe_secret
):
    """The refund's transaction is held open (it has remembered the refund, not yet
    committed) while the Checkout event for the same payment intent arrives: the
    event must wait for it and then issue nothing."""
    pytest.importorskip("stripe")
    from tests.test_payments_stripe import session_completed

    webinar = make_webinar(index, title="Stripe race", slug="stripe-race")
    refund_open = threading.Event()
    errors: list = []

    def refund() -> None:
        try:
            with transaction.atomic():
                record_refund(payment_intent="pi_race", source="stripe")
                refund_open.set()
                time.sleep(1.5)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(repr(exc))
        finally:
            refund_open.set()
            connections.close_all()

    def checkout() -> None:
        try:
            refund_open.wait(timeout=30)
            event = session_completed(webinar.pk, intent="pi_race")
            errors.extend(
                [] if post_stripe(Client(), event).status_code == 200 else ["!"]
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=refund), threading.Thread(target=checkout)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert not PersonalLink.objects.live().filter(webinar=webinar).exists()
    assert WebhookDelivery.objects.get().outcome == DeliveryOutcome.REFUSED
