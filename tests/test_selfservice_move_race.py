"""Simultaneous moves of one link to new browsers: exactly one wins (PostgreSQL)."""

from __future__ import annotations

import re
import threading

import pytest
from django.core import mail
from django.db import connection, connections
from django.test import Client

from tests.fixtures_gate import UA, claim, link_path, make_link
from tests.utils import make_webinar
from wagtail_paidwebinar.models import DeviceMove, LinkDevice

BROWSERS = 8
CODE_RE = re.compile(r"^\s+(\d{6})\s*$", re.M)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.usefixtures("clear_gate_cache"),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks (select_for_update) need PostgreSQL; "
        "set DATABASE_URL=postgres://... to run",
    ),
]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_simultaneous_moves_leave_exactly_one_bound_browser(
    index, invitations_queue, settings
):
    settings.WAGTAIL_PAIDWEBINAR_MOVE_CODES_PER_LINK = BROWSERS
    webinar = make_webinar(index, title="Move race", slug="move-race")
    link = make_link(
        webinar, email="anna@example.org", email_normalized="anna@example.org"
    )
    old = Client(HTTP_USER_AGENT=f"{UA} old")
    assert claim(old, link).status_code == 302
    # Every new browser asks for its own code (each e-mailed to the holder).
    browsers, codes = [], []
    for i in range(BROWSERS):
        browser = Client(HTTP_USER_AGENT=f"{UA} #{i}")
        assert browser.get(link_path(link)).status_code == 403
        assert (
            browser.post(link_path(link), {"pw_action": "move_request"}).status_code
            == 200
        )
        browsers.append(browser)
        codes.append(CODE_RE.search(mail.outbox[-1].body).group(1))
    assert len(set(codes)) > 1  # the codes are per request, not per link

    barrier = threading.Barrier(BROWSERS)
    results: list = [None] * BROWSERS

    def one(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = (
                browsers[i]
                .post(
                    link_path(link),
                    {"pw_action": "move_confirm", "move_code": codes[i]},
                )
                .status_code
            )
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[i] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(BROWSERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert results.count(302) == 1, results
    assert results.count(400) == BROWSERS - 1, results
    winner = results.index(302)
    devices = list(LinkDevice.objects.filter(link=link))
    assert [d.user_agent for d in devices] == [f"{UA} #{winner}"]
    assert DeviceMove.objects.filter(link=link, moved_at__isnull=False).count() == 1
    # Every other code died with the winning move.
    assert not DeviceMove.objects.filter(link=link, moved_at=None, voided_at=None)
    # The winner is in, everyone else (the old browser included) is not.
    page = webinar.url
    assert browsers[winner].get(page).context["room_visible"] is True
    for i, browser in enumerate([old, *browsers]):
        if browser is not browsers[winner]:
            assert not browser.get(page).context.get("room_visible"), i
