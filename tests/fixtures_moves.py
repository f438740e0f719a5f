"""Fixtures and helpers of the "move to this device" tests: a link with an
address held by one browser, and the steps a second browser takes to move it."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from tests.fixtures_gate import ROOM_WORD, UA, claim, link_path, make_link

CODE_RE = re.compile(r"^\s+(\d{6})\s*$", re.M)


@pytest.fixture
def holder(room_webinar):
    return make_link(
        room_webinar,
        "Anna Nowak",
        email="anna.nowak@example.org",
        email_normalized="anna.nowak@example.org",
    )


@pytest.fixture
def old_browser(holder):
    """The browser that claimed the link first."""
    client = Client(HTTP_USER_AGENT=f"{UA} old")
    assert claim(client, holder).status_code == 302
    assert ROOM_WORD in client.get(holder.webinar.url).content.decode()
    return client


def request_code(client, link, capture) -> str:
    """In-use page, then "E-mail a code"; returns the code from the e-mail."""
    refused = client.get(link_path(link))
    assert refused.status_code == 403
    sent = len(mail.outbox)
    with capture(execute=True):
        response = client.post(link_path(link), {"pw_action": "move_request"})
    assert response.status_code == 200, response.content
    assert "a•••@example.org" in response.content.decode()
    assert "anna.nowak@example.org" not in response.content.decode()
    assert len(mail.outbox) == sent + 1
    return CODE_RE.search(mail.outbox[-1].body).group(1)


def enter(client, link, code: str):
    return client.post(
        link_path(link), {"pw_action": "move_confirm", "move_code": code}
    )
