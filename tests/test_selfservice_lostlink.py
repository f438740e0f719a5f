"""Lost link (issue 16 item 3): a participant asks for their invitation again.

The answer must not tell whether the address has a link (compared byte for byte),
the e-mail goes to known addresses only, and the form is throttled per client
network and per address. Embedded default: inline queue, locmem e-mail."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.fixtures_gate import UA, make_link
from tests.utils import make_webinar
from wagtail_paidwebinar.mailing.invitations import ACTION_INVITE
from wagtail_paidwebinar.models import Mailing

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clear_gate_cache")]

CSRF_RE = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]*"')


def lost_url(page) -> str:
    return reverse("wagtail_paidwebinar:lost_link", args=[page.pk])


@pytest.fixture
def holder(room_webinar):
    return make_link(
        room_webinar,
        "Anna Nowak",
        email="Anna.Nowak@Example.org",
        email_normalized="anna.nowak@example.org",
    )


def ask(client: Client, page, email: str, capture, **extra):
    """POST the form as a browser would (GET first for the CSRF token)."""
    client.get(lost_url(page), **extra)
    token = client.cookies["csrftoken"].value
    with capture(execute=True):
        return client.post(
            lost_url(page), {"email": email, "csrfmiddlewaretoken": token}, **extra
        )


def test_known_and_unknown_addresses_get_the_same_bytes(
    room_webinar, holder, invitations_queue, django_capture_on_commit_callbacks
):
    known = ask(
        Client(enforce_csrf_checks=True, HTTP_USER_AGENT=UA),
        room_webinar,
        " ANNA.nowak@example.org ",
        django_capture_on_commit_callbacks,
    )
    unknown = ask(
        Client(enforce_csrf_checks=True, HTTP_USER_AGENT=UA),
        room_webinar,
        "nobody@example.org",
        django_capture_on_commit_callbacks,
    )
    assert known.status_code == unknown.status_code == 200
    assert CSRF_RE.sub(b"", known.content) == CSRF_RE.sub(b"", unknown.content)
    assert b"Check your inbox" in known.content
    # Same headers that matter, never cached, no link in the page.
    for response in (known, unknown):
        assert "no-store" in response["Cache-Control"]
        assert "private" in response["Cache-Control"]
        assert holder.token.encode() not in response.content
        assert b"access=" not in response.content
    assert set(known.headers) == set(unknown.headers)
    # Only the known address got an e-mail: its invitation, with its link.
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["Anna Nowak <Anna.Nowak@Example.org>"]
    assert holder.get_url() in mail.outbox[0].body
    assert Mailing.objects.filter(invitation_link=holder).count() == 1


def test_resends_even_after_the_first_invitation(
    room_webinar, holder, invitations_queue, django_capture_on_commit_callbacks
):
    from wagtail_paidwebinar.mailing import send_invitation

    with django_capture_on_commit_callbacks(execute=True):
        send_invitation(holder)
    ask(
        Client(),
        room_webinar,
        "anna.nowak@example.org",
        django_capture_on_commit_callbacks,
    )
    assert len(mail.outbox) == 2
    from wagtail.models.audit_log import ModelLogEntry

    entries = ModelLogEntry.objects.filter(
        action=ACTION_INVITE, object_id=str(holder.pk)
    )
    assert [e.data["resend"] for e in entries.order_by("pk")] == [False, True]


def test_revoked_or_other_webinars_links_get_nothing(
    index, room_webinar, holder, invitations_queue, django_capture_on_commit_callbacks
):
    other = make_webinar(index, title="Other", slug="other")
    make_link(other, "Ewa", email="ewa@example.org", email_normalized="ewa@example.org")
    from django.utils import timezone

    holder.revoked_at = timezone.now()
    holder.save()
    for email in ("anna.nowak@example.org", "ewa@example.org"):
        response = ask(
            Client(), room_webinar, email, django_capture_on_commit_callbacks
        )
        assert response.status_code == 200
    assert mail.outbox == []


def test_csrf_required(room_webinar, holder, invitations_queue):
    client = Client(enforce_csrf_checks=True)
    response = client.post(lost_url(room_webinar), {"email": "anna.nowak@example.org"})
    assert response.status_code == 403
    assert mail.outbox == []


def test_get_changes_nothing_and_is_never_cached(room_webinar, holder, client):
    response = client.get(lost_url(room_webinar) + "?email=anna.nowak@example.org")
    assert response.status_code == 200
    assert b'name="email"' in response.content
    assert "no-store" in response["Cache-Control"]
    assert mail.outbox == []


@pytest.mark.parametrize(
    "email",
    [
        "",
        "not-an-address",
        "a@b",
        "x" * 300 + "@example.org",
        "a\x00b@example.org",
        "anna@example.org\r\nBcc: x@example.org",
    ],
)
def test_garbage_address_is_a_clear_400(
    room_webinar, holder, client, email, invitations_queue
):
    response = client.post(lost_url(room_webinar), {"email": email})
    assert response.status_code == 400
    assert b"Enter a valid e-mail address" in response.content
    assert mail.outbox == []


def test_unknown_unpublished_or_non_webinar_pages_are_404(room_webinar, index, client):
    room_webinar.unpublish()
    for page_id in (room_webinar.pk, index.pk, 999999, 2**63 + 5):
        for method in (client.get, client.post):
            response = method(
                f"/webinars/lost-link/{page_id}/", {"email": "a@example.org"}
            )
            assert response.status_code == 404, page_id
            assert b"Webinar not found" in response.content


def test_throttled_per_address(
    room_webinar,
    holder,
    invitations_queue,
    django_capture_on_commit_callbacks,
    settings,
):
    settings.WAGTAIL_PAIDWEBINAR_LOST_LINK_PER_ADDRESS = 2
    statuses = []
    for i in range(4):
        # A different client network each time: the address's own allowance.
        response = ask(
            Client(REMOTE_ADDR=f"198.51.100.{i + 1}"),
            room_webinar,
            "anna.nowak@example.org",
            django_capture_on_commit_callbacks,
            REMOTE_ADDR=f"198.51.100.{i + 1}",
        )
        statuses.append(response.status_code)
    assert statuses == [200, 200, 429, 429]
    assert len(mail.outbox) == 2
    assert int(response["Retry-After"]) > 0
    # An unknown address is throttled alike: the 429 tells nothing either.
    unknown = [
        ask(
            Client(REMOTE_ADDR=f"198.51.100.{i + 10}"),
            room_webinar,
            "nobody@example.org",
            django_capture_on_commit_callbacks,
            REMOTE_ADDR=f"198.51.100.{i + 10}",
        ).status_code
        for i in range(3)
    ]
    assert unknown == [200, 200, 429]


def test_throttled_per_client_network(
    room_webinar,
    holder,
    invitations_queue,
    django_capture_on_commit_callbacks,
    settings,
):
    settings.WAGTAIL_PAIDWEBINAR_LOST_LINK_PER_CLIENT = 3
    client = Client(HTTP_USER_AGENT=UA)
    statuses = [
        ask(
            client,
            room_webinar,
            f"x{i}@example.org",
            django_capture_on_commit_callbacks,
        ).status_code
        for i in range(3)
    ]
    # New cookies and user agent, same address: still the same client network.
    other = Client(HTTP_USER_AGENT="Other/2.0")
    blocked = ask(
        other,
        room_webinar,
        "anna.nowak@example.org",
        django_capture_on_commit_callbacks,
    )
    assert statuses == [200, 200, 200]
    assert blocked.status_code == 429
    assert b"Too many requests" in blocked.content
    assert mail.outbox == []
    # Another network is not affected.
    ok = ask(
        Client(REMOTE_ADDR="203.0.113.9"),
        room_webinar,
        "anna.nowak@example.org",
        django_capture_on_commit_callbacks,
        REMOTE_ADDR="203.0.113.9",
    )
    assert ok.status_code == 200
    assert len(mail.outbox) == 1


def test_teaser_and_refusal_pages_link_to_the_form(room_webinar, holder, browser):
    url = lost_url(room_webinar)
    assert url.encode() in browser().get(room_webinar.url).content
    refused = browser().get(f"{room_webinar.url}?access=garbage.token")
    assert refused.status_code == 403
    assert url.encode() in refused.content
    # Claimed elsewhere: the in-use page links to it too.
    first = browser()
    first.post(f"{room_webinar.url}?access={holder.token}", {"pw_action": "claim"})
    in_use = browser().get(f"{room_webinar.url}?access={holder.token}")
    assert in_use.status_code == 403
    assert url.encode() in in_use.content
    # Not in the room itself.
    assert url.encode() not in first.get(room_webinar.url).content
