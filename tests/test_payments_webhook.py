"""The signed purchase webhook (issue 15): signatures, idempotency, refunds, bad
input, the delivery log; through HTTP as a shop calls it."""

from __future__ import annotations

import json
import time

import pytest
import time_machine
from django.urls import reverse

from tests.fixtures_payments import SECRET, post_signed, purchase_body
from tests.utils import make_webinar
from wagtail_paidwebinar.mailing import InvitationStatus
from wagtail_paidwebinar.models import (
    DeliveryOutcome,
    Mailing,
    MailingRecipient,
    PaymentRefund,
    PersonalLink,
    WebhookDelivery,
)
from wagtail_paidwebinar.payments import sign, verify_signature

pytestmark = pytest.mark.django_db


def state():
    """Everything a delivery may change (a 401/400 must leave it as it was)."""
    return (
        list(
            PersonalLink.objects.values_list("pk", "payment__reference", "revoked_at")
        ),
        Mailing.objects.count(),
        MailingRecipient.objects.count(),
        PaymentRefund.objects.count(),
    )


def test_signed_purchase_creates_the_link_and_queues_one_invitation(
    client, webinar, webhook_secret
):
    response = post_signed(client, purchase_body(webinar))
    assert response.status_code == 200
    data = response.json()
    link = PersonalLink.objects.get()
    assert data == {
        "link": str(link.pk),
        "created": True,
        "invitation": "queued",
        "webinar_cancelled": False,
    }
    assert (link.name, link.email, link.payment.reference) == (
        "Anna Nowak",
        "anna@example.org",
        "order-1001",
    )
    # The token and the URL never leave in the answer.
    assert link.token not in response.content.decode()
    assert response["Cache-Control"].startswith("max-age=0")
    row = MailingRecipient.objects.get()
    assert (row.link_id, row.email, row.mailing.invitation_link_id) == (
        link.pk,
        "anna@example.org",
        link.pk,
    )


def test_repeat_returns_the_same_link_and_sends_nothing(
    client, webinar, webhook_secret
):
    first = post_signed(client, purchase_body(webinar)).json()
    before = state()
    again = post_signed(client, purchase_body(webinar, name="Other Name"))
    assert again.status_code == 200
    assert again.json() == {
        "link": first["link"],
        "created": False,
        "invitation": "already_sent",
        "webinar_cancelled": False,
    }
    assert state() == before
    assert PersonalLink.objects.get().name == "Anna Nowak"


def test_replay_within_the_tolerance_is_harmless_and_after_it_refused(
    client, webinar, webhook_secret
):
    body = purchase_body(webinar)
    header = sign(body, SECRET)
    assert post_signed(client, body, header=header).json()["created"] is True
    before = state()
    replay = post_signed(client, body, header=header)
    assert replay.status_code == 200
    assert replay.json()["created"] is False
    assert state() == before
    with time_machine.travel(time.time() + 301, tick=False):
        late = post_signed(client, body, header=header)
    assert late.status_code == 401
    assert state() == before


@pytest.mark.parametrize(
    "case", ["unsigned", "tampered", "stale", "future", "wrong_secret", "garbage"]
)
def test_bad_signatures_are_refused_and_change_nothing(
    client, webinar, webhook_secret, case
):
    body = purchase_body(webinar)
    now = int(time.time())
    header = {
        "unsigned": "",
        "tampered": sign(body, SECRET),
        "stale": sign(body, SECRET, now - 301),
        "future": sign(body, SECRET, now + 301),
        "wrong_secret": sign(body, "not-the-secret"),
        "garbage": "t=abc,v1=",
    }[case]
    if case == "tampered":
        body = body.replace(b"order-1001", b"order-9999")
    before = state()
    response = post_signed(client, body, header=header)
    assert response.status_code == 401
    assert "error" in response.json()
    assert state() == before
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == DeliveryOutcome.BAD_SIGNATURE
    assert delivery.reference == ""  # an unverified body is never read


def test_rotating_secrets_accept_each(client, webinar, settings):
    settings.WAGTAIL_PAIDWEBINAR_PURCHASE_WEBHOOK_SECRET = ["new-secret", SECRET]
    assert post_signed(client, purchase_body(webinar)).status_code == 200
    body = purchase_body(webinar, reference="order-2", email="b@example.org")
    assert post_signed(client, body, secret="new-secret").status_code == 200
    assert PersonalLink.objects.count() == 2


