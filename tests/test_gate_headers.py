"""Response headers of the gate and the cost of a granted request."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.fixtures_gate import ROOM_WORD, claim, enter_password, link_path, make_link
from wagtail_paidwebinar import gate
from wagtail_paidwebinar.models import PersonalLink

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clear_gate_cache")]


def assert_never_cached(response):
    cache_control = response["Cache-Control"]
    assert "private" in cache_control
    assert "no-store" in cache_control


def test_every_gate_response_is_private_no_store(browser, anna, room_webinar):
    first, second = browser(), browser()
    responses = {
        "teaser": first.get(room_webinar.url),
        "confirm": first.get(link_path(anna)),
        "confirm head": first.head(link_path(anna)),
        "claim": claim(first, anna),
        "room": first.get(room_webinar.url),
        "redirect": first.get(link_path(anna)),
        "in use": second.get(link_path(anna)),
        "bad token": second.get(f"{room_webinar.url}?access=1.x"),
    }
    for label, response in responses.items():
        assert "Cache-Control" in response, label
        assert_never_cached(response)


def test_referrer_policy_when_token_in_url(browser, anna, room_webinar):
    b = browser()
    for response in (
        b.get(link_path(anna)),
        b.head(link_path(anna)),
        claim(b, anna),
        b.get(link_path(anna)),
        browser().get(f"{room_webinar.url}?access=garbage"),
    ):
        assert response["Referrer-Policy"] == "strict-origin"
    body = browser().get(link_path(anna)).content.decode()
    assert '<meta name="referrer" content="strict-origin">' in body


def test_x_robots_tag(browser, anna, room_webinar):
    b = browser()
    assert "X-Robots-Tag" not in b.get(room_webinar.url)  # public teaser
    assert "noindex" in b.get(link_path(anna))["X-Robots-Tag"]
    claim(b, anna)
    room = b.get(room_webinar.url)
    assert ROOM_WORD in room.content.decode()
    assert "noindex" in room["X-Robots-Tag"]


def test_hidden_teaser_has_noindex(client, room_webinar):
    room_webinar.hide_from_search_engines = True
    room_webinar.save_revision().publish()
    response = client.get(room_webinar.url)
    assert "noindex" in response["X-Robots-Tag"]
    assert '<meta name="robots" content="noindex">' in response.content.decode()


def test_throttled_and_expired_headers(browser, password_webinar):
    link = make_link(password_webinar)
    b = browser()
    claim(b, link)
    for _ in range(5):
        enter_password(b, password_webinar, "nope")
    throttled = enter_password(b, password_webinar, "nope")
    assert throttled.status_code == 429
    assert_never_cached(throttled)
    assert "Retry-After" in throttled
    PersonalLink.objects.filter(pk=link.pk).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    expired = b.get(password_webinar.url)
    assert expired.status_code == 403
    assert_never_cached(expired)


def test_confirm_page_has_no_third_party_assets(browser, anna):
    body = browser().get(link_path(anna)).content.decode()
    for marker in ("http://", "https://", "//cdn", "fonts.googleapis"):
        # The only absolute URLs allowed would be our own; there are none.
        assert f'src="{marker}' not in body
        assert f'href="{marker}' not in body


def _ungated(monkeypatch):
    """Serve WebinarPages with the gate bypassed, room shown (the bench baseline)."""

    def passthrough(page, request, callback, args, kwargs):
        request.paidwebinar_room = True
        return callback(page, request, args, kwargs)

    monkeypatch.setattr(gate, "serve_webinar", passthrough)


@pytest.mark.parametrize("with_password", [False, True])
def test_granted_request_adds_at_most_one_query(
    browser, room_webinar, password_webinar, monkeypatch, with_password
):
    webinar = password_webinar if with_password else room_webinar
    link = make_link(webinar)
    b = browser()
    claim(b, link)
    if with_password:
        enter_password(b, webinar, "kawa123")
    b.get(webinar.url)  # warm caches (site root paths, templates)

    with CaptureQueriesContext(connection) as gated:
        response = b.get(webinar.url)
    assert ROOM_WORD in response.content.decode()

    with monkeypatch.context() as m:
        _ungated(m)
        with CaptureQueriesContext(connection) as ungated:
            baseline = b.get(webinar.url)
    assert ROOM_WORD in baseline.content.decode()
    assert len(gated) <= len(ungated) + 1, [q["sql"] for q in gated.captured_queries]


def test_granted_request_query_count(browser, room_webinar, django_assert_num_queries):
    link = make_link(room_webinar)
    b = browser()
    claim(b, link)
    b.get(room_webinar.url)
    with CaptureQueriesContext(connection) as ctx:
        b.get(room_webinar.url)
    # The gate's own query: the device row joined with its link, by the hash index.
    gate_queries = [q["sql"] for q in ctx.captured_queries if "linkdevice" in q["sql"]]
    assert len(gate_queries) == 1
    with django_assert_num_queries(len(ctx)):
        b.get(room_webinar.url)


def test_claim_writes_only_the_gates_rows_while_it_holds_the_link_lock(
    browser, anna, room_webinar
):
    """The claim's transaction holds the link's row lock (every other claim of the
    link waits for it): it counts the slots and writes the device, the link's
    stamps and the attendance record, nothing else. It used to save() the link,
    which made Wagtail re-read it and rewrite its reference index inside the lock
    (found by bench/gate_load.py)."""
    b = browser()
    b.get(link_path(anna))
    with CaptureQueriesContext(connection) as ctx:
        response = claim(b, anna)
    assert response.status_code == 302
    sql = [q["sql"] for q in ctx.captured_queries]
    assert not [q for q in sql if "referenceindex" in q], sql
    link_statements = [q for q in sql if '"wagtail_paidwebinar_personallink"' in q]
    # load_link (the token), the locked read, the stamps' UPDATE.
    assert len(link_statements) == 3, link_statements
    anna.refresh_from_db()
    assert anna.claimed_at is not None
    assert anna.last_seen_at == anna.claimed_at
