"""Lost link and move to this device with a real RQ worker and a real SMTP server
(aiosmtpd): the e-mails leave through the worker, as on a production site.

Run with DATABASE_URL=postgres://... and REDIS_URL=redis://... (skipped otherwise:
the worker subprocess must see the test database)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from tests.fixtures_gate import ROOM_WORD, UA, claim, link_path, make_link
from tests.fixtures_mailing import wait_for
from wagtail_paidwebinar.models import DeviceMove, LinkDevice

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("clear_gate_cache"),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the worker needs the test database on PostgreSQL",
    ),
]

CODE_RE = re.compile(r"^\s+(\d{6})\s*$", re.M)


def plain_text(message) -> str:
    return message.get_body(("plain",)).get_content()


def ask_lost_link(page, email: str) -> None:
    url = reverse("wagtail_paidwebinar:lost_link", args=[page.pk])
    client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=UA)
    client.get(url)
    response = client.post(
        url, {"email": email, "csrfmiddlewaretoken": client.cookies["csrftoken"].value}
    )
    assert response.status_code == 200, response.content


def test_lost_link_arrives_through_a_real_worker_for_known_addresses_only(
    room_webinar, rq_worker, smtp_server
):
    anna = make_link(
        room_webinar,
        "Anna Nowak",
        email="anna.nowak@example.org",
        email_normalized="anna.nowak@example.org",
    )
    other = make_link(
        room_webinar,
        "Jan Kowalski",
        email="jan@example.org",
        email_normalized="jan@example.org",
    )
    # The unknown address first: one worker takes jobs in order, so when Anna's
    # e-mail is in, the unknown address's job has run too.
    ask_lost_link(room_webinar, "nobody@example.org")
    ask_lost_link(room_webinar, "ANNA.nowak@example.org")
    worker = rq_worker()
    wait_for(
        lambda: smtp_server.by_recipient().get("anna.nowak@example.org"),
        timeout=120,
        message=worker.log(),
    )
    worker.stop()
    assert smtp_server.by_recipient() == {"anna.nowak@example.org": 1}
    text = plain_text(smtp_server.messages[0])
    assert anna.get_url() in text
    assert other.get_url() not in text


def test_move_code_arrives_through_a_real_worker_and_works(
    room_webinar, rq_worker, smtp_server
):
    link = make_link(
        room_webinar,
        "Anna Nowak",
        email="anna.nowak@example.org",
        email_normalized="anna.nowak@example.org",
    )
    old = Client(HTTP_USER_AGENT=f"{UA} old")
    assert claim(old, link).status_code == 302
    new = Client(HTTP_USER_AGENT=f"{UA} new")
    assert new.get(link_path(link)).status_code == 403
    asked = new.post(link_path(link), {"pw_action": "move_request"})
    assert asked.status_code == 200
    worker = rq_worker()
    wait_for(lambda: smtp_server.messages, timeout=120, message=worker.log())
    worker.stop()
    assert smtp_server.by_recipient() == {"anna.nowak@example.org": 1}
    message = smtp_server.messages[0]
    assert room_webinar.title in message["Subject"]
    text = plain_text(message)
    assert "someone asked to move your access" in text
    assert f"from this browser: {UA} new." in text
    code = CODE_RE.search(text).group(1)
    moved = new.post(link_path(link), {"pw_action": "move_confirm", "move_code": code})
    assert moved.status_code == 302
    assert ROOM_WORD in new.get(room_webinar.url).content.decode()
    gone = old.get(room_webinar.url)
    assert "Your access moved to another browser" in gone.content.decode()
    assert LinkDevice.objects.filter(link=link).count() == 1
    assert DeviceMove.objects.filter(link=link, moved_at__isnull=False).count() == 1
