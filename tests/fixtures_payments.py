"""Fixtures of the payment webhooks: a configured secret and signed POSTs."""

from __future__ import annotations

import json
import time

import pytest
from django.urls import reverse

from wagtail_paidwebinar.payments import sign

SECRET = "shop-secret-2f9c"
STRIPE_SECRET = "whsec_test_4b7d0e"


def purchase_body(page, /, **fields) -> bytes:
    """A purchase of ``page`` as JSON bytes; ``fields`` override or add keys."""
    payload = {
        "event": "purchase",
        "webinar": page.pk,
        "name": "Anna Nowak",
        "email": "anna@example.org",
        "reference": "order-1001",
        "send_invitation": True,
        **fields,
    }
    return json.dumps(payload).encode()


def post_signed(client, body: bytes, *, secret=SECRET, timestamp=None, header=None):
    """POST ``body`` to the purchase webhook signed as a shop would."""
    signature = header if header is not None else sign(body, secret, timestamp)
    headers = {"Paidwebinar-Signature": signature} if signature else {}
    return client.post(
        reverse("wagtail_paidwebinar:purchase_webhook"),
        data=body,
        content_type="application/json",
        headers=headers,
    )


def post_stripe(client, event: dict, *, secret=STRIPE_SECRET, timestamp=None):
    """POST a Stripe event signed with the stripe package's own helper."""
    import stripe

    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(
        payload, secret, timestamp=timestamp or int(time.time())
    )
    return client.post(
        reverse("wagtail_paidwebinar:stripe_webhook"),
        data=payload.encode(),
        content_type="application/json",
        headers={"Stripe-Signature": header},
    )


@pytest.fixture
def webhook_secret(settings):
    settings.WAGTAIL_PAIDWEBINAR_PURCHASE_WEBHOOK_SECRET = SECRET
    return SECRET


@pytest.fixture
def stripe_secret(settings):
    settings.WAGTAIL_PAIDWEBINAR_STRIPE_WEBHOOK_SECRET = STRIPE_SECRET
    return STRIPE_SECRET
