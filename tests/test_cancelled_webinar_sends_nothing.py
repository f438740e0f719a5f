"""A cancelled webinar sends no way in: a purchase is recorded (payment and link)
and answered with an explicit ``"invitation": "cancelled"``, the lost-link form
and move-to-device e-mail nothing, and the organiser's re-issue says why."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from tests.fixtures_gate import UA, claim, link_path, make_link
from tests.fixtures_payments import post_signed, post_stripe, purchase_body
from tests.test_payments_stripe import session_completed
from tests.test_selfservice_lostlink import ask
from tests.utils import admin_url
from wagtail_paidwebinar.mailing import schedule
from wagtail_paidwebinar.models import (
    DeviceMove,
    LinkPayment,
    Mailing,
    PersonalLink,
    WebhookDelivery,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("clear_gate_cache", "invitations_queue"),
]


def cancel(webinar, capture) -> None:
    with capture(execute=True):
        schedule.cancel_webinar(webinar)
    mail.outbox.clear()


def test_purchase_for_a_cancelled_webinar_is_recorded_but_sends_nothing(
    client, webinar, webhook_secret, django_capture_on_commit_callbacks
):
    cancel(webinar, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed(client, purchase_body(webinar))
    assert response.status_code == 200
    link = PersonalLink.objects.get(email_normalized="anna@example.org")
    assert response.json() == {
        "link": str(link.pk),
        "created": True,
        "invitation": "cancelled",
        "webinar_cancelled": True,
    }
    # The money was taken: the payment and the link are kept.
    assert LinkPayment.objects.get(link=link).reference == "order-1001"
    assert link.is_live()
    assert not mail.outbox
    assert not Mailing.objects.filter(invitation_link=link).exists()
    delivery = WebhookDelivery.objects.get(reference="order-1001")
    assert delivery.invitation == "cancelled"
    # A retry answers the same and still sends nothing.
    with django_capture_on_commit_callbacks(execute=True):
        again = post_signed(client, purchase_body(webinar))
    assert again.json()["invitation"] == "cancelled"
    assert again.json()["created"] is False
    assert not mail.outbox


def test_stripe_checkout_for_a_cancelled_webinar_says_cancelled(
    client, webinar, stripe_secret, django_capture_on_commit_callbacks
):
    pytest.importorskip("stripe")
    cancel(webinar, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_stripe(client, session_completed(webinar.pk))
    assert response.status_code == 200
    body = response.json()
    assert body["invitation"] == "cancelled"
    assert body["webinar_cancelled"] is True
    assert PersonalLink.objects.get(pk=body["link"]).payment.reference == "cs_test_a1"
    assert not mail.outbox


def test_lost_link_form_sends_nothing_for_a_cancelled_webinar(
    room_webinar, django_capture_on_commit_callbacks
):
    make_link(
        room_webinar,
        "Anna Nowak",
        email="anna@example.org",
        email_normalized="anna@example.org",
    )
    cancel(room_webinar, django_capture_on_commit_callbacks)
    response = ask(
        Client(enforce_csrf_checks=True, HTTP_USER_AGENT=UA),
        room_webinar,
        "anna@example.org",
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 200
    assert not mail.outbox
    assert not Mailing.objects.filter(invitation_link__isnull=False).exists()


def test_move_to_device_sends_no_code_for_a_cancelled_webinar(
    room_webinar, django_capture_on_commit_callbacks
):
    holder = make_link(
        room_webinar,
        "Anna Nowak",
        email="anna@example.org",
        email_normalized="anna@example.org",
    )
    old = Client(HTTP_USER_AGENT=f"{UA} old")
    assert claim(old, holder).status_code == 302
    new = Client(HTTP_USER_AGENT=f"{UA} new")
    assert new.get(link_path(holder)).status_code == 403  # in use: offers a move

    # A code asked for before the cancel whose job runs after it: not sent.
    with django_capture_on_commit_callbacks(execute=False) as pending:
        asked = new.post(link_path(holder), {"pw_action": "move_request"})
    assert asked.status_code == 200
    assert pending
    cancel(room_webinar, django_capture_on_commit_callbacks)
    for callback in pending:
        callback()
    assert not mail.outbox

    # After the cancel the in-use page is gone: asking again writes and sends
    # nothing.
    requests = DeviceMove.objects.count()
    refused = new.post(link_path(holder), {"pw_action": "move_request"})
    assert refused.status_code == 410
    assert DeviceMove.objects.count() == requests
    assert not mail.outbox


def test_reissue_says_the_webinar_is_cancelled(
    webinar, admin_client, django_capture_on_commit_callbacks
):
    link = PersonalLink.objects.create(
        webinar=webinar,
        name="Anna",
        email="anna@example.org",
        email_normalized="anna@example.org",
    )
    cancel(webinar, django_capture_on_commit_callbacks)
    url = admin_url(PersonalLink, "reissue", link.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"send_invitation": "on"}, follow=True)
    assert response.status_code == 200
    assert "the webinar is cancelled" in response.content.decode()
    assert not mail.outbox


def holder(webinar, name: str, email: str) -> PersonalLink:
    """A link holder with an address, as the mailings' audience counts them."""
    return make_link(webinar, name=name, email=email, email_normalized=email)


