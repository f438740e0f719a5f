"""The gate in a real browser (Debian's chromium driven by Playwright): two browser
contexts are two people; CSRF, cookies, Referrer-Policy and redirects as a browser
really handles them."""

from __future__ import annotations

import shutil

import pytest
from django.db import connections

from tests.fixtures_gate import ROOM_WORD, make_link, room_blocks
from tests.utils import make_index, make_webinar
from wagtail_paidwebinar import actions

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("clear_gate_cache"),
    pytest.mark.skipif(not CHROMIUM, reason="chromium is not installed"),
]


@pytest.fixture
def chromium(monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM calls in the
    # test are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
            # ORM calls made while Playwright's loop runs get their own connection
            # (Django's connections are context-local); close it, or PostgreSQL
            # cannot drop the test database at the end.
            connections.close_all()


def test_one_person_per_link_in_real_browsers(live_server, chromium):
    webinar = make_webinar(
        make_index(),
        title="Browser webinar",
        slug="browser-webinar",
        room=room_blocks(),
        room_password="kawa123",
    )
    link = make_link(webinar, "Anna Nowak")
    personal_url = f"{live_server.url}{webinar.url}?access={link.token}"
    clean_url = f"{live_server.url}{webinar.url}"

    anna = chromium.new_context().new_page()
    anna.goto(personal_url)
    anna.get_by_role("button", name="Join as Anna Nowak").click()
    anna.wait_for_url(clean_url)
    # The room password, by its label.
    anna.get_by_label("Password", exact=True).fill("kawa123")
    anna.get_by_role("button", name="Enter the room").click()
    anna.wait_for_url(clean_url)
    assert ROOM_WORD in anna.content()
    cookies = {c["name"]: c for c in anna.context.cookies()}
    assert cookies["paidwebinar_device"]["httpOnly"]
    assert cookies["paidwebinar_device"]["sameSite"] == "Lax"

    # The link forwarded to someone else.
    other = chromium.new_context().new_page()
    response = other.goto(personal_url)
    assert response.status == 403
    assert "already in use on another device" in other.content()
    assert ROOM_WORD not in other.content()

    # The organiser revokes the link: Anna is out on her next request.
    actions.revoke_link(link)
    anna.reload()
    assert ROOM_WORD not in anna.content()
