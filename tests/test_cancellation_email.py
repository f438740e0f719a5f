"""A cancellation admits nobody: the e-mail a participant receives has no
personal link, token or room password in any part (text, HTML, .ics), even when
the organiser's message or the body asks for {{ link }}; an invitation still
has them all."""

from __future__ import annotations

import email
from email import policy

import icalendar
import pytest
from django.core import mail
from django.test import TestCase
from django.utils import timezone

from wagtail_paidwebinar.actions import generate_links
from wagtail_paidwebinar.mailing import create_mailing, schedule, start_mailing
from wagtail_paidwebinar.mailing.api import LINK_HOLDERS
from wagtail_paidwebinar.models import MailingKind

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("invitations_queue")]


def received(message) -> dict[str, str]:
    """The message as the recipient's mail client parses it: its parts by type."""
    parsed = email.message_from_bytes(
        message.message().as_bytes(), policy=policy.default
    )
    parts = {}
    for part in parsed.walk():
        if not part.is_multipart():
            parts[part.get_content_type()] = part.get_content()
    return parts


def test_a_cancellation_carries_no_link_or_password_anywhere(webinar):
    (anna,) = generate_links(webinar, "Anna Nowak <anna@example.com>").created
    with TestCase.captureOnCommitCallbacks(execute=True):
        start_mailing(create_mailing(webinar, subject="Hi", body_html="<p>Hi</p>"))
    invitation = received(mail.outbox[0])
    url = anna.get_url()
    # The invitation has the link in all three parts and the password in two.
    assert url in invitation["text/plain"]
    assert url.replace("&", "&amp;") in invitation["text/html"]
    assert "kawa123" in invitation["text/plain"]
    event = next(
        iter(icalendar.Calendar.from_ical(invitation["text/calendar"]).walk("VEVENT"))
    )
    assert str(event["URL"]) == url
    mail.outbox.clear()

    with TestCase.captureOnCommitCallbacks(execute=True):
        schedule.cancel_webinar(webinar, message="Refunds within a week.")
    (message,) = mail.outbox
    parts = received(message)
    assert set(parts) == {"text/plain", "text/html", "text/calendar"}
    for content_type, text in parts.items():
        for secret in (url, url.replace("&", "&amp;"), "kawa123"):
            assert secret not in text, (content_type, secret)
    event = next(
        iter(icalendar.Calendar.from_ical(parts["text/calendar"]).walk("VEVENT"))
    )
    assert "URL" not in event
    assert "DESCRIPTION" not in event
    assert event["STATUS"] == "CANCELLED"
    assert "Refunds within a week." in parts["text/plain"]


def test_a_link_field_in_a_cancellation_stays_empty(webinar):
    (anna,) = generate_links(webinar, "Anna Nowak <anna@example.com>").created
    # Cancelled, as cancel_webinar() leaves it (a cancellation of a webinar that
    # is not cancelled is not sent).
    type(webinar).objects.filter(pk=webinar.pk).update(cancelled_at=timezone.now())
    mailing = create_mailing(
        webinar,
        subject="Cancelled",
        body_html="<p>Your old link {{ link }} and password {{ password }}</p>",
        audience=LINK_HOLDERS,
        kind=MailingKind.CANCELLATION,
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        start_mailing(mailing)
    parts = received(mail.outbox[0])
    for text in parts.values():
        assert anna.get_url() not in text
        assert "kawa123" not in text
