"""One person per link against a determined buyer (issue 10): claims bound to the
browser and to a server-issued nonce, device credential rotation with reuse
detection, opaque public ids and equal-cost refusals. Everything through the
public page, one test client per browser (each its own cookie jar)."""

from __future__ import annotations

import datetime as dt
from http.cookies import SimpleCookie

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from tests.fixtures_gate import ROOM_WORD, link_path
from wagtail_paidwebinar.models import AccessEvent, AccessEventKind, LinkDevice

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clear_gate_cache")]

DEVICE = "paidwebinar_device"


def confirm_form(b, link) -> dict:
    """GET the confirm page in browser ``b``; the form it would post."""
    page = b.get(link_path(link))
    assert page.status_code == 200
    return {"pw_action": "claim", "pw_claim": page.context["claim_nonce"]}


def in_room(b, webinar) -> bool:
    return ROOM_WORD in b.get(webinar.url).content.decode()


# --- finding 1: one link, one browser ----------------------------------------------


def test_buyers_form_replayed_from_another_browser_is_refused(
    browser, anna, room_webinar, admin_client
):
    buyer, friend = browser(), browser(REMOTE_ADDR="198.51.100.5")
    form = confirm_form(buyer, anna)
    assert buyer.post(link_path(anna), form).status_code == 302
    # The friend posts exactly what the buyer posted, nonce included.
    response = friend.post(link_path(anna), form)
    assert response.status_code == 403
    assert DEVICE not in response.cookies
    assert "in use" in response.content.decode().lower()
    assert not in_room(friend, room_webinar)
    assert in_room(buyer, room_webinar)
    assert LinkDevice.objects.filter(link=anna).count() == 1
    refusals = AccessEvent.objects.filter(
        link=anna, kind=AccessEventKind.REFUSED_IN_USE
    )
    assert refusals.count() == 1
    url = reverse("wagtail_paidwebinar_attendance", args=[room_webinar.pk])
    assert "Possible sharing" in admin_client.get(url).content.decode()


def test_self_chosen_nonce_admits_one_browser_only(browser, anna, room_webinar):
    """The attack as reported: many browsers post one link with one nonce."""
    forged = {"pw_action": "claim", "pw_claim": "A" * 32}
    browsers = [browser() for _ in range(6)]
    statuses = [b.post(link_path(anna), forged).status_code for b in browsers]
    assert statuses.count(302) == 1, statuses
    assert statuses.count(403) == 5, statuses
    assert sum(in_room(b, room_webinar) for b in browsers) == 1
    assert LinkDevice.objects.filter(link=anna).count() == 1


def test_forged_nonce_never_reenters_a_claimed_link(browser, anna):
    buyer, other = browser(), browser()
    confirm_form(other, anna)  # a real confirm page, then a nonce of its own making
    assert buyer.post(link_path(anna), confirm_form(buyer, anna)).status_code == 302
    forged = {"pw_action": "claim", "pw_claim": "B" * 40}
    assert other.post(link_path(anna), forged).status_code == 403
    assert LinkDevice.objects.filter(link=anna).count() == 1


def test_honest_double_click_ends_in_the_room(browser, anna, room_webinar):
    """One browser posts its form twice and drops the first response's cookie."""
    b = browser()
    form = confirm_form(b, anna)
    jar = SimpleCookie(b.cookies)
    first = b.post(link_path(anna), form)
    assert first.status_code == 302
    b.cookies = jar  # the first response (and every cookie it set) never arrived
    second = b.post(link_path(anna), form)
    assert second.status_code == 302
    assert second.cookies[DEVICE].value == first.cookies[DEVICE].value
    assert in_room(b, room_webinar)
    assert LinkDevice.objects.filter(link=anna).count() == 1


def test_double_click_window_is_what_a_double_click_needs(browser, anna):
    """The same form posted again by the same browser minutes later is not a
    double click any more (it used to count for 10 minutes)."""
    b = browser()
    form = confirm_form(b, anna)
    jar = SimpleCookie(b.cookies)
    assert b.post(link_path(anna), form).status_code == 302
    b.cookies = jar
    with time_machine.travel(timezone.now() + dt.timedelta(seconds=90), tick=False):
        assert b.post(link_path(anna), form).status_code == 403
    assert LinkDevice.objects.filter(link=anna).count() == 1


# --- a copied device cookie stops working ------------------------------------------

ROTATE = dt.timedelta(seconds=301)  # past WAGTAIL_PAIDWEBINAR_DEVICE_ROTATE_AFTER
PAST_GRACE = dt.timedelta(seconds=61)  # past WAGTAIL_PAIDWEBINAR_DEVICE_ROTATE_GRACE


def joined(b, link) -> None:
    assert b.post(link_path(link), confirm_form(b, link)).status_code == 302


