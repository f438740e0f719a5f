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
