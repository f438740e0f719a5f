"""The personal link flow: confirm, claim, one person per link, revocation."""

from __future__ import annotations

import datetime as dt
from http.cookies import SimpleCookie

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from tests.fixtures_gate import ROOM_WORD, claim, link_path, make_link
from tests.utils import make_webinar
from wagtail_paidwebinar import actions
from wagtail_paidwebinar.models import AccessEvent, LinkDevice, PersonalLink

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clear_gate_cache")]


def db_state():
    return (
        list(LinkDevice.objects.values_list("pk", "link_id", "secret_hash")),
        list(PersonalLink.objects.values_list("pk", "claimed_at", "last_seen_at")),
    )


def test_anonymous_visitor_sees_teaser_not_room(client, room_webinar):
    response = client.get(room_webinar.url)
    assert response.status_code == 200
    body = response.content.decode()
    assert "A public teaser." in body
    assert ROOM_WORD not in body


def test_get_and_head_never_claim(browser, anna):
    before = db_state()
    b = browser()
    response = b.get(link_path(anna))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Join as Anna Nowak" in body
    assert 'method="post"' in body
    assert "csrfmiddlewaretoken" in body
    assert "A public teaser." in body  # the teaser is visible on the confirm page
    assert ROOM_WORD not in body
    assert b.head(link_path(anna)).status_code == 200
    assert db_state() == before
    assert not AccessEvent.objects.exists()


def test_confirm_page_escapes_name(browser, room_webinar):
    link = make_link(room_webinar, '<script>alert("x")</script>')
    body = browser().get(link_path(link)).content.decode()
    assert "<script>alert" not in body
    assert "&lt;script&gt;" in body


def test_post_claims_and_redirects_to_clean_url(browser, anna):
    b = browser()
    session = b.session  # an existing session, as a returning visitor would have
    session["seen"] = True
    session.save()
    session_before = b.cookies["sessionid"].value
    b.get(link_path(anna))
    response = claim(b, anna)
    assert response.status_code == 302
    assert response["Location"] == anna.webinar.url
    assert "access=" not in response["Location"]
    device = LinkDevice.objects.get(link=anna)
    cookie = response.cookies["paidwebinar_device"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]  # plain HTTP here; see the HTTPS test
    assert int(cookie["max-age"]) > 60 * 60 * 24 * 300
    # Only a hash of the secret is stored.
    assert cookie.value not in device.secret_hash
    assert len(device.secret_hash) == 64
    # The session key was cycled (data kept, old key gone) and the grant noted.
    assert response.cookies["sessionid"].value != session_before
    assert not Session.objects.filter(session_key=session_before).exists()
    assert b.session["seen"] is True
    assert b.session["paidwebinar_grants"] == {str(anna.webinar_id): anna.pk}
    anna.refresh_from_db()
    assert anna.claimed_at is not None

    room = b.get(anna.webinar.url)
    assert room.status_code == 200
    assert ROOM_WORD in room.content.decode()


