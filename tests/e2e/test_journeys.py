"""Real-browser journeys (issue 6): an editor sets a webinar up and invites people,
a visitor joins with the link from the delivered e-mail, a second browser is refused,
a revoked link stops working, and the public sees the teaser only.

Run: ``pytest tests/e2e -m browser`` (add DATABASE_URL + REDIS_URL for the real RQ
worker; PAIDWEBINAR_SCREENSHOTS=<folder> keeps the screenshots).
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from tests.e2e.a11y import assert_accessible_basics, contrast_failures
from tests.utils import admin_url, make_webinar
from wagtail_paidwebinar.actions import generate_links
from wagtail_paidwebinar.models import PersonalLink, WebinarPage

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips (or fails in CI) with the reason
    expect = None

pytestmark = [
    pytest.mark.browser,
    # serialized_rollback: the flush after a transactional test would otherwise
    # delete Wagtail's root page and default Site for the tests that follow.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

SECRET = "kalafiorowy"  # a word that only appears in the room
PASSWORD = "kawa123"
PARTICIPANTS = """\
Anna Nowak <anna.nowak@example.org>
Zażółć Gęślą-Jaźń, zazolc@example.org
John O'Brien & Sons <john@example.org>
Marie Curie, marie@example.org
Łukasz Wiśniewski <lukasz@example.org>
"""
SUBSCRIBERS_CSV = """\
name,email
Ewa Kowalska,ewa.kowalska@example.org
Anna Nowak,ANNA.NOWAK@example.org
"""
ANNA = "anna.nowak@example.org"


def admin_login(page, site) -> None:
    page.goto("/admin/login/")
    page.fill("input[name=username]", site.admin.username)
    page.fill("input[name=password]", site.admin_password)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/admin/$"))


def menu(page, *labels: str) -> None:
    """Follow the Wagtail sidebar: ``menu(page, "Webinars", "Subscribers")``."""
    sidebar = page.locator("[data-wagtail-sidebar], aside, nav").first
    for label in labels:
        sidebar.get_by_role("link", name=label, exact=True).or_(
            sidebar.get_by_role("button", name=label, exact=True)
        ).first.click()


def create_webinar_in_editor(page, site, shots) -> WebinarPage:
    """Teaser, Room and Access tabs of the page editor, then Publish."""
    page.goto(f"/admin/pages/add/wagtail_paidwebinar/webinarpage/{site.index.pk}/")
    page.fill("#id_title", "Fast Django in production")
    page.locator("[data-contentpath=intro] [role=textbox]").click()
    page.keyboard.type("Ninety minutes on measuring and speeding up Django sites.")
    page.fill("#id_starts_at", "2030-01-15 18:00")
    page.keyboard.press("Tab")  # closes the date picker, which covers the tabs
    page.click("#id_title")

    page.click("#tab-label-room")
    page.locator("#tab-room .c-sf-add-button").first.click()
    page.get_by_role("option", name="Text").click()
    page.locator("#tab-room [role=textbox]").first.click()
    page.keyboard.type(f"Welcome! Today's secret word is {SECRET}.")

    page.click("#tab-label-access")
    page.fill("#id_room_password", PASSWORD)
    sharing = page.locator("#id_allow_link_sharing")
    expect(sharing).not_to_be_checked()  # the default: the page URL alone admits no one
    shots(page, "01-page-editor-access")

    page.click("#tab-label-promote")
    page.fill("#id_slug", "fast-django")
    page.get_by_role("button", name="More actions").click()
    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".messages")).to_contain_text("published")

    webinar = WebinarPage.objects.get(slug="fast-django")
    assert webinar.live
    assert webinar.room_password == PASSWORD
    assert not webinar.allow_link_sharing
    assert SECRET in str(webinar.room.raw_data)
    return webinar


def generate_five_links(page, site, webinar, shots) -> str:
    """Webinars → Personal links → Generate links; returns the URL "Copy" copies."""
    menu(page, "Webinars", "Personal links")
    page.get_by_role("link", name="Generate links").click()
    page.select_option("#id_webinar", str(webinar.pk))
    page.fill("#id_names", PARTICIPANTS)
    shots(page, "02-generate-links")
    page.locator("main form button[type=submit]").click()

    expect(page.get_by_text("5 new links were created.")).to_be_visible()
    expect(page.locator("#links tbody tr")).to_have_count(5)
    # Escaped, not interpreted: the ampersand and apostrophe show as typed.
    expect(page.locator("#links")).to_contain_text("John O'Brien & Sons")
    shots(page, "03-generate-result")

    row = page.locator("#links tbody tr", has_text="Anna Nowak")
    url = row.locator("code.pw-link-url").inner_text().strip()
    copy = row.get_by_role("button", name="Copy")
    expect(copy).to_be_visible()
    copy.click()
    try:  # headless chromium may refuse clipboard access: the DOM is the fallback
        copied = page.evaluate("() => navigator.clipboard.readText()")
    except Exception:  # noqa: BLE001
        copied = None
    if copied:
        assert copied == url
    assert url.startswith(f"{site.url}{webinar.url}?access="), url
    return url


def import_subscribers(page, shots) -> None:
    """Webinars → Subscribers → Import CSV, into a new list."""
    menu(page, "Webinars", "Subscribers")
    page.get_by_role("link", name=re.compile("Import", re.I)).first.click()
    page.fill("#id_text", SUBSCRIBERS_CSV)
    page.fill("#id_new_list_name", "Paid on the website")
    page.locator("main form button[type=submit]").click()
    expect(page.locator("body")).to_contain_text(
        re.compile(r"Imported \d+ new subscribers?")
    )
    shots(page, "04-subscribers-imported")
    # The form is empty again; the people are in the listing.
    expect(page.locator("#id_text")).to_have_value("")
    menu(page, "Webinars", "Subscribers")
    expect(page.locator("main")).to_contain_text("Ewa Kowalska")


def send_invitation(page, webinar, delivery, shots) -> None:
    """Webinars → Mailings → Add, then Send… and watch the progress bar."""
    menu(page, "Webinars", "Mailings")
    page.get_by_role("link", name=re.compile(r"^Add")).first.click()
    page.get_by_role("button", name="Choose a page (Webinar)").click()
    page.locator(".modal-dialog").get_by_role("link", name=webinar.title).click()
    expect(page.locator("#id_webinar-title")).to_have_text(webinar.title)
    expect(page.locator("#id_include_link_holders")).to_be_checked()
    page.select_option("#id_subscriber_list", label="Paid on the website")
    page.fill("#id_subject", "Your seat at Fast Django in production")
    page.locator("[data-contentpath=body_html] [role=textbox]").click()
    page.keyboard.type("Hello {{ name }}, see you on {{ starts_at }}!")
    # Draftail copies its content into the form field a moment after the last key
    # (a person never clicks Save that fast; a test does).
    expect(page.locator("input[name=body_html]")).to_have_value(re.compile("Hello"))
    page.locator("main form button[type=submit]").last.click()

    page.get_by_role("link", name="Send…").click()
    # 5 link holders + Ewa; Anna is both and gets one e-mail (case-insensitive).
    send = page.get_by_role("button", name="Send to 6 recipients")
    expect(send).to_be_visible()
    send.click()

    # A worker subprocess may still be importing Django when the button is pressed.
    wait_ms = 60_000 if delivery.mode == "worker" else 10_000
    try:
        expect(page.locator("[data-pw-count=percent]")).to_have_text(
            "100", timeout=wait_ms
        )
    except AssertionError as exc:
        worker_log = delivery.worker.log() if delivery.worker else "(inline queue)"
        raise AssertionError(f"{exc}\n--- RQ worker log ---\n{worker_log}") from exc
    expect(page.locator("[role=progressbar]")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("[data-pw-count=sent]")).to_have_text("6")
    # When the poller sees the end it reloads the page once: wait for that, so the
    # buttons and the recipient log show the final state too.
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    expect(page.locator(".pw-status--sent")).to_have_count(6)
    shots(page, "05-mailing-progress")


def test_editor_invites_and_visitor_joins(e2e_site, browsers, delivery, shots):
    site = e2e_site
    editor = browsers.new_page(clipboard=True)
    admin_login(editor, site)
    webinar = create_webinar_in_editor(editor, site, shots)
    copied_url = generate_five_links(editor, site, webinar, shots)
    import_subscribers(editor, shots)
    send_invitation(editor, webinar, delivery, shots)

    # Every recipient got exactly one e-mail, each with their own link.
    assert sorted(delivery.smtp.by_recipient()) == sorted(
        [ANNA, "zazolc@example.org", "john@example.org", "marie@example.org"]
        + ["lukasz@example.org", "ewa.kowalska@example.org"]
    )
    assert set(delivery.smtp.by_recipient().values()) == {1}
    link_url = delivery.personal_link(ANNA)
    assert link_url == copied_url
    (message,) = delivery.messages_to(ANNA)
    assert message["Subject"] == "Your seat at Fast Django in production"
    html = message.get_body(preferencelist=("html",)).get_content()
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert link_url in html
    assert "Hello Anna Nowak" in text  # the {{ name }} merge field
    assert PASSWORD in text and PASSWORD in html  # the room password goes along
    assert delivery.personal_link("ewa.kowalska@example.org").startswith(
        f"{site.url}{webinar.url}?access="
    )

    # --- the visitor opens the link from the e-mail ---------------------------
    visitor = browsers.new_page()
    response = visitor.goto(link_url)
    assert response.status == 200
    expect(visitor.get_by_role("button", name="Join as Anna Nowak")).to_be_visible()
    expect(visitor.locator("body")).not_to_contain_text(SECRET)
    assert_accessible_basics(visitor)
    shots(visitor, "06-confirm")
    # Keyboard only: Tab to the button, Enter presses it.
    join = visitor.get_by_role("button", name="Join as Anna Nowak")
    for _ in range(20):
        visitor.keyboard.press("Tab")
        if join.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail("the Join button cannot be reached with the Tab key")
    # Focused, the button still has enough contrast (its :focus-visible style).
    assert not contrast_failures(visitor, ".pw-button")
    visitor.keyboard.press("Enter")

    # Claimed: redirected to the clean URL (no token), asked for the password.
    visitor.wait_for_url(f"{site.url}{webinar.url}")
    password = visitor.get_by_label("Password", exact=True)
    expect(password).to_be_visible()
    assert_accessible_basics(visitor)
    shots(visitor, "07-password")
    password.fill("not the password")
    visitor.get_by_role("button", name="Enter the room").click()
    expect(visitor.get_by_role("alert")).to_contain_text("not right")
    assert_accessible_basics(visitor)
    visitor.get_by_label("Password", exact=True).fill(PASSWORD)
    visitor.get_by_label("Password", exact=True).press("Enter")  # keyboard submit
    expect(visitor.get_by_role("heading", name="Webinar room")).to_be_visible()
    expect(visitor.locator(".pw-room")).to_contain_text(SECRET)
    assert_accessible_basics(visitor)
    shots(visitor, "08-room")

    # --- the same link in another browser is refused ----------------------------
    stranger = browsers.new_page()
    response = stranger.goto(link_url)
    assert response.status == 403
    expect(stranger.locator("#pw-gate-title")).to_have_text(
        "This link is already in use on another device"
    )
    expect(stranger.locator("body")).not_to_contain_text(SECRET)
    # No way in but moving the link here with a code e-mailed to its owner.
    buttons = stranger.locator("form button[type=submit]")
    assert buttons.count() == 1
    expect(buttons).to_have_text(re.compile(r"^E-mail a code to a•••@"))
    assert_accessible_basics(stranger)
    shots(stranger, "09-refused-in-use")

    # --- the editor revokes the link; the visitor's next page load is refused ----
    link = PersonalLink.objects.get(webinar=webinar, email_normalized=ANNA)
    editor.goto(f"{admin_url(PersonalLink, 'list')}?webinar={webinar.pk}")
    row = editor.locator("tr", has_text="Anna Nowak")
    row.get_by_role("button", name=re.compile("More options")).click()
    editor.get_by_role("link", name="Revoke").click()
    editor.locator("main form button[type=submit]").click()
    expect(editor.locator(".messages")).to_be_visible()
    link.refresh_from_db()
    assert link.revoked_at is not None and link.revoked_at <= timezone.now()

    # A revoked link looks like no link at all: the clean URL shows the teaser...
    response = visitor.reload()
    assert response.status == 200
    expect(visitor.locator(".pw-locked")).to_be_visible()
    expect(visitor.locator(".pw-room")).to_have_count(0)
    expect(visitor.locator("body")).not_to_contain_text(SECRET)
    assert_accessible_basics(visitor)
    # ...and the link from the e-mail is refused like a forged one.
    response = visitor.goto(link_url)
    assert response.status == 403
    expect(visitor.locator("#pw-gate-title")).to_have_text("This link does not work")
    expect(visitor.locator("body")).not_to_contain_text(SECRET)
    assert_accessible_basics(visitor)
    shots(visitor, "10-refused-revoked")

    # The site search never finds the page by a word that is only in its room.
    visitor.goto("/search/?query=measuring")  # a teaser word: the search works
    expect(visitor.locator("body")).to_contain_text(webinar.title)
    visitor.goto(f"/search/?query={SECRET}")
    expect(visitor.locator("body")).not_to_contain_text(webinar.title)

    assert not browsers.page_errors


def test_public_sees_the_teaser_only_and_search_hides_the_room(
    e2e_site, browsers, shots
):
    webinar = make_webinar(
        e2e_site.index,
        title="Postgres for Django developers",
        starts_at=dt.datetime(2030, 3, 5, 17, 0, tzinfo=dt.UTC),
        intro="<p>Indexes, locks and vacuum, explained with cats.</p>",
        room=[{"type": "text", "value": f"<p>The room word is {SECRET}.</p>"}],
        room_password=PASSWORD,
    )
    # A personal link exists, so the page is not "empty" of access either.
    generate_links(webinar, "Anna Nowak <anna@example.org>")

    public = browsers.new_page()
    response = public.goto(webinar.url)
    assert response.status == 200
    expect(public.locator(".pw-teaser")).to_contain_text("explained with cats")
    expect(public.locator("body")).not_to_contain_text(SECRET)
    expect(public.locator(".pw-room")).to_have_count(0)
    assert_accessible_basics(public)
    shots(public, "11-public-teaser")

    # A wrong token looks like any refusal and shows no room.
    response = public.goto(f"{webinar.url}?access=1.forged-token")
    expect(public.locator("body")).not_to_contain_text(SECRET)
    assert response.status in (403, 404)
    assert_accessible_basics(public)

    # Search finds the teaser (so the search works) but never the room's words.
    public.goto("/search/?query=cats")
    expect(public.locator("main, body").first).to_contain_text(
        "Postgres for Django developers"
    )
    public.goto(f"/search/?query={SECRET}")
    expect(public.locator("body")).not_to_contain_text("Postgres for Django developers")
    expect(public.locator("body")).not_to_contain_text(SECRET + ".")

    assert not browsers.page_errors


def test_generate_links_page_has_no_javascript_errors(e2e_site, browsers):
    """E2E-1 (docs/notes/e2e_bugs.md): the expiry date picker's script was missing."""
    editor = browsers.new_page()
    admin_login(editor, e2e_site)
    editor.goto(admin_url(PersonalLink, "generate"))
    editor.click("#id_expires_at")
    expect(editor.locator(".xdsoft_datetimepicker").first).to_be_visible(timeout=3000)
    assert not browsers.page_errors