def test_verify_signature_tolerance_is_five_minutes():
    body = b"{}"
    now = 1_800_000_000
    assert verify_signature(body, sign(body, "s", now - 300), ["s"], now=now)
    assert not verify_signature(body, sign(body, "s", now - 301), ["s"], now=now)
    assert not verify_signature(body, sign(body, "s", now), [], now=now)


def test_without_a_secret_the_endpoint_does_not_exist(client, webinar, settings):
    settings.WAGTAIL_PAIDWEBINAR_PURCHASE_WEBHOOK_SECRET = ""
    url = reverse("wagtail_paidwebinar:purchase_webhook")
    assert post_signed(client, purchase_body(webinar)).status_code == 404
    assert client.get(url).status_code == 404
    assert PersonalLink.objects.count() == 0


def test_post_only_and_no_csrf_token_needed(webinar, webhook_secret):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    url = reverse("wagtail_paidwebinar:purchase_webhook")
    response = client.get(url)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert post_signed(client, purchase_body(webinar)).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b"\xff\xfe", "body"),
        ({"event": "sale"}, "event"),
        ({"webinar": 999999}, "webinar"),
        ({"webinar": "no-such-slug"}, "webinar"),
        ({"webinar": None}, "webinar"),
        ({"email": ""}, "email"),
        ({"email": None}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@example.org\r\nBcc: x@example.org"}, "email"),
        ({"name": "Bob\u202e"}, "name"),
        ({"name": 12}, "name"),
        ({"reference": ""}, "reference"),
        ({"reference": 17}, "reference"),
        ({"reference": "x" * 256}, "reference"),
        ({"send_invitation": "yes"}, "send_invitation"),
    ],
)
def test_bad_payloads_are_400_naming_the_field_and_write_nothing(
    client, webinar, webhook_secret, body, field
):
    if isinstance(body, dict):
        body = purchase_body(webinar, **body)
    before = state()
    response = post_signed(client, body)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert state() == before
    assert WebhookDelivery.objects.get().outcome == DeliveryOutcome.BAD_REQUEST


def test_webinar_by_slug_and_name_defaults_to_the_address(
    client, webinar, webhook_secret
):
    response = post_signed(
        client, purchase_body(webinar, webinar=webinar.slug, name="")
    )
    assert response.status_code == 200
    assert PersonalLink.objects.get().name == "anna@example.org"


def test_without_send_invitation_nothing_is_queued(client, webinar, webhook_secret):
    response = post_signed(client, purchase_body(webinar, send_invitation=False))
    assert response.json()["invitation"] == "skipped"
    assert MailingRecipient.objects.count() == 0


def test_refund_after_purchase_revokes(client, webinar, webhook_secret):
    link_id = post_signed(client, purchase_body(webinar)).json()["link"]
    response = post_signed(client, purchase_body(webinar, event="refund"))
    assert response.json() == {"revoked": True, "remembered": False}
    link = PersonalLink.objects.get(pk=link_id)
    assert link.revoked_at is not None
    again = post_signed(client, purchase_body(webinar, event="refund"))
    assert again.json() == {"revoked": False, "remembered": False}
    # The purchase repeated after the refund does not bring the link back.
    repeat = post_signed(client, purchase_body(webinar)).json()
    assert repeat["created"] is False
    assert repeat["invitation"] == "skipped"
    assert PersonalLink.objects.get(pk=link_id).revoked_at is not None


def test_refund_before_purchase_is_remembered_and_the_purchase_creates_nothing(
    client, webinar, webhook_secret
):
    refund = post_signed(client, purchase_body(webinar, event="refund"))
    assert refund.json() == {"revoked": False, "remembered": True}
    purchase = post_signed(client, purchase_body(webinar))
    assert purchase.status_code == 200
    assert purchase.json() == {
        "link": None,
        "created": False,
        "invitation": "skipped",
        "webinar_cancelled": False,
    }
    assert PersonalLink.objects.count() == 0
    assert MailingRecipient.objects.count() == 0
    # The same reference on another webinar is another order.
    other = make_webinar(title="Other webinar")
    assert post_signed(client, purchase_body(other)).json()["created"] is True


