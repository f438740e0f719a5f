"""Schedule changes and cancellation: the update's .ics moves the event the first
invitation added (same UID, higher SEQUENCE), a cancellation removes it
(METHOD:CANCEL), the room closes, and only users who may publish the page and send
mailings can do either."""

from __future__ import annotations

import datetime as dt

import icalendar
import pytest
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.cache import SessionStore
from django.core import mail
from django.test import RequestFactory, TestCase
from django.urls import reverse
from wagtail import hooks
from wagtail.models import ModelLogEntry

from tests.utils import make_user
from wagtail_paidwebinar.actions import generate_links
from wagtail_paidwebinar.mailing import create_mailing, schedule, start_mailing
from wagtail_paidwebinar.models import (
    Mailing,
    MailingKind,
    PersonalLink,
    Reminder,
    ReminderStatus,
    WebinarPage,
)

pytestmark = pytest.mark.usefixtures("invitations_queue")

SEND = "wagtail_paidwebinar.send_mailing"
PUBLISH_PERMS = ("wagtailadmin.access_admin",)


def committed():
    """Run the block's on_commit callbacks (the inline sending jobs) at its end."""
    return TestCase.captureOnCommitCallbacks(execute=True)


@pytest.fixture
def holders(webinar):
    result = generate_links(
        webinar, "Anna Nowak <anna@example.com>\nJan Kowalski <jan@example.com>"
    )
    assert result.ok
    return result.created


def calendar_of(message) -> tuple[icalendar.Calendar, str]:
    """The parsed .ics of a sent message and its MIME part's method parameter."""
    parts = [
        p for p in message.message().walk() if p.get_content_type() == "text/calendar"
    ]
    assert len(parts) == 1
    return icalendar.Calendar.from_ical(parts[0].get_content()), parts[0].get_param(
        "method"
    )


def event_of(cal: icalendar.Calendar):
    return next(iter(cal.walk("VEVENT")))


def invite_everyone(webinar) -> None:
    mailing = create_mailing(webinar, subject="Invitation", body_html="<p>Hi</p>")
    with committed():
        start_mailing(mailing)


def move(webinar, **changes) -> WebinarPage:
    page = WebinarPage.objects.get(pk=webinar.pk)
    for name, value in changes.items():
        setattr(page, name, value)
    with committed():
        page.save_revision().publish()
    return WebinarPage.objects.get(pk=webinar.pk)


def after_publish_messages(page, user) -> list[str]:
    """Run the registered after_publish_page hooks as the admin's publish does and
    return the messages they left."""
    request = RequestFactory().post("/")
    request.user = user
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    for fn in hooks.get_hooks("after_publish_page"):
        fn(request, page)
    return [str(m.message) for m in request._messages]


def test_update_moves_the_calendar_event(webinar, holders, admin_client, superuser):
    invite_everyone(webinar)
    first, first_method = calendar_of(mail.outbox[0])
    assert first["METHOD"] == "PUBLISH" == first_method
    mail.outbox.clear()

    # A publish without a schedule change offers nothing.
    moved = move(webinar, title="Django performance (live)")
    assert not any("changed" in m for m in after_publish_messages(moved, superuser))

    new_start = webinar.starts_at + dt.timedelta(days=1, hours=2)
    moved = move(webinar, starts_at=new_start)
    notices = after_publish_messages(moved, superuser)
    assert any("changed since participants were last e-mailed" in m for m in notices)
    url = reverse("wagtail_paidwebinar_notify_schedule", args=[webinar.pk])
    edit = admin_client.get(reverse("wagtailadmin_pages:edit", args=[webinar.pk]))
    assert url in edit.content.decode()

    page = admin_client.get(url)
    assert page.status_code == 200
    assert "2 participants" in page.content.decode()
    assert not mail.outbox  # GET sends nothing
    with committed():
        response = admin_client.post(url)
    assert response.status_code == 302
    assert sorted(m.to[0] for m in mail.outbox) == [
        "Anna Nowak <anna@example.com>",
        "Jan Kowalski <jan@example.com>",
    ]
    update, update_method = calendar_of(mail.outbox[0])
    assert update["METHOD"] == "PUBLISH" == update_method  # as the first one
    assert event_of(update)["UID"] == event_of(first)["UID"]
    assert event_of(update)["SEQUENCE"] > event_of(first)["SEQUENCE"]
    assert event_of(update).decoded("dtstart") == new_start.replace(microsecond=0)
    assert "New time" in mail.outbox[0].subject
    link_urls = {link.get_url() for link in holders}
    assert any(u in mail.outbox[0].body for u in link_urls)

    # A second POST (double click) sends nothing more; no notice offered now.
    with committed():
        admin_client.post(url)
    assert len(mail.outbox) == 2
    assert Mailing.objects.filter(kind=MailingKind.UPDATE).count() == 1
    assert not any("changed" in m for m in after_publish_messages(moved, superuser))


def test_a_change_before_anyone_was_told_offers_nothing(webinar, holders, superuser):
    moved = move(webinar, starts_at=webinar.starts_at + dt.timedelta(hours=3))
    assert after_publish_messages(moved, superuser) == []
    assert schedule.notify_schedule_change(moved) is None


