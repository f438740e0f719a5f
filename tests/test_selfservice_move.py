"""Move to this device (issue 16 item 4): a browser refused because the link is
bound elsewhere moves it here with a code e-mailed to the link's address; the old
browser is out at its next request. Embedded default: inline queue, locmem e-mail."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from wagtail.models.audit_log import ModelLogEntry

from tests.fixtures_gate import ROOM_WORD, UA, claim, link_path, make_link
from tests.fixtures_moves import enter, request_code
from wagtail_paidwebinar import moves
from wagtail_paidwebinar.models import (
    AccessEvent,
    AccessEventKind,
    DeviceMove,
    LinkDevice,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clear_gate_cache")]


def test_move_binds_the_new_browser_and_ends_the_old_one(
    holder, old_browser, invitations_queue, django_capture_on_commit_callbacks
):
    new = Client(HTTP_USER_AGENT=f"{UA} new")
    page = new.get(link_path(holder))
    assert page.status_code == 403
    assert "E-mail a code to a•••@example.org" in page.content.decode()
    code = request_code(new, holder, django_capture_on_commit_callbacks)
    message = mail.outbox[-1]
    assert message.to == ["anna.nowak@example.org"]
    assert holder.webinar.title in message.subject
    response = enter(new, holder, f"{code[:3]} {code[3:]}")
    assert response.status_code == 302
    assert response["Location"] == holder.webinar.url
    assert ROOM_WORD in new.get(holder.webinar.url).content.decode()
    # The old browser is out at its next request, and its link is now in use here.
    assert ROOM_WORD not in old_browser.get(holder.webinar.url).content.decode()
    assert old_browser.get(link_path(holder)).status_code == 403
    assert LinkDevice.objects.filter(link=holder).count() == 1
    # Recorded: attendance events and the audit log.
    kinds = set(AccessEvent.objects.filter(link=holder).values_list("kind", flat=True))
    assert {AccessEventKind.MOVE_CODE_SENT, AccessEventKind.DEVICE_MOVED} <= kinds
    entry = ModelLogEntry.objects.get(
        action=moves.ACTION_MOVE, object_id=str(holder.pk)
    )
    assert entry.data["removed_browsers"] == [f"{UA} old"]
    assert ModelLogEntry.objects.filter(
        action=moves.ACTION_MOVE_CODE, object_id=str(holder.pk)
    ).exists()


def test_code_is_not_stored(
    holder, old_browser, invitations_queue, django_capture_on_commit_callbacks
):
    new = Client(HTTP_USER_AGENT=f"{UA} new")
    code = request_code(new, holder, django_capture_on_commit_callbacks)
    row = DeviceMove.objects.values().get(link=holder)
    assert not any(code in str(value) for value in row.values())


def test_code_expires_after_15_minutes(
    holder, old_browser, invitations_queue, django_capture_on_commit_callbacks
):
    new = Client(HTTP_USER_AGENT=f"{UA} new")
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        code = request_code(new, holder, django_capture_on_commit_callbacks)
    with time_machine.travel(start + dt.timedelta(minutes=15, seconds=1), tick=False):
        response = enter(new, holder, code)
    assert response.status_code == 400
    assert "no longer valid" in response.content.decode()
    assert ROOM_WORD not in new.get(holder.webinar.url).content.decode()
    assert ROOM_WORD in old_browser.get(holder.webinar.url).content.decode()
    # Within the 15 minutes it works.
    with time_machine.travel(start + dt.timedelta(minutes=20), tick=False):
        code = request_code(new, holder, django_capture_on_commit_callbacks)
    with time_machine.travel(start + dt.timedelta(minutes=34), tick=False):
        assert enter(new, holder, code).status_code == 302


def test_code_works_once_and_in_the_asking_browser_only(
    holder, old_browser, invitations_queue, django_capture_on_commit_callbacks
):
    new = Client(HTTP_USER_AGENT=f"{UA} new")
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        code = request_code(new, holder, django_capture_on_commit_callbacks)
        # Another browser holding the code (a forwarded e-mail) cannot use it.
        stranger = Client(HTTP_USER_AGENT=f"{UA} stranger")
        stranger.get(link_path(holder))
        assert enter(stranger, holder, code).status_code == 400
        assert enter(new, holder, code).status_code == 302
    # The same browser after clearing its device cookie, later than a double
    # click's moment: the used code is dead.
    again = Client(HTTP_USER_AGENT=f"{UA} new")
    again.cookies["paidwebinar_device_claim"] = new.cookies["paidwebinar_device_claim"]
    with time_machine.travel(start + dt.timedelta(minutes=2), tick=False):
        assert again.get(link_path(holder)).status_code == 403
        response = enter(again, holder, code)
    assert response.status_code == 400
    assert "no longer valid" in response.content.decode()
    assert LinkDevice.objects.filter(link=holder).count() == 1


def test_wrong_codes_then_dead_after_the_attempts(
    holder, old_browser, invitations_queue, django_capture_on_commit_callbacks, settings
):
    settings.WAGTAIL_PAIDWEBINAR_MOVE_CODE_ATTEMPTS = 3
    new = Client(HTTP_USER_AGENT=f"{UA} new")
    code = request_code(new, holder, django_capture_on_commit_callbacks)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    first = enter(new, holder, wrong)
    assert first.status_code == 400
    assert "That code is not right" in first.content.decode()
    enter(new, holder, "garbage<script>")
    enter(new, holder, "")
    # Three wrong entries: even the right code no longer works.
    response = enter(new, holder, code)
    assert response.status_code == 400
    assert "no longer valid" in response.content.decode()
    assert LinkDevice.objects.get(link=holder).user_agent == f"{UA} old"


def test_at_most_n_moves_per_link(
    holder, old_browser, invitations_queue, django_capture_on_commit_callbacks
):
    holder.webinar.max_device_moves = 1
    holder.webinar.save()
    new = Client(HTTP_USER_AGENT=f"{UA} new")
    code = request_code(new, holder, django_capture_on_commit_callbacks)
    assert enter(new, holder, code).status_code == 302
    # No moves left: the old browser is told to ask the organiser, no form.
    page = old_browser.get(link_path(holder))
    assert page.status_code == 403
    assert "E-mail a code" not in page.content.decode()
    assert "ask the organiser to reset your link" in page.content.decode()
    sent = len(mail.outbox)
    with django_capture_on_commit_callbacks(execute=True):
        refused = old_browser.post(link_path(holder), {"pw_action": "move_request"})
    assert "cannot be moved to another browser any more" in refused.content.decode()
    assert len(mail.outbox) == sent
    assert DeviceMove.objects.filter(link=holder, moved_at__isnull=False).count() == 1


def test_a_reset_by_the_organiser_is_not_a_move(holder, old_browser, settings):
    holder.webinar.max_device_moves = 0
    holder.webinar.save()
    page = Client().get(link_path(holder))
    assert "E-mail a code" not in page.content.decode()


def test_link_without_address_asks_the_organiser(
    room_webinar, invitations_queue, django_capture_on_commit_callbacks
):
    link = make_link(room_webinar, "Jan Bez Maila")
    claim(Client(), link)
    other = Client()
    page = other.get(link_path(link))
    assert page.status_code == 403
    assert "E-mail a code" not in page.content.decode()
    assert "ask the organiser to reset your link" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = other.post(link_path(link), {"pw_action": "move_request"})
    assert "no e-mail address" in response.content.decode()
    assert mail.outbox == []
    assert not DeviceMove.objects.exists()


def test_get_never_changes_state(
    holder, old_browser, invitations_queue, django_capture_on_commit_callbacks
):
    new = Client()
    with django_capture_on_commit_callbacks(execute=True):
        new.get(link_path(holder) + "&pw_action=move_request")
        new.head(link_path(holder) + "&pw_action=move_confirm&move_code=123456")
    assert mail.outbox == []
    assert not DeviceMove.objects.exists()


def test_codes_per_link_are_throttled(
    holder, old_browser, invitations_queue, django_capture_on_commit_callbacks, settings
):
    settings.WAGTAIL_PAIDWEBINAR_MOVE_CODES_PER_LINK = 2
    new = Client(HTTP_USER_AGENT=f"{UA} new")
    request_code(new, holder, django_capture_on_commit_callbacks)
    request_code(new, holder, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        response = new.post(link_path(holder), {"pw_action": "move_request"})
    assert "Too many codes were requested" in response.content.decode()
    assert len(mail.outbox) == 2
    # Asking again replaced the first code: only the latest is open.
    assert DeviceMove.objects.filter(link=holder, voided_at=None).count() == 1


def test_csrf_protects_the_move(holder, old_browser, invitations_queue):
    new = Client(enforce_csrf_checks=True)
    new.get(link_path(holder))
    response = new.post(link_path(holder), {"pw_action": "move_request"})
    assert response.status_code == 403
    assert not DeviceMove.objects.exists()


def test_attendance_view_shows_the_moves(
    holder,
    old_browser,
    invitations_queue,
    django_capture_on_commit_callbacks,
    admin_client,
):
    new = Client(HTTP_USER_AGENT=f"{UA} new")
    code = request_code(new, holder, django_capture_on_commit_callbacks)
    enter(new, holder, code)
    page = admin_client.get(
        reverse("wagtail_paidwebinar_attendance", args=[holder.webinar.pk])
    )
    assert page.status_code == 200
    text = page.content.decode()
    assert "Moved to a new browser" in text
    assert page.context["rows"][0].move_count == 1


def test_code_email_says_who_asked_and_that_ignoring_it_keeps_access(
    holder, old_browser, invitations_queue, django_capture_on_commit_callbacks
):
    """Anyone holding the personal link can have codes sent to its owner: the
    e-mail says someone asked, from which browser and when, and that ignoring it
    keeps the access where it is."""
    asker = Client(
        HTTP_USER_AGENT="Mozilla/5.0 (Stranger OS)\r\nBcc: evil@example.net",
        REMOTE_ADDR="203.0.113.77",
    )
    # 09:05 UTC on 2 March 2026 is 10:05 in Warsaw (the webinar's timezone).
    with time_machine.travel(dt.datetime(2026, 3, 2, 9, 5, tzinfo=dt.UTC), tick=False):
        request_code(asker, holder, django_capture_on_commit_callbacks)
    message = mail.outbox[-1]
    body = message.body
    assert message.to == ["anna.nowak@example.org"]
    assert "someone asked to move your access to “Open room” to another browser" in (
        body
    )
    assert (
        "Asked on March 2, 2026, 10:05 (Europe/Warsaw) from this browser: "
        "Mozilla/5.0 (Stranger OS) Bcc: evil@example.net." in body
    )
    assert "Network: 203.0.113.0/24." in body
    assert "ignore this e-mail: your access stays where it is now" in body
    # The asking browser's header could not add a line (or a header) of its own.
    assert "\nBcc:" not in body
    assert "evil@example.net" not in message.bcc + message.to + message.cc
    # Access indeed stays where it is while the code is not used.
    assert ROOM_WORD in old_browser.get(holder.webinar.url).content.decode()


def test_code_email_without_a_user_agent_says_unknown_browser(
    holder, old_browser, invitations_queue, django_capture_on_commit_callbacks
):
    asker = Client(HTTP_USER_AGENT="")
    request_code(asker, holder, django_capture_on_commit_callbacks)
    assert "from this browser: an unknown browser." in mail.outbox[-1].body


def test_the_right_code_posted_twice_lets_the_browser_in_both_times(
    holder, old_browser, invitations_queue, django_capture_on_commit_callbacks
):
    """A double click: the browser sends the code twice and may keep the second
    response only (the first one's cookies dropped): it gets the room, with the
    same device cookie, not "no longer valid"."""
    new = Client(HTTP_USER_AGENT=f"{UA} new")
    code = request_code(new, holder, django_capture_on_commit_callbacks)
    # The browser's state before the first POST's response arrives.
    second = Client(HTTP_USER_AGENT=f"{UA} new")
    second.cookies = new.cookies.__class__(new.cookies)
    first = enter(new, holder, code)
    assert first.status_code == 302
    again = enter(second, holder, code)
    assert again.status_code == 302, again.content.decode()
    assert again["Location"] == holder.webinar.url
    assert again["Cache-Control"] == first["Cache-Control"]
    assert "no-store" in again["Cache-Control"]
    assert (
        again.cookies["paidwebinar_device"].value
        == first.cookies["paidwebinar_device"].value
    )
    assert ROOM_WORD in second.get(holder.webinar.url).content.decode()
    assert ROOM_WORD in new.get(holder.webinar.url).content.decode()
    assert LinkDevice.objects.filter(link=holder).count() == 1
    assert DeviceMove.objects.filter(link=holder, moved_at__isnull=False).count() == 1


def test_a_repeated_code_counts_only_moments_after_the_move_and_only_if_right(
    holder, old_browser, invitations_queue, django_capture_on_commit_callbacks
):
    new = Client(HTTP_USER_AGENT=f"{UA} new")
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        code = request_code(new, holder, django_capture_on_commit_callbacks)
    stale = Client(HTTP_USER_AGENT=f"{UA} new")
    stale.cookies = new.cookies.__class__(new.cookies)
    with time_machine.travel(start + dt.timedelta(seconds=5), tick=False):
        assert enter(new, holder, code).status_code == 302
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        response = enter(stale, holder, wrong)
        assert response.status_code == 400
        assert "no longer valid" in response.content.decode()
    # Long after the move the repeated code is just a used one.
    with time_machine.travel(start + dt.timedelta(minutes=5), tick=False):
        response = enter(stale, holder, code)
    assert response.status_code == 400
    assert "no longer valid" in response.content.decode()
    assert LinkDevice.objects.filter(link=holder).count() == 1