def test_copied_device_cookie_one_keeps_the_room_and_link_is_flagged(
    browser, anna, room_webinar, admin_client
):
    buyer = browser(REMOTE_ADDR="203.0.113.77")
    joined(buyer, anna)
    friend = browser(
        REMOTE_ADDR="198.51.100.5", HTTP_USER_AGENT="FriendBrowser/2.0 (copied)"
    )
    friend.cookies[DEVICE] = buyer.cookies[DEVICE].value  # the copied cookie
    assert in_room(buyer, room_webinar) and in_room(friend, room_webinar)
    start = timezone.now()
    with time_machine.travel(start + ROTATE, tick=False):
        response = buyer.get(room_webinar.url)  # rotates the buyer's credential
        assert ROOM_WORD in response.content.decode()
        assert response.cookies[DEVICE].value != friend.cookies[DEVICE].value
        assert in_room(friend, room_webinar)  # inside the grace: not yet told apart
    with time_machine.travel(start + ROTATE + PAST_GRACE, tick=False):
        refused = friend.get(room_webinar.url)
        assert refused.status_code == 403
        assert ROOM_WORD not in refused.content.decode()
        assert in_room(buyer, room_webinar)
    assert AccessEvent.objects.filter(
        link=anna, kind=AccessEventKind.REUSE_DETECTED
    ).exists()
    url = reverse("wagtail_paidwebinar_attendance", args=[room_webinar.pk])
    body = admin_client.get(url).content.decode()
    assert "Used from two browsers" in body
    assert "FriendBrowser/2.0" in body and "GateTest/1.0" in body
    assert "198.51.100.0/24" in body and "203.0.113.0/24" in body


def test_copied_cookie_whoever_rotates_first_keeps_the_room(
    browser, anna, room_webinar
):
    buyer = browser()
    joined(buyer, anna)
    friend = browser()
    friend.cookies[DEVICE] = buyer.cookies[DEVICE].value
    start = timezone.now()
    with time_machine.travel(start + ROTATE, tick=False):
        assert in_room(friend, room_webinar)  # the copy rotates first
    with time_machine.travel(start + ROTATE + PAST_GRACE, tick=False):
        assert [in_room(b, room_webinar) for b in (buyer, friend)] == [False, True]


def test_two_tabs_are_never_refused(browser, anna, room_webinar):
    b = browser()
    joined(b, anna)
    start = timezone.now()
    for minutes in range(1, 30, 2):
        with time_machine.travel(start + dt.timedelta(minutes=minutes), tick=False):
            before = SimpleCookie(b.cookies)
            first = b.get(room_webinar.url)  # tab 1, may rotate
            after = SimpleCookie(b.cookies)
            b.cookies = before  # tab 2 sent the old cookie before tab 1's answer
            second = b.get(room_webinar.url)
            b.cookies = after if DEVICE not in second.cookies else b.cookies
            assert ROOM_WORD in first.content.decode(), minutes
            assert ROOM_WORD in second.content.decode(), minutes
    assert not AccessEvent.objects.filter(kind=AccessEventKind.REUSE_DETECTED).exists()


def gate_table(sql: str) -> bool:
    return any(t in sql for t in ("linkdevice", "personallink", "accessevent"))


def test_granted_view_costs_one_query_and_rotation_one_write(
    browser, anna, room_webinar
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    b = browser()
    joined(b, anna)
    b.get(room_webinar.url)
    with CaptureQueriesContext(connection) as plain:
        b.get(room_webinar.url)
    gate_queries = [q for q in plain if gate_table(q["sql"])]
    assert len(gate_queries) == 1, gate_queries
    with time_machine.travel(timezone.now() + ROTATE, tick=False):
        with CaptureQueriesContext(connection) as rotating:
            response = b.get(room_webinar.url)
    assert DEVICE in response.cookies
    gate = [q["sql"] for q in rotating if gate_table(q["sql"])]
    writes = [q for q in gate if not q.lstrip().upper().startswith("SELECT")]
    assert len(writes) == 1, gate
    assert writes[0].lstrip().upper().startswith("UPDATE")


# --- opaque public ids, equal-cost refusals ----------------------------------------


def test_new_link_url_carries_no_primary_key(anna, browser):
    ref, _sep, _mac = anna.token.partition(".")
    assert ref == anna.public_id
    assert not ref.isdigit() and 10 <= len(ref) <= 16
    assert f"access={anna.pk}." not in anna.get_url()
    b = browser()
    assert b.post(link_path(anna), confirm_form(b, anna)).status_code == 302


def test_old_form_token_still_admits(anna, browser, room_webinar):
    from wagtail_paidwebinar import tokens

    old = tokens.make_token(anna.pk, anna.webinar_id, anna.salt)
    assert old.startswith(f"{anna.pk}.")
    b = browser()
    page = b.get(link_path(anna, old))
    assert page.status_code == 200
    form = {"pw_action": "claim", "pw_claim": page.context["claim_nonce"]}
    assert b.post(link_path(anna, old), form).status_code == 302
    assert in_room(b, room_webinar)


def test_unknown_id_and_wrong_mac_do_the_same_work(anna, browser, monkeypatch):
    from wagtail_paidwebinar import tokens

    calls = []
    real = tokens.verify_mac

    def spy(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(tokens, "verify_mac", spy)
    mac = anna.token.partition(".")[2]
    wrong_mac = ("B" if mac[0] == "A" else "A") + mac[1:]
    for token in (
        f"{anna.public_id}.{wrong_mac}",  # known id, wrong mac
        f"Zz{anna.public_id[2:]}.{mac}",  # no such id
        f"{anna.pk + 1000}.{mac}",  # no such (old-form) id
    ):
        calls.clear()
        response = browser().get(link_path(anna, token))
        assert response.status_code == 403, token
        assert len(calls) == 1, token
