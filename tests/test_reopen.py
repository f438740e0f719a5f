"""Reopening a cancelled webinar: an explicit admin action (confirmation page,
POST + CSRF, the permissions of "cancel"), audit-logged; the room opens again,
the reminders are planned again and, when asked, the link holders get their link
with a METHOD:PUBLISH .ics (same UID, higher SEQUENCE, STATUS:CONFIRMED) that
puts the event back in their calendar."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from wagtail.models import PageLogEntry

from tests.test_schedule_changes import (
    SEND,
    calendar_of,
    committed,
    event_of,
    invite_everyone,
)
from tests.utils import make_user
from wagtail_paidwebinar.actions import generate_links
from wagtail_paidwebinar.mailing import schedule
from wagtail_paidwebinar.models import (
    Mailing,
    MailingKind,
    Reminder,
    ReminderStatus,
    WebinarPage,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("invitations_queue")]


@pytest.fixture
def holders(webinar):
    result = generate_links(
        webinar, "Anna Nowak <anna@example.com>\nJan Kowalski <jan@example.com>"
    )
    return result.created


def reopen_url(webinar) -> str:
    return reverse("wagtail_paidwebinar_reopen_webinar", args=[webinar.pk])


def cancelled(webinar):
    with committed():
        schedule.cancel_webinar(webinar)
    return WebinarPage.objects.get(pk=webinar.pk)


def planned(webinar) -> int:
    return Reminder.objects.filter(
        webinar=webinar, status=ReminderStatus.PLANNED
    ).count()


def test_reopen_and_notify_puts_the_event_back(webinar, holders, admin_client, client):
    invite_everyone(webinar)
    first, _method = calendar_of(mail.outbox[0])
    cancelled(webinar)
    cancel_cal, _method = calendar_of(mail.outbox[-1])
    assert event_of(cancel_cal)["STATUS"] == "CANCELLED"
    assert planned(webinar) == 0
    mail.outbox.clear()

    page = admin_client.get(reopen_url(webinar))
    assert page.status_code == 200
    html = page.content.decode()
    assert "2 participants" in html
    assert 'name="notify"' in html and "checked" in html
    assert WebinarPage.objects.get(pk=webinar.pk).is_cancelled  # GET: nothing

    with committed():
        response = admin_client.post(reopen_url(webinar), {"notify": "on"})
    assert response.status_code == 302
    assert not WebinarPage.objects.get(pk=webinar.pk).is_cancelled
    assert planned(webinar) == 2  # 24 h and 1 h before, as on publish

    assert sorted(m.to[0] for m in mail.outbox) == [
        "Anna Nowak <anna@example.com>",
        "Jan Kowalski <jan@example.com>",
    ]
    message = next(m for m in mail.outbox if "anna@" in m.to[0])
    anna = next(h for h in holders if h.email == "anna@example.com")
    assert anna.get_url() in message.body  # the way in again
    cal, method = calendar_of(message)
    assert cal["METHOD"] == "PUBLISH" == method
    event = event_of(cal)
    assert event["UID"] == event_of(first)["UID"] == event_of(cancel_cal)["UID"]
    assert event["SEQUENCE"] > event_of(cancel_cal)["SEQUENCE"]
    assert event["STATUS"] == "CONFIRMED"
    assert Mailing.objects.filter(kind=MailingKind.REOPENING).count() == 1

    entry = PageLogEntry.objects.get(action=schedule.ACTION_REOPEN, page=webinar)
    assert entry.data["notified"] is True

    # The room admits the link again.
    visit = client.get(anna.get_url())
    assert visit.status_code != 410
    assert "This webinar was cancelled" not in visit.content.decode()

    # A second POST (double click) changes and sends nothing.
    with committed():
        admin_client.post(reopen_url(webinar), {"notify": "on"})
    assert len(mail.outbox) == 2
    assert Mailing.objects.filter(kind=MailingKind.REOPENING).count() == 1


def test_reopen_without_notice_sends_nothing(webinar, holders, admin_client):
    cancelled(webinar)
    mail.outbox.clear()
    with committed():
        response = admin_client.post(reopen_url(webinar), {})
    assert response.status_code == 302
    assert not WebinarPage.objects.get(pk=webinar.pk).is_cancelled
    assert not mail.outbox
    assert planned(webinar) == 2


@pytest.mark.parametrize("perms", [(), (SEND,)])
def test_users_without_permission_are_refused(webinar, holders, client, perms):
    cancelled(webinar)
    mail.outbox.clear()
    client.force_login(make_user("nobody", perms=perms))
    assert client.get(reopen_url(webinar)).status_code in (302, 403)
    with committed():
        response = client.post(reopen_url(webinar), {"notify": "on"})
    assert response.status_code in (302, 403)
    assert WebinarPage.objects.get(pk=webinar.pk).is_cancelled
    assert not mail.outbox


def test_reopen_needs_post_with_csrf(webinar, holders, superuser):
    cancelled(webinar)
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(superuser)
    assert csrf_client.post(reopen_url(webinar)).status_code == 403
    assert WebinarPage.objects.get(pk=webinar.pk).is_cancelled


def test_header_offers_reopen_only_on_a_cancelled_webinar(
    webinar, admin_client, client
):
    edit = reverse("wagtailadmin_pages:edit", args=[webinar.pk])
    cancel_url = reverse("wagtail_paidwebinar_cancel_webinar", args=[webinar.pk])
    assert reopen_url(webinar) not in admin_client.get(edit).content.decode()
    cancelled(webinar)
    html = admin_client.get(edit).content.decode()
    assert reopen_url(webinar) in html
    assert cancel_url not in html
    client.force_login(make_user("editor2", perms=("wagtailadmin.access_admin",)))
    assert reopen_url(webinar) not in client.get(edit).content.decode()
