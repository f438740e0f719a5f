"""After a move, the browser that lost the link is told so at its next request
("Your access moved to another browser at <time>"), with the ways back: a code to
move it back, the lost-link form, the organiser. Only a device cookie that matches
no bound device pays for that look-up; ordinary visitors' requests are unchanged."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.fixtures_gate import ROOM_WORD, UA, claim, link_path, make_link
from tests.fixtures_moves import CODE_RE, enter, request_code
from wagtail_paidwebinar.models import LinkDevice

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clear_gate_cache")]

MOVED = "Your access moved to another browser"
# 09:05 UTC on 2 March 2026 is 10:05 in Warsaw (the webinar's timezone).
MOVE_TIME = dt.datetime(2026, 3, 2, 9, 5, tzinfo=dt.UTC)


@pytest.fixture
def moved(holder, old_browser, invitations_queue, django_capture_on_commit_callbacks):
    """The link moved from ``old_browser`` to a new one; returns the new browser."""
    new = Client(HTTP_USER_AGENT=f"{UA} new")
    with time_machine.travel(MOVE_TIME, tick=False):
        code = request_code(new, holder, django_capture_on_commit_callbacks)
        assert enter(new, holder, code).status_code == 302
    return new


def devicemove_queries(ctx) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if "devicemove" in q["sql"].lower()]


def test_the_old_browser_is_told_its_access_moved_and_when(holder, old_browser, moved):
    response = old_browser.get(holder.webinar.url)
    text = response.content.decode()
    assert response.status_code == 403
    assert ROOM_WORD not in text
    assert f"{MOVED} at March 2, 2026, 10:05 (Europe/Warsaw)." in text
    # The ways back: a code to this address, the lost-link form, the organiser.
    assert "E-mail a code to a•••@example.org" in text
    assert "anna.nowak@example.org" not in text
    lost_link = reverse("wagtail_paidwebinar:lost_link", args=[holder.webinar.pk])
    assert f'href="{lost_link}"' in text
    # Personal, never cached, and no token anywhere in it.
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]
    assert holder.token not in text
    assert "access=" not in text
    # The new browser is in the room.
    assert ROOM_WORD in moved.get(holder.webinar.url).content.decode()


def test_the_old_browser_can_move_the_access_back_with_a_code(
    holder,
    old_browser,
    moved,
    django_capture_on_commit_callbacks,
):
    page = holder.webinar.url
    assert MOVED in old_browser.get(page).content.decode()
    sent = len(mail.outbox)
    with django_capture_on_commit_callbacks(execute=True):
        asked = old_browser.post(page, {"pw_action": "move_request"})
    assert asked.status_code == 200
    assert "a•••@example.org" in asked.content.decode()
    assert len(mail.outbox) == sent + 1
    code = CODE_RE.search(mail.outbox[-1].body).group(1)
    back = old_browser.post(page, {"pw_action": "move_confirm", "move_code": code})
    assert back.status_code == 302
    assert back["Location"] == page
    assert ROOM_WORD in old_browser.get(page).content.decode()
    # Now the other browser is the one told.
    assert MOVED in moved.get(page).content.decode()
    assert LinkDevice.objects.filter(link=holder).count() == 1


def test_no_moves_left_the_page_says_ask_the_organiser(holder, old_browser, moved):
    holder.webinar.max_device_moves = 1
    holder.webinar.save()
    text = old_browser.get(holder.webinar.url).content.decode()
    assert MOVED in text
    assert "E-mail a code" not in text
    assert "ask the organiser to reset your link" in text


def test_a_revoked_link_shows_the_plain_teaser(holder, old_browser, moved):
    from wagtail_paidwebinar.actions import revoke_link

    revoke_link(holder)
    response = old_browser.get(holder.webinar.url)
    assert response.status_code == 200
    assert MOVED not in response.content.decode()


def test_ordinary_visitors_pay_no_query_for_it(
    holder, old_browser, moved, room_webinar
):
    page = holder.webinar.url
    # A visitor without any cookie: the teaser, no move look-up.
    stranger = Client()
    stranger.get(page)
    with CaptureQueriesContext(connection) as ctx:
        assert stranger.get(page).status_code == 200
    assert devicemove_queries(ctx) == []
    # A browser in the room (the new one): no move look-up either.
    moved.get(page)
    with CaptureQueriesContext(connection) as ctx:
        assert ROOM_WORD in moved.get(page).content.decode()
    assert devicemove_queries(ctx) == []
    # Only a device cookie that matches nothing here pays for one look-up.
    with CaptureQueriesContext(connection) as ctx:
        assert MOVED in old_browser.get(page).content.decode()
    lookups = [sql for sql in devicemove_queries(ctx) if "moved_away_hash" in sql]
    assert len(lookups) == 1
    elsewhere = Client()
    claim(elsewhere, make_link(room_webinar, "Other Person"))
    unrelated = Client()
    unrelated.cookies["paidwebinar_device"] = "never-bound-secret"
    with CaptureQueriesContext(connection) as ctx:
        response = unrelated.get(page)
    assert response.status_code == 200
    assert MOVED not in response.content.decode()
    assert len(devicemove_queries(ctx)) == 1


def test_the_old_browser_opening_its_link_again_is_told_too(holder, old_browser, moved):
    response = old_browser.get(link_path(holder))
    text = response.content.decode()
    assert response.status_code == 403
    assert f"{MOVED} at March 2, 2026, 10:05 (Europe/Warsaw)." in text
    assert "no-store" in response["Cache-Control"]
    # The page's form posts to the page itself: the token is nowhere in it.
    assert holder.token not in text
    assert f'action="{holder.webinar.url}"' in text
    # Any other browser opening the link still sees "in use".
    other = Client().get(link_path(holder)).content.decode()
    assert "already in use" in other
    assert MOVED not in other
