"""A site that sends through an e-mail service with django-anymail gets the same
invitations and the same ledger guarantees as one on SMTP (anymail's test
backend stands in for the service)."""

from __future__ import annotations

import icalendar
import pytest
from anymail.exceptions import AnymailAPIError
from django.core import mail
from wagtail.models import Site

from tests.fixtures_mailing import make_link_holders
from tests.utils import use_mailer
from wagtail_paidwebinar.mailing import create_mailing, start_mailing
from wagtail_paidwebinar.models import (
    MailingRecipient,
    MailingSettings,
    MailingStatus,
    RecipientStatus,
    Subscriber,
    SubscriberList,
)

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def anymail(settings, inline_queue):
    use_mailer(settings, "anymail.backends.test.EmailBackend")
    ms = MailingSettings.for_site(Site.objects.get(is_default_site=True))
    ms.from_name = "Akademia Żółw"
    ms.from_email = "webinars@example.com"
    ms.reply_to = "help@example.com"
    ms.signature = "<p>Best regards, <b>the organisers</b></p>"
    ms.save()
    mail.outbox = []
    return settings


def by_address(messages) -> dict:
    return {m.anymail_test_params["to"][0].addr_spec: m for m in messages}


def test_same_invitation_through_an_e_mail_service(webinar, anymail):
    webinar.room_password = "kawa123"
    webinar.save()
    links = make_link_holders(webinar, 3, names=["Anna", "Żaneta Ćwik", "O'Brien"])
    members = SubscriberList.objects.create(name="Newsletter")
    subscriber = Subscriber.objects.create(name="Sub", email="sub@example.org")
    subscriber.lists.add(members)
    mailing = create_mailing(
        webinar,
        subject="Hi {{ name }}",
        body_html="<p>Welcome {{ name }}</p>",
        audience=["link_holders", members],
    )
    assert start_mailing(mailing) == 4
    mailing.refresh_from_db()
    assert mailing.status == MailingStatus.DONE
    assert len(mail.outbox) == 4

    sent = by_address(mail.outbox)
    rows = {r.email: r for r in MailingRecipient.objects.filter(mailing=mailing)}
    for link in links:
        params = sent[link.email].anymail_test_params
        url = link.get_url()
        assert params["to"][0].display_name == link.name
        assert params["subject"] == f"Hi {link.name}"
        assert params["from"].addr_spec == "webinars@example.com"
        assert params["from"].display_name == "Akademia Żółw"
        assert [a.addr_spec for a in params["reply_to"]] == ["help@example.com"]
        assert url in params["text_body"] and "kawa123" in params["text_body"]
        assert url.replace("&", "&amp;") in params["html_body"]
        assert "kawa123" in params["html_body"]
        assert "the organisers" in params["html_body"]
        assert "the organisers" in params["text_body"]
        # Nobody else's link.
        for other in links:
            if other != link:
                assert other.get_url() not in params["text_body"]
        (calendar,) = params["attachments"]
        assert calendar.name == "invitation.ics"
        assert calendar.mimetype.startswith("text/calendar")
        cal = icalendar.Calendar.from_ical(calendar.content)
        event = next(iter(cal.walk("VEVENT")))
        assert str(event["url"]) == url
        # Our Message-ID, as recorded in the ledger; no List-Unsubscribe for a
        # link holder.
        headers = params["extra_headers"]
        assert headers["Message-ID"] == rows[link.email].message_id
        assert "List-Unsubscribe" not in headers
        assert rows[link.email].status == RecipientStatus.SENT

    # The list member: a personal link issued on start, and RFC 8058 one-click.
    params = sent["sub@example.org"].anymail_test_params
    headers = params["extra_headers"]
    assert headers["List-Unsubscribe"].startswith("<https://")
    assert "/unsubscribe/" in headers["List-Unsubscribe"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    row = rows["sub@example.org"]
    assert row.link.get_url() in params["text_body"]

    # Backends that serialise the message get the very MIME message the SMTP
    # path sends.
    mime = mail.outbox[0].message()
    assert mime["Message-ID"] == mail.outbox[0].extra_headers["Message-ID"]
    assert not mime.defects


class _Refusing:
    """An e-mail service that refuses some addresses: ``codes[address]`` is the
    HTTP status of its answer."""

    def __init__(self, codes: dict[str, int]) -> None:
        self.codes = codes

    def __call__(self, message):
        address = message.to[0].rpartition("<")[2].rstrip(">")
        if address in self.codes:
            message.anymail_test_response = AnymailAPIError(
                "refused", status_code=self.codes[address]
            )


def test_service_errors_follow_the_ledger_rules(webinar, anymail, monkeypatch):
    """A 4xx answer for one address fails that row only; a 5xx (the service is
    down) stops the connection: that row and the one after it stay pending for a
    retry; nothing is sent twice."""
    from wagtail_paidwebinar.mailing import delivery

    anymail.WAGTAIL_PAIDWEBINAR_SMTP_CONNECTIONS = 1

    links = make_link_holders(webinar, 4)
    refuse = _Refusing({links[1].email: 400, links[2].email: 503})
    build = delivery._prepare

    def prepare(*args):
        prepared = build(*args)
        if prepared.message is not None:
            refuse(prepared.message)
        return prepared

    monkeypatch.setattr(delivery, "_prepare", prepare)
    mailing = create_mailing(webinar, subject="Hi", body_html="<p>x</p>")
    start_mailing(mailing)
    status = dict(
        MailingRecipient.objects.filter(mailing=mailing).values_list("email", "status")
    )
    assert status[links[0].email] == RecipientStatus.SENT
    assert status[links[1].email] == RecipientStatus.FAILED
    assert status[links[2].email] == RecipientStatus.PENDING
    # The service being down stops the connection: the row after it waits too.
    assert status[links[3].email] == RecipientStatus.PENDING
    assert "400" in MailingRecipient.objects.get(email=links[1].email).last_error
    assert "503" in MailingRecipient.objects.get(email=links[2].email).last_error
    sent = [m.anymail_test_params["to"][0].addr_spec for m in mail.outbox]
    # The refused ones were handed to the service (and refused), once each.
    assert sorted(sent) == sorted(link.email for link in links[:3])


def _calendar_method(attachment) -> str | None:
    """The ``method`` parameter of the Content-Type an e-mail service gets."""
    from email.message import Message

    header = Message()
    header["Content-Type"] = attachment.content_type
    return header.get_param("method")


def test_the_calendar_attachment_names_its_method_for_the_service(webinar, anymail):
    from django.test import TestCase

    from wagtail_paidwebinar.mailing import schedule

    (link,) = make_link_holders(webinar, 1, names=["Anna"])
    start_mailing(create_mailing(webinar, subject="Hi", body_html="<p>Hi</p>"))
    with TestCase.captureOnCommitCallbacks(execute=True):
        schedule.cancel_webinar(webinar)
    invitation, cancellation = (m.anymail_test_params for m in mail.outbox)
    for params, method in ((invitation, "PUBLISH"), (cancellation, "CANCEL")):
        (calendar,) = params["attachments"]
        assert calendar.name == "invitation.ics"
        assert calendar.mimetype == "text/calendar"
        assert _calendar_method(calendar) == method
        cal = icalendar.Calendar.from_ical(calendar.content)
        assert cal["METHOD"] == method
    # The cancellation's calendar has no personal link for the service either.
    assert link.get_url() not in cancellation["attachments"][0].content