def test_a_buyer_who_already_has_a_link_keeps_it(client, webinar, webhook_secret):
    pasted = PersonalLink.objects.create(
        webinar=webinar,
        name="Anna N.",
        email="Anna@Example.org",
        email_normalized="anna@example.org",
    )
    data = post_signed(client, purchase_body(webinar)).json()
    assert data == {
        "link": str(pasted.pk),
        "created": False,
        "invitation": "queued",
        "webinar_cancelled": False,
    }
    pasted.refresh_from_db()
    assert pasted.payment.reference == "order-1001"
    # A second order of the same buyer moves the link to it; refunding the first
    # order no longer takes the access away.
    second = purchase_body(webinar, reference="order-1002")
    assert post_signed(client, second).json()["invitation"] == "already_sent"
    refund_first = purchase_body(webinar, event="refund")
    assert post_signed(client, refund_first).json()["revoked"] is False
    pasted.refresh_from_db()
    assert pasted.revoked_at is None
    assert pasted.payment.reference == "order-1002"


def test_a_refunded_buyer_who_buys_again_gets_the_link_back_with_a_new_url(
    client, webinar, webhook_secret
):
    post_signed(client, purchase_body(webinar))
    post_signed(client, purchase_body(webinar, event="refund"))
    link = PersonalLink.objects.get()
    old_token = link.token
    data = post_signed(client, purchase_body(webinar, reference="order-2")).json()
    assert data == {
        "link": str(link.pk),
        "created": False,
        "invitation": "queued",
        "webinar_cancelled": False,
    }
    link.refresh_from_db()
    assert link.revoked_at is None
    assert link.token != old_token
    assert MailingRecipient.objects.filter(link=link).count() == 2


def test_every_delivery_is_recorded_without_secrets_or_body(
    client, webinar, webhook_secret
):
    post_signed(client, purchase_body(webinar))
    post_signed(client, purchase_body(webinar))
    post_signed(client, purchase_body(webinar, event="refund"))
    post_signed(client, purchase_body(webinar), header="t=1,v1=00")
    rows = list(
        WebhookDelivery.objects.order_by("pk").values_list(
            "event", "reference", "status_code", "outcome", "invitation"
        )
    )
    assert rows == [
        ("purchase", "order-1001", 200, "created", "queued"),
        ("purchase", "order-1001", 200, "existing", "already_sent"),
        ("refund", "order-1001", 200, "revoked", ""),
        ("", "", 401, "bad_signature", ""),
    ]
    stored = json.dumps(list(WebhookDelivery.objects.values()), default=str)
    assert SECRET not in stored
    assert "anna@example.org" not in stored
    assert PersonalLink.objects.get().token not in stored


def test_the_invitation_status_is_a_plain_string():
    assert json.dumps({"i": InvitationStatus.QUEUED}) == '{"i": "queued"}'


@pytest.mark.usefixtures("clear_gate_cache")
def test_a_flood_of_bad_signatures_records_only_the_hourly_ceiling(
    client, webinar, webhook_secret, settings
):
    settings.WAGTAIL_PAIDWEBINAR_WEBHOOK_LOG_UNVERIFIED_PER_HOUR = 3
    body = purchase_body(webinar)
    statuses = [
        post_signed(client, body, header="t=1,v1=00").status_code for _ in range(6)
    ]
    assert statuses == [401] * 6
    assert WebhookDelivery.objects.count() == 3
    # A verified delivery is always recorded.
    assert post_signed(client, body).status_code == 200
    assert WebhookDelivery.objects.filter(outcome="created").count() == 1
    assert WebhookDelivery.objects.count() == 4


def test_the_delivery_log_keeps_its_days(client, webinar, webhook_secret, settings):
    settings.WAGTAIL_PAIDWEBINAR_WEBHOOK_LOG_DAYS = 30
    with time_machine.travel("2026-01-01 12:00Z", tick=False):
        post_signed(client, purchase_body(webinar, reference="old"))
    with time_machine.travel("2026-01-30 12:00Z", tick=False):
        post_signed(client, purchase_body(webinar, reference="recent"))
    with time_machine.travel("2026-02-05 12:00Z", tick=False):
        post_signed(client, purchase_body(webinar, reference="new"))
    assert sorted(WebhookDelivery.objects.values_list("reference", flat=True)) == [
        "new",
        "recent",
    ]