def test_cancel_closes_the_room_and_sends_method_cancel(
    webinar, holders, admin_client, client
):
    anna = holders[0]
    invite_everyone(webinar)
    first, _method = calendar_of(mail.outbox[0])
    mail.outbox.clear()
    assert Reminder.objects.filter(
        webinar=webinar, status=ReminderStatus.PLANNED
    ).exists()

    url = reverse("wagtail_paidwebinar_cancel_webinar", args=[webinar.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    assert 'name="revoke_links"' in page.content.decode()
    assert WebinarPage.objects.get(pk=webinar.pk).cancelled_at is None  # GET: nothing
    with committed():
        response = admin_client.post(url, {"message": "Refunds <b>within</b> a week."})
    assert response.status_code == 302

    assert len(mail.outbox) == 2
    message = mail.outbox[0]
    cal, method = calendar_of(message)
    assert cal["METHOD"] == "CANCEL" == method
    event = event_of(cal)
    assert event["STATUS"] == "CANCELLED"
    assert event["UID"] == event_of(first)["UID"]
    assert event["SEQUENCE"] > event_of(first)["SEQUENCE"]
    assert "Cancelled: Django performance" == message.subject
    assert "Refunds <b>within</b> a week." in message.body
    html = message.alternatives[0][0]
    assert "Refunds &lt;b&gt;within&lt;/b&gt; a week." in html
    assert "kawa123" not in message.body  # no password or join button
    # Nothing revoked silently; no reminder left.
    assert PersonalLink.objects.filter(revoked_at__isnull=False).count() == 0
    assert not Reminder.objects.filter(status=ReminderStatus.PLANNED).exists()

    # The room is closed: the link gets the cancelled page, the teaser says so.
    token_visit = client.get(anna.get_url())
    assert token_visit.status_code == 410
    assert "This webinar was cancelled" in token_visit.content.decode()
    teaser = client.get(webinar.url)
    assert teaser.status_code == 200
    assert "This webinar was cancelled." in teaser.content.decode()

    # Publishing again (an older draft) does not reopen it; cancelling twice
    # sends nothing.
    move(webinar, title="Django performance, again")
    assert WebinarPage.objects.get(pk=webinar.pk).cancelled_at is not None
    with committed():
        admin_client.post(url)
    assert len(mail.outbox) == 2
    assert not Reminder.objects.filter(status=ReminderStatus.PLANNED).exists()


def test_cancel_may_revoke_the_links_and_still_tells_them(
    webinar, holders, admin_client
):
    url = reverse("wagtail_paidwebinar_cancel_webinar", args=[webinar.pk])
    with committed():
        admin_client.post(url, {"revoke_links": "on"})
    assert PersonalLink.objects.filter(revoked_at__isnull=True).count() == 0
    # Each revoke is in the audit log, as one from the links listing.
    revokes = ModelLogEntry.objects.filter(action="wagtail_paidwebinar.link.revoke")
    assert sorted(e.object_id for e in revokes) == sorted(str(h.pk) for h in holders)
    assert sorted(m.to[0] for m in mail.outbox) == [
        "Anna Nowak <anna@example.com>",
        "Jan Kowalski <jan@example.com>",
    ]
    assert calendar_of(mail.outbox[0])[0]["METHOD"] == "CANCEL"


@pytest.mark.parametrize(
    "perms",
    [
        (),  # admin access only
        (SEND,),  # may send mailings, but not publish the page
    ],
)
def test_users_without_permission_are_refused(webinar, holders, client, perms):
    user = make_user("nobody", perms=perms)
    client.force_login(user)
    moved = move(webinar, starts_at=webinar.starts_at + dt.timedelta(hours=1))
    for name in (
        "wagtail_paidwebinar_cancel_webinar",
        "wagtail_paidwebinar_notify_schedule",
    ):
        url = reverse(name, args=[webinar.pk])
        assert client.get(url).status_code in (302, 403)
        with committed():
            response = client.post(url, {"revoke_links": "on"})
        assert response.status_code in (302, 403)
        if response.status_code == 302:
            assert "login" in response["Location"] or response["Location"] == "/admin/"
    assert WebinarPage.objects.get(pk=webinar.pk).cancelled_at is None
    assert PersonalLink.objects.filter(revoked_at__isnull=False).count() == 0
    assert not mail.outbox
    # No "Notify participants" button in the offer for them.
    assert moved.pk


def test_cancel_needs_post_with_csrf(webinar, holders, superuser):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(superuser)
    url = reverse("wagtail_paidwebinar_cancel_webinar", args=[webinar.pk])
    assert csrf_client.post(url).status_code == 403
    assert WebinarPage.objects.get(pk=webinar.pk).cancelled_at is None


def test_cancel_button_in_the_page_header(webinar, admin_client, client):
    url = reverse("wagtail_paidwebinar_cancel_webinar", args=[webinar.pk])
    edit = reverse("wagtailadmin_pages:edit", args=[webinar.pk])
    assert url in admin_client.get(edit).content.decode()
    editor = make_user("editor2", perms=("wagtailadmin.access_admin",))
    client.force_login(editor)
    # No edit permission on the page either: whatever they see, no cancel button.
    assert url not in client.get(edit).content.decode()
