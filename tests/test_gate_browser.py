"""The gate in a real browser (Debian's chromium driven by Playwright): two browser
contexts are two people; CSRF, cookies, Referrer-Policy and redirects as a browser
really handles them."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from django.db import connections

from tests.fixtures_gate import ROOM_WORD, make_link, room_blocks
from tests.utils import make_index, make_webinar
from wagtail_paidwebinar import actions
from wagtail_paidwebinar.models import AccessEvent, AccessEventKind

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
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


ROTATE_AFTER, GRACE = 4, 1


def test_copied_device_cookie_is_out_within_the_rotation_interval(
    live_server, chromium, settings
):
    """Issue 10: two Chromium contexts sharing one device cookie; after one rotation
    interval and the grace (seconds here) exactly one keeps the room. One context
    with two tabs stays in all along."""
    settings.WAGTAIL_PAIDWEBINAR_DEVICE_ROTATE_AFTER = ROTATE_AFTER
    settings.WAGTAIL_PAIDWEBINAR_DEVICE_ROTATE_GRACE = GRACE
    webinar = make_webinar(
        make_index(),
        title="Rotation webinar",
        slug="rotation-webinar",
        room=room_blocks(),
    )
    link = make_link(webinar, "Anna Nowak")
    clean_url = f"{live_server.url}{webinar.url}"

    anna = chromium.new_context().new_page()
    anna.goto(f"{clean_url}?access={link.token}")
    anna.get_by_role("button", name="Join as Anna Nowak").click()
    anna.wait_for_url(clean_url)
    assert ROOM_WORD in anna.content()

    # The device cookie copied into another browser (an export, a profile copy).
    friend_context = chromium.new_context(viewport={"width": 1000, "height": 640})
    device = [c for c in anna.context.cookies() if c["name"] == "paidwebinar_device"]
    friend_context.add_cookies(device)
    friend = friend_context.new_page()
    friend.goto(clean_url)
    assert ROOM_WORD in friend.content()

    time.sleep(ROTATE_AFTER + 0.2)
    anna.reload()  # rotates the credential (unless the friend's first view did)
    time.sleep(GRACE + 0.5)
    # Whoever rotated first holds the current secret; the other one's secret was
    # rotated away: it is out, and the link is flagged.
    responses = {"anna": anna.reload(), "friend": friend.reload()}
    inside = [
        name
        for name, tab in (("anna", anna), ("friend", friend))
        if ROOM_WORD in tab.content()
    ]
    assert len(inside) == 1, inside
    loser = friend if inside == ["anna"] else anna
    assert responses["friend" if loser is friend else "anna"].status == 403
    assert "being used in another browser" in loser.content()
    loser.screenshot(path=str(SCREENSHOTS / "visitor-refused-copied-cookie.png"))
    assert AccessEvent.objects.filter(
        link=link, kind=AccessEventKind.REUSE_DETECTED
    ).exists()

    # The winner opens a second tab; both tabs keep the room across several
    # rotations, including requests sent from both tabs at once.
    first_tab = anna if loser is friend else friend
    second_tab = first_tab.context.new_page()
    second_tab.goto(clean_url)
    for _ in range(3):
        time.sleep(ROTATE_AFTER + 0.2)
        first_tab.evaluate("location.reload()")  # do not wait: both tabs in flight
        second_tab.reload()
        first_tab.wait_for_load_state()
        assert ROOM_WORD in first_tab.content()
        assert ROOM_WORD in second_tab.content()
    time.sleep(GRACE + 0.5)
    for tab in (first_tab, second_tab):
        tab.reload()
        assert ROOM_WORD in tab.content()
