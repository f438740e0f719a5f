"""The public unsubscribe page: GET confirms, POST (also RFC 8058 one-click without
cookies) unsubscribes, bad tokens get a friendly 404."""

from __future__ import annotations

from email.utils import parseaddr
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client

from wagtail_paidwebinar.mailing import create_mailing, start_mailing, unsubscribe_url
from wagtail_paidwebinar.models import Subscriber


def path_of(subscriber: Subscriber) -> str:
    return urlsplit(unsubscribe_url(subscriber)).path


@pytest.fixture
def ewa(subscriber_list):
    return Subscriber.objects.get(email="ewa@example.com")


def assert_private(response):
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "no-referrer"
    assert "noindex" in response["X-Robots-Tag"]


def test_get_shows_a_confirm_page_and_changes_nothing(client, ewa):
    response = client.get(path_of(ewa))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Unsubscribe from our mailings?" in body
    assert 'method="post"' in body
    assert "e•••@example.com" in body  # recognisable, not spelled out
    assert_private(response)
    ewa.refresh_from_db()
    assert ewa.subscribed


def test_post_without_cookies_or_csrf_token_unsubscribes(ewa):
    client = Client(enforce_csrf_checks=True)
    response = client.post(path_of(ewa))
    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    assert_private(response)
    ewa.refresh_from_db()
    assert not ewa.subscribed and ewa.unsubscribed_at is not None
    # Idempotent: again is fine, and a later GET says so.
    assert client.post(path_of(ewa)).status_code == 200
    assert "already unsubscribed" in client.get(path_of(ewa)).content.decode()


def test_rfc8058_one_click_post(ewa):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        path_of(ewa),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    ewa.refresh_from_db()
    assert not ewa.subscribed


@pytest.mark.parametrize(
    "token",
    [
        "nonsense",
        "1.abc",
        "999999.AAAAAAAAAAAAAAAAAAAAAA",
        "x" * 500,
        "1." + "%00",
        "-1.a",
    ],
)
def test_bad_tokens_get_a_friendly_404(client, ewa, token):
    response = client.get(f"/webinars/unsubscribe/{token}/")
    assert response.status_code == 404
    assert "This unsubscribe link is not valid" in response.content.decode()
    response = client.post(f"/webinars/unsubscribe/{token}/")
    assert response.status_code == 404
    ewa.refresh_from_db()
    assert ewa.subscribed


def test_tampered_token_of_another_subscriber_is_refused(client, subscriber_list):
    ewa = Subscriber.objects.get(email="ewa@example.com")
    piotr = Subscriber.objects.get(email="piotr@example.com")
    _id, mac = path_of(ewa).rstrip("/").rsplit("/", 1)[1].split(".")
    response = client.post(f"/webinars/unsubscribe/{piotr.pk}.{mac}/")
    assert response.status_code == 404
    piotr.refresh_from_db()
    assert piotr.subscribed


def test_other_methods_are_refused(client, ewa):
    assert client.put(path_of(ewa)).status_code == 405


def test_list_unsubscribe_header_round_trip(
    webinar, subscriber_list, invitations_queue, django_capture_on_commit_callbacks
):
    """A list mailing carries List-Unsubscribe; one-click on it stops the next one."""
    first = create_mailing(
        webinar, subject="News", body_html="<p>Hi</p>", audience=subscriber_list
    )
    with django_capture_on_commit_callbacks(execute=True):
        start_mailing(first)
    to_ewa = next(m for m in mail.outbox if parseaddr(m.to[0])[1] == "ewa@example.com")
    assert to_ewa.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = to_ewa.extra_headers["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://webinars.example.com/webinars/unsubscribe/")
    response = Client(enforce_csrf_checks=True).post(
        urlsplit(link).path,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200

    mail.outbox.clear()
    second = create_mailing(
        webinar, subject="More news", body_html="<p>Hi</p>", audience=subscriber_list
    )
    with django_capture_on_commit_callbacks(execute=True):
        start_mailing(second)
    assert sorted(parseaddr(m.to[0])[1] for m in mail.outbox) == ["piotr@example.com"]
