"""The Stripe webhook: events built and signed offline with the stripe package's
own helper (``stripe.WebhookSignature.generate_signature_header``)."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from tests.fixtures_payments import STRIPE_SECRET, post_stripe
from wagtail_paidwebinar.models import (
    DeliveryOutcome,
    MailingRecipient,
    PersonalLink,
    WebhookDelivery,
)

pytest.importorskip("stripe")
pytestmark = pytest.mark.django_db


def session_completed(webinar_ref, *, session="cs_test_a1", intent="pi_3Pa", **extra):
    session_obj = {
        "id": session,
        "object": "checkout.session",
        "payment_intent": intent,
        "payment_status": "paid",
        "customer_details": {"name": "Ola Kowalska", "email": "ola@example.org"},
        "metadata": {"webinar": str(webinar_ref)},
        **extra,
    }
    return {
        "id": "evt_1",
        "object": "event",
        "type": "checkout.session.completed",
        "data": {"object": session_obj},
    }


def charge_refunded(intent="pi_3Pa", *, refunded=True):
    return {
        "id": "evt_2",
        "object": "event",
        "type": "charge.refunded",
        "data": {
            "object": {
                "id": "ch_1",
                "object": "charge",
                "payment_intent": intent,
                "refunded": refunded,
            }
        },
    }


def test_checkout_session_issues_the_link_and_queues_the_invitation(
    client, webinar, stripe_secret
):
    response = post_stripe(client, session_completed(webinar.slug))
    assert response.status_code == 200
    link = PersonalLink.objects.get()
    assert response.json() == {
        "link": str(link.pk),
        "created": True,
        "invitation": "queued",
        "webinar_cancelled": False,
    }
    assert (link.name, link.email) == ("Ola Kowalska", "ola@example.org")
    assert (link.payment.reference, link.payment.payment_intent) == (
        "cs_test_a1",
        "pi_3Pa",
    )
    assert MailingRecipient.objects.get().link == link
    # Stripe retries: the same event again changes nothing.
    again = post_stripe(client, session_completed(webinar.pk))
    assert again.json()["created"] is False
    assert again.json()["invitation"] == "already_sent"
    assert MailingRecipient.objects.count() == 1


def test_charge_refunded_revokes_the_link_of_that_payment_intent(
    client, webinar, stripe_secret
):
    post_stripe(client, session_completed(webinar.pk))
    partial = post_stripe(client, charge_refunded(refunded=False))
    assert partial.json() == {"ignored": True}
    assert PersonalLink.objects.get().revoked_at is None
    response = post_stripe(client, charge_refunded())
    assert response.json() == {"revoked": True, "remembered": False}
    assert PersonalLink.objects.get().revoked_at is not None


def test_refund_before_the_session_event_issues_nothing(client, webinar, stripe_secret):
    early = post_stripe(client, charge_refunded())
    assert early.json() == {"revoked": False, "remembered": True}
    late = post_stripe(client, session_completed(webinar.pk))
    assert late.json() == {
        "link": None,
        "created": False,
        "invitation": "skipped",
        "webinar_cancelled": False,
    }
    assert PersonalLink.objects.count() == 0


def test_unpaid_and_foreign_sessions_are_ignored(client, webinar, stripe_secret):
    unpaid = session_completed(webinar.pk)
    unpaid["data"]["object"]["payment_status"] = "unpaid"
    assert post_stripe(client, unpaid).json() == {"ignored": True}
    foreign = session_completed(webinar.pk, metadata={})
    assert post_stripe(client, foreign).json() == {"ignored": True}
    other_type = {"id": "e", "type": "invoice.paid", "data": {"object": {}}}
    assert post_stripe(client, other_type).json() == {"ignored": True}
    assert PersonalLink.objects.count() == 0
    # Delayed payment methods complete with this event instead.
    delayed = session_completed(webinar.pk)
    delayed["type"] = "checkout.session.async_payment_succeeded"
    assert post_stripe(client, delayed).json()["created"] is True


def test_unknown_webinar_and_missing_email_are_400(client, webinar, stripe_secret):
    unknown = post_stripe(client, session_completed("no-such-webinar"))
    assert unknown.status_code == 400
    assert unknown.json()["field"] == "metadata.webinar"
    no_email = session_completed(webinar.pk, customer_details={"name": "X"})
    response = post_stripe(client, no_email)
    assert response.status_code == 400
    assert response.json()["field"] == "customer_details.email"
    assert PersonalLink.objects.count() == 0


@pytest.mark.parametrize("case", ["wrong_secret", "stale", "unsigned"])
def test_bad_stripe_signatures_are_401(client, webinar, stripe_secret, case):
    if case == "unsigned":
        response = client.post(
            reverse("wagtail_paidwebinar:stripe_webhook"),
            data=b"{}",
            content_type="application/json",
        )
    else:
        response = post_stripe(
            client,
            session_completed(webinar.pk),
            secret="whsec_other" if case == "wrong_secret" else STRIPE_SECRET,
            timestamp=int(time.time()) - 301 if case == "stale" else None,
        )
    assert response.status_code == 401
    assert PersonalLink.objects.count() == 0
    assert WebhookDelivery.objects.get().outcome == DeliveryOutcome.BAD_SIGNATURE


def test_without_a_stripe_secret_the_endpoint_does_not_exist(client, webinar):
    assert post_stripe(client, session_completed(webinar.pk)).status_code == 404