def test_send_refuses_a_mailing_of_a_cancelled_webinar(
    admin_client, webinar, django_capture_on_commit_callbacks
):
    """The organiser presses Send on a message drafted for a webinar cancelled
    since: it stays a draft, nothing is sent, and the page says why."""
    from wagtail_paidwebinar.mailing import create_mailing
    from wagtail_paidwebinar.models import MailingStatus

    holder(webinar, "Anna Nowak", "anna@example.org")
    mailing = create_mailing(webinar, subject="See you", body_html="<p>{{ link }}</p>")
    cancel(webinar, django_capture_on_commit_callbacks)
    url = admin_url("mailing", "send", mailing.pk)
    for method in (admin_client.get, admin_client.post):
        with django_capture_on_commit_callbacks(execute=True):
            response = method(url, follow=True)
        assert response.status_code == 200
        assert "This webinar is cancelled, so this mailing cannot be sent" in (
            response.content.decode()
        )
    mailing.refresh_from_db()
    assert mailing.status == MailingStatus.DRAFT
    assert not mail.outbox


def test_a_mailing_started_before_the_cancellation_sends_no_link(
    webinar, django_capture_on_commit_callbacks
):
    """A message already started when the webinar is cancelled: the rows not yet
    sent fail with the reason, and only the cancellation reaches the people."""
    from wagtail_paidwebinar.mailing import create_mailing, send_now, start_mailing
    from wagtail_paidwebinar.models import MailingRecipient, RecipientStatus

    holder(webinar, "Anna Nowak", "anna@example.org")
    holder(webinar, "Jan Kowalski", "jan@example.org")
    mailing = create_mailing(webinar, subject="See you", body_html="<p>{{ link }}</p>")
    assert start_mailing(mailing, enqueue=False) == 2
    cancel(webinar, django_capture_on_commit_callbacks)
    send_now(mailing)
    assert not mail.outbox
    rows = MailingRecipient.objects.filter(mailing=mailing)
    assert {row.status for row in rows} == {RecipientStatus.FAILED}
    assert {row.last_error for row in rows} == {"The webinar was cancelled; not sent."}


def test_a_cancellation_left_unsent_by_a_reopen_is_not_sent(
    webinar, django_capture_on_commit_callbacks
):
    """Reopened while its cancellation e-mails were still queued: they are not
    sent (the webinar takes place after all)."""
    from wagtail_paidwebinar.mailing import send_now
    from wagtail_paidwebinar.models import MailingRecipient, RecipientStatus

    holder(webinar, "Anna Nowak", "anna@example.org")
    with django_capture_on_commit_callbacks(execute=False):  # the jobs never run
        cancellation = schedule.cancel_webinar(webinar)
    assert cancellation is not None
    with django_capture_on_commit_callbacks(execute=True):
        schedule.reopen_webinar(webinar)
    mail.outbox.clear()
    send_now(cancellation)
    assert not mail.outbox
    row = MailingRecipient.objects.get(mailing=cancellation)
    assert row.status == RecipientStatus.FAILED
    assert row.last_error == (
        "The webinar was reopened after this cancellation; not sent."
    )