def test_claim_from_a_browser_without_a_session_writes_no_session(browser, anna):
    """A first visit has no session to fix, and the device cookie is what admits
    it: the claim creates no session, so the room's reloads read none from the
    session store (the teaser's visitors read none either)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    b = browser()
    b.get(link_path(anna))
    with CaptureQueriesContext(connection) as ctx:
        response = claim(b, anna)
    assert response.status_code == 302
    assert not [q for q in ctx.captured_queries if '"django_session"' in q["sql"]]
    assert "sessionid" not in response.cookies
    assert not Session.objects.exists()
    room = b.get(anna.webinar.url)
    assert ROOM_WORD in room.content.decode()
    assert "sessionid" not in room.cookies
    assert not Session.objects.exists()


def test_claim_over_https_sets_secure_cookie(browser, anna):
    response = claim(browser(), anna, secure=True)
    assert response.status_code == 302
    assert response.cookies["paidwebinar_device"]["secure"]


def test_confirm_form_works_with_csrf_enforced(anna):
    b = Client(enforce_csrf_checks=True)
    page = b.get(link_path(anna))
    token = page.context["csrf_token"]
    assert b.post(link_path(anna), {"pw_action": "claim"}).status_code == 403
    response = b.post(
        link_path(anna), {"pw_action": "claim", "csrfmiddlewaretoken": str(token)}
    )
    assert response.status_code == 302
    assert ROOM_WORD in b.get(anna.webinar.url).content.decode()


def test_second_browser_is_refused(browser, anna):
    first, second = browser(), browser()
    assert claim(first, anna).status_code == 302
    response = second.get(link_path(anna))
    assert response.status_code == 403
    body = response.content.decode()
    assert "already in use on another device" in body
    assert 'href="mailto:webinars@example.com"' in body  # whom to contact
    assert ROOM_WORD not in body
    assert claim(second, anna).status_code == 403
    assert LinkDevice.objects.filter(link=anna).count() == 1
    # The bare page URL in the second browser shows the teaser only.
    assert ROOM_WORD not in second.get(anna.webinar.url).content.decode()
    # The first browser is still in.
    assert ROOM_WORD in first.get(anna.webinar.url).content.decode()


def test_bound_browser_opening_its_link_goes_straight_in(browser, anna):
    b = browser()
    claim(b, anna)
    response = b.get(link_path(anna))
    assert response.status_code == 302
    assert response["Location"] == anna.webinar.url
    assert LinkDevice.objects.filter(link=anna).count() == 1


def test_device_cookie_alone_admits_after_session_loss(browser, anna):
    b = browser()
    session = b.session  # a returning visitor's session, noted at the claim
    session["seen"] = True
    session.save()
    claim(b, anna)
    assert b.session["paidwebinar_grants"] == {str(anna.webinar_id): anna.pk}
    del b.cookies["sessionid"]
    assert ROOM_WORD in b.get(anna.webinar.url).content.decode()


def test_max_devices_two(browser, index):
    webinar = make_webinar(
        index, title="Family", slug="family", max_devices_per_link=2, room=[]
    )
    link = make_link(webinar)
    tv, tablet, third = browser(), browser(), browser()
    assert claim(tv, link).status_code == 302
    assert claim(tablet, link).status_code == 302
    assert claim(third, link).status_code == 403
    assert LinkDevice.objects.filter(link=link).count() == 2
    assert tv.get(webinar.url).context["room_visible"]
    assert tablet.get(webinar.url).context["room_visible"]
    assert not third.get(webinar.url).context["room_visible"]


def test_revoke_takes_effect_on_next_request(browser, anna):
    b = browser()
    claim(b, anna)
    assert ROOM_WORD in b.get(anna.webinar.url).content.decode()
    actions.revoke_link(anna)
    response = b.get(anna.webinar.url)
    assert response.status_code == 200
    assert ROOM_WORD not in response.content.decode()
    # Opening the revoked link shows the generic refusal.
    assert b.get(link_path(anna)).status_code == 403


def test_reset_frees_the_slot(browser, anna):
    first, second = browser(), browser()
    claim(first, anna)
    actions.reset_link_devices(anna)
    assert ROOM_WORD not in first.get(anna.webinar.url).content.decode()
    assert claim(second, anna).status_code == 302
    assert ROOM_WORD in second.get(anna.webinar.url).content.decode()
    assert first.get(link_path(anna)).status_code == 403


def test_reissue_kills_old_url_and_devices(browser, anna):
    b = browser()
    old_token = anna.token
    claim(b, anna)
    actions.reissue_link(anna)
    assert ROOM_WORD not in b.get(anna.webinar.url).content.decode()
    assert b.get(link_path(anna, old_token)).status_code == 403
    assert browser().get(link_path(anna)).status_code == 200  # the new URL works


def test_expiry_mid_session(browser, anna):
    b = browser()
    claim(b, anna)
    PersonalLink.objects.filter(pk=anna.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    response = b.get(anna.webinar.url)
    assert response.status_code == 403
    body = response.content.decode()
    assert "expired" in body
    assert ROOM_WORD not in body
    # The claiming browser is told it expired; any other sees the generic refusal.
    assert "expired" in b.get(link_path(anna)).content.decode()
    other = browser().get(link_path(anna))
    assert other.status_code == 403
    assert "expired" not in other.content.decode()


def test_refusals_look_alike(browser, anna, room_webinar, index, settings):
    settings.WAGTAIL_PAIDWEBINAR_THROTTLE_FAILURES = 100
    other_webinar = make_webinar(index, title="Other", slug="other")
    other_link = make_link(other_webinar, "Bob")
    revoked = make_link(room_webinar, "Revoked", revoked_at=timezone.now())
    expired = make_link(
        room_webinar, "Expired", expires_at=timezone.now() - dt.timedelta(days=1)
    )
    token = anna.token
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    url = room_webinar.url
    candidates = {
        "garbage": f"{url}?access=nonsense",
        "empty": f"{url}?access=",
        "truncated": f"{url}?access={token[:-5]}",
        "tampered": f"{url}?access={tampered}",
        "unknown id": f"{url}?access=99999.{token.split('.')[1]}",
        "other webinar": f"{url}?access={other_link.token}",
        "revoked": link_path(revoked),
        "expired": link_path(expired),
    }
    bodies = {}
    for label, target in candidates.items():
        response = browser().get(target)
        assert response.status_code == 403, label
        # Only the CSRF-free body is compared: the same page for every case.
        bodies[label] = response.content.decode()
    assert len(set(bodies.values())) == 1, bodies.keys()
    assert "Anna" not in bodies["tampered"]


def test_bad_tokens_are_throttled_per_client(browser, room_webinar, settings):
    settings.WAGTAIL_PAIDWEBINAR_THROTTLE_FAILURES = 3
    b = browser()
    for _ in range(3):
        assert b.get(f"{room_webinar.url}?access=1.bad").status_code == 403
    response = b.get(f"{room_webinar.url}?access=1.bad")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_post_without_action_does_not_claim(browser, anna):
    response = browser().post(link_path(anna), {})
    assert response.status_code == 200
    assert not LinkDevice.objects.exists()


def test_claim_of_revoked_link_between_get_and_post(browser, anna):
    b = browser()
    assert b.get(link_path(anna)).status_code == 200
    actions.revoke_link(anna)
    assert claim(b, anna).status_code == 403
    assert not LinkDevice.objects.exists()


def test_claim_rebinds_a_browsers_other_links(browser, index, room_webinar, anna):
    """One device secret per browser; a claim rotates it without losing others."""
    second_webinar = make_webinar(index, title="Second", slug="second", room=[])
    other = make_link(second_webinar, "Anna Nowak")
    b = browser()
    claim(b, anna)
    first_cookie = b.cookies["paidwebinar_device"].value
    claim(b, other)
    assert b.cookies["paidwebinar_device"].value != first_cookie
    assert b.get(room_webinar.url).context["room_visible"]
    assert b.get(second_webinar.url).context["room_visible"]


def test_other_pages_untouched(client, index):
    response = client.get(index.url)
    assert response.status_code == 200
    assert "X-Robots-Tag" not in response


def test_double_click_on_join_binds_one_device(browser, anna):
    """Two POSTs of one confirm form (the browser drops the first response and its
    cookie): one device, and the surviving response still lets the buyer in."""
    # One browser: its cookie jar before the first POST is restored afterwards
    # (two separate clients are two browsers, and the second is refused: issue 10).
    second = browser()
    page = second.get(link_path(anna))
    form = {"pw_action": "claim", "pw_claim": page.context["claim_nonce"]}
    assert f'value="{form["pw_claim"]}"' in page.content.decode()
    jar = SimpleCookie(second.cookies)
    r1 = second.post(link_path(anna), form)
    second.cookies = jar
    r2 = second.post(link_path(anna), form)
    assert r1.status_code == r2.status_code == 302
    assert (
        r1.cookies["paidwebinar_device"].value == r2.cookies["paidwebinar_device"].value
    )
    assert LinkDevice.objects.filter(link=anna).count() == 1
    assert ROOM_WORD in second.get(anna.webinar.url).content.decode()
    # Another browser with its own form is refused as usual.
    other = browser()
    other_form = {
        "pw_action": "claim",
        "pw_claim": other.get(link_path(anna)).context.get("claim_nonce") or "x" * 32,
    }
    assert other.post(link_path(anna), other_form).status_code == 403


def test_replayed_confirm_form_is_refused_later(browser, anna):
    import time_machine

    page = browser().get(link_path(anna))
    form = {"pw_action": "claim", "pw_claim": page.context["claim_nonce"]}
    assert browser().post(link_path(anna), form).status_code == 302
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=11), tick=False):
        assert browser().post(link_path(anna), form).status_code == 403
    assert LinkDevice.objects.filter(link=anna).count() == 1


def test_malformed_claim_nonce_falls_back_to_random(browser, anna):
    for nonce in ("short", "ż" * 30, "a" * 500, ""):
        LinkDevice.objects.all().delete()
        form = {"pw_action": "claim", "pw_claim": nonce}
        assert browser().post(link_path(anna), form).status_code == 302
        assert browser().post(link_path(anna), form).status_code == 403
