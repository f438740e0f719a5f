"""The live progress bar in a real browser (Debian's chromium driven by Playwright):
counts move without a reload while the worker sends, and the page reloads once when
the mailing is done."""

from __future__ import annotations

import shutil

import pytest
from django.db import connections
from django.test import Client

from tests.utils import admin_url, make_index, make_user, make_webinar
from wagtail_paidwebinar.actions import generate_links
from wagtail_paidwebinar.mailing import create_mailing
from wagtail_paidwebinar.models import (
    Mailing,
    MailingRecipient,
    MailingStatus,
    RecipientStatus,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    # serialized_rollback: the flush after a transactional test removes the Site and
    # root page that migrations created; restore them for the next test.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not CHROMIUM, reason="chromium is not installed"),
]


def sent(mailing, count):
    rows = MailingRecipient.objects.filter(
        mailing=mailing, status=RecipientStatus.PENDING
    )
    ids = list(rows.values_list("pk", flat=True)[:count])
    MailingRecipient.objects.filter(pk__in=ids).update(status=RecipientStatus.SENT)


def test_progress_bar_updates_live(live_server, monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM calls below
    # are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    webinar = make_webinar(make_index())
    generate_links(webinar, "\n".join(f"P{i} <p{i}@example.org>" for i in range(4)))
    mailing = create_mailing(webinar, subject="Live", body_html="<p>Hi</p>")
    # A mailing in flight, as a worker leaves it (no worker runs here: the test
    # plays the worker by updating the ledger).
    MailingRecipient.objects.bulk_create(
        MailingRecipient(
            mailing=mailing,
            email=f"p{i}@example.org",
            email_normalized=f"p{i}@example.org",
            name=f"P{i}",
        )
        for i in range(4)
    )
    Mailing.objects.filter(pk=mailing.pk).update(status=MailingStatus.SENDING)

    client = Client()
    client.force_login(make_user("live", superuser=True))
    session = client.cookies["sessionid"].value
    url = live_server.url + admin_url("mailing", "detail", mailing.pk)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context()
            context.add_cookies(
                [{"name": "sessionid", "value": session, "url": live_server.url}]
            )
            page = context.new_page()
            page.goto(url)
            page.evaluate("window.__sameDocument = true")
            assert page.text_content('[data-pw-count="sent"]') == "0"

            sent(mailing, 2)
            page.wait_for_function(
                "document.querySelector('[data-pw-count=sent]').textContent === '2'",
                timeout=8000,
            )
            assert page.evaluate("window.__sameDocument === true")  # no reload
            width = page.evaluate(
                "document.querySelector('[data-pw-bar=\"sent\"]').style.width"
            )
            assert width == "50%"
            assert page.get_attribute('[role="progressbar"]', "aria-valuenow") == "50"

            sent(mailing, 2)
            Mailing.objects.filter(pk=mailing.pk).update(status=MailingStatus.DONE)
            # Finished: the page reloads itself once to show the final state.
            page.wait_for_function("window.__sameDocument !== true", timeout=10000)
            page.wait_for_load_state("load")
            assert page.get_attribute("[data-pw-progress]", "data-pw-finished") == "1"
            assert page.text_content('[data-pw-count="sent"]') == "4"
            page.goto("about:blank")  # no request left in flight at teardown
        finally:
            browser.close()
            # Inside sync_playwright() the ORM runs in Playwright's greenlet, whose
            # context gets its own database connection: close it, or PostgreSQL
            # cannot drop the test database afterwards.
            connections.close_all()
