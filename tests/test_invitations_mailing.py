"""Compose → preview → test send → send → progress, through the admin, in the
embedded default (inline queue, locmem e-mail)."""

from __future__ import annotations

import csv
import io
import re
from email.utils import parseaddr

from django.core import mail
from django.test import Client

from tests.fixtures_invitations import draftail
from tests.utils import admin_url
from wagtail_paidwebinar.models import (
    Mailing,
    MailingRecipient,
    MailingStatus,
    RecipientStatus,
)


def url(action: str, *args) -> str:
    return admin_url("mailing", action, *args)


def rcpt(message) -> str:
    return parseaddr(message.to[0])[1]


def personal_urls(links) -> dict[str, str]:
    return {link.email: link.get_url() for link in links if link.email}


def test_full_flow(
    mailing_editor_client,
    mailing_editor,
    webinar,
    invitees,
    invitations_queue,
    django_capture_on_commit_callbacks,
):
    client = mailing_editor_client
    assert client.get(url("create")).status_code == 200

    # Compose.
    response = client.post(
        url("create"),
        {
            "webinar": webinar.pk,
            "include_link_holders": "on",
            "subscriber_list": "",
            "subject": "Your access to {{ webinar }}",
            "body_html": draftail("Hello {{ name }}, here is your link: {{ link }}"),
            "signature": "",
        },
    )
    mailing = Mailing.objects.get()
    assert response.status_code == 302
    assert response.url == url("detail", mailing.pk)
    assert mailing.status == MailingStatus.DRAFT
    assert mailing.created_by == mailing_editor
    detail = client.get(url("detail", mailing.pk))
    assert detail.status_code == 200
    assert "3 link holders with an e-mail" in detail.content.decode()

    # Preview for a chosen recipient: the real e-mail with that person's link.
    anna = next(link for link in invitees if link.email == "anna@example.com")
    page = client.get(url("preview", mailing.pk), {"recipient": f"l{anna.pk}"})
    body = page.content.decode()
    assert page.status_code == 200
    assert anna.get_url() in body  # the plain-text part, escaped in a <pre>
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    frame = client.get(url("preview_frame", mailing.pk), {"recipient": f"l{anna.pk}"})
    assert frame.status_code == 200
    assert frame["X-Frame-Options"] == "SAMEORIGIN"
    assert "sandbox" in frame["Content-Security-Policy"]
    html = frame.content.decode()
    assert anna.get_url().replace("&", "&amp;") in html or anna.get_url() in html
    assert "Hello Anna Nowak" in html

    # Test send to the editor's own address.
    response = client.post(url("test_send", mailing.pk))
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["mailing_editor@example.com"]
    # A sample link the gate refuses, never a participant's working one.
    assert "?access=0." in mail.outbox[0].body
    for link in invitees:
        assert link.get_url() not in mail.outbox[0].body
    sample = re.search(
        r"https://webinars\.example\.com(\S+\?access=0\.[\w-]+)", mail.outbox[0].body
    )
    refused = Client().get(sample.group(1))
    assert refused.status_code < 500
    assert "Join as" not in refused.content.decode()
    mail.outbox.clear()

    # Confirm page, then send (twice: a double click sends once).
    confirm = client.get(url("send", mailing.pk))
    assert confirm.status_code == 200
    assert "Send to 3 recipients" in confirm.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url("send", mailing.pk))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url("send", mailing.pk))
    assert sorted(rcpt(m) for m in mail.outbox) == [
        "anna@example.com",
        "xss@example.com",
        "zgj@example.pl",
    ]
    urls = personal_urls(invitees)
    for message in mail.outbox:
        own = urls[rcpt(message)]
        assert own in message.body
        for other_email, other in urls.items():
            if other_email != rcpt(message):
                assert other not in message.body

    # Progress reaches 100 %.
    data = client.get(url("progress", mailing.pk)).json()
    assert data["percent"] == 100
    assert data["sent"] == 3 and data["pending"] == 0 and data["failed"] == 0
    assert data["finished"] is True
    mailing.refresh_from_db()
    assert mailing.status == MailingStatus.DONE

    # The recipient log shows everyone, names escaped.
    detail = client.get(url("detail", mailing.pk)).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail
    assert "<script>alert(1)</script>" not in detail
    assert "data-pw-progress" in detail


def test_compose_needs_an_audience_and_a_one_line_subject(
    mailing_editor_client, webinar
):
    response = mailing_editor_client.post(
        url("create"),
        {
            "webinar": webinar.pk,
            "subject": "Hi\r\nBcc: victim@example.com",
            "body_html": draftail("Hello"),
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Choose who receives it" in body
    assert "The subject must be one line" in body
    assert not Mailing.objects.exists()


def test_preview_of_a_subscriber_without_a_link(
    mailing_editor_client, webinar, subscriber_list, mailing_editor
):
    from wagtail_paidwebinar.mailing import create_mailing

    mailing = create_mailing(
        webinar,
        subject="News",
        body_html="<p>Hi {{ name }}</p>",
        audience=subscriber_list,
        user=mailing_editor,
    )
    page = mailing_editor_client.get(url("preview", mailing.pk))
    body = page.content.decode()
    assert page.status_code == 200
    assert "Ewa Lis" in body and "Piotr" in body
    assert "gone@example.com" not in body  # unsubscribed members are not offered
    assert "no personal link yet" in body
    summary = mailing_editor_client.get(url("send", mailing.pk)).content.decode()
    assert "2 more subscribers from" in summary
    assert "1 unsubscribed member is skipped" in summary


def test_bad_recipient_keys_and_ids_are_404_not_500(
    mailing_editor_client, draft_mailing
):
    client = mailing_editor_client
    assert (
        client.get(
            url("preview_frame", draft_mailing.pk), {"recipient": "x"}
        ).status_code
        == 404
    )
    assert (
        client.get(
            url("preview_frame", draft_mailing.pk), {"recipient": "l99999"}
        ).status_code
        == 404
    )
    page = client.get(url("preview", draft_mailing.pk), {"recipient": "s" + "9" * 40})
    assert page.status_code == 200
    assert client.get(url("detail", 999999)).status_code == 404
    assert (
        client.get("/admin/wagtail_paidwebinar/mailing/detail/abc/").status_code == 404
    )
    assert client.get("/admin/wagtail_paidwebinar/mailing/edit/abc/").status_code == 404
    assert (
        client.get(
            url("detail", draft_mailing.pk), {"p": "zzz", "status": "<x>"}
        ).status_code
        == 200
    )


def test_state_changes_are_post_only(mailing_editor_client, draft_mailing):
    for action in ("test_send", "pause", "resume", "cancel", "retry"):
        assert (
            mailing_editor_client.get(url(action, draft_mailing.pk)).status_code == 405
        )


def test_pause_resume_cancel_and_retry(
    mailing_editor_client,
    draft_mailing,
    invitations_queue,
    django_capture_on_commit_callbacks,
):
    client = mailing_editor_client
    # Start without running the jobs (they would run on commit): rows stay pending.
    with django_capture_on_commit_callbacks(execute=False):
        client.post(url("send", draft_mailing.pk))
    draft_mailing.refresh_from_db()
    assert draft_mailing.status == MailingStatus.QUEUED
    assert len(mail.outbox) == 0

    client.post(url("pause", draft_mailing.pk))
    draft_mailing.refresh_from_db()
    assert draft_mailing.status == MailingStatus.PAUSED
    detail = client.get(url("detail", draft_mailing.pk)).content.decode()
    assert url("resume", draft_mailing.pk) in detail

    with django_capture_on_commit_callbacks(execute=True):
        client.post(url("resume", draft_mailing.pk))
    assert len(mail.outbox) == 3
    draft_mailing.refresh_from_db()
    assert draft_mailing.status == MailingStatus.DONE

    # One row failed: retry sends it again, and only it.
    row = MailingRecipient.objects.filter(mailing=draft_mailing).first()
    MailingRecipient.objects.filter(pk=row.pk).update(
        status=RecipientStatus.FAILED, last_error="550 mailbox <b>unavailable</b>"
    )
    detail = client.get(url("detail", draft_mailing.pk), {"status": "failed"})
    assert "550 mailbox &lt;b&gt;unavailable&lt;/b&gt;" in detail.content.decode()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url("retry", draft_mailing.pk))
    assert [rcpt(m) for m in mail.outbox] == [row.email]

    response = client.post(url("cancel", draft_mailing.pk), follow=True)
    assert response.status_code == 200
    assert "already finished" in response.content.decode()


def test_edit_only_drafts(mailing_editor_client, draft_mailing):
    assert mailing_editor_client.get(url("edit", draft_mailing.pk)).status_code == 200
    Mailing.objects.filter(pk=draft_mailing.pk).update(status=MailingStatus.DONE)
    response = mailing_editor_client.get(url("edit", draft_mailing.pk))
    assert response.status_code == 302
    assert response.url == url("detail", draft_mailing.pk)


# --- send from your own mailbox -----------------------------------------------------


def test_export_csv_has_each_recipients_own_link_and_the_password(
    mailing_editor_client, draft_mailing, invitees, webinar
):
    invitees[0].name = "=cmd|' /C calc'!A0"
    invitees[0].save()
    response = mailing_editor_client.get(url("export", draft_mailing.pk))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["name", "email", "personal_link", "password"]
    # Names-only links are invited too, exported without an address (issue 12).
    by_email = {row[1]: row for row in rows[1:] if row[1]}
    assert [row[0] for row in rows[1:] if not row[1]] == ["Jan Bez Maila"]
    assert set(by_email) == {"anna@example.com", "zgj@example.pl", "xss@example.com"}
    for link in invitees:
        if link.email:
            assert by_email[link.email][2] == link.get_url()
            assert by_email[link.email][3] == "kawa123"
    assert by_email["anna@example.com"][0].startswith("'=")
    assert by_email["zgj@example.pl"][0] == "Zażółć Gęślą Jaźń"


def test_copy_messages_page(mailing_editor_client, draft_mailing, invitees):
    response = mailing_editor_client.get(url("messages", draft_mailing.pk))
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-controller="w-clipboard w-clone"' in body
    for link in invitees:
        if link.email:
            assert link.get_url() in body
    assert "<script>alert(1)</script>" not in body
    assert "mailto:anna@example.com?subject=" in body


def test_audience_counts_each_address_once(
    mailing_editor_client,
    webinar,
    invitees,
    subscriber_list,
    mailing_editor,
    invitations_queue,
    django_capture_on_commit_callbacks,
):
    """A subscriber who also holds a link (e-mail in another case) gets one e-mail."""
    from wagtail_paidwebinar.mailing import create_mailing
    from wagtail_paidwebinar.models import Subscriber

    also = Subscriber.objects.create(name="Anna N.", email="ANNA@example.com")
    also.lists.add(subscriber_list)
    mailing = create_mailing(
        webinar,
        subject="Both",
        body_html="<p>Hi</p>",
        audience=["link_holders", subscriber_list],
        user=mailing_editor,
    )
    body = mailing_editor_client.get(url("send", mailing.pk)).content.decode()
    assert "3 link holders with an e-mail" in body
    assert "2 more subscribers from" in body
    assert "Send to 5 recipients" in body
    rows = list(
        csv.reader(
            io.StringIO(
                mailing_editor_client.get(url("export", mailing.pk)).content.decode(
                    "utf-8-sig"
                )
            )
        )
    )
    # The names-only link ("Jan Bez Maila") is exported without an address.
    emails = [row[1].lower() for row in rows[1:] if row[1]]
    assert [row[0] for row in rows[1:] if not row[1]] == ["Jan Bez Maila"]
    assert len(emails) == len(set(emails)) == 5
    # The engine agrees with the admin's read-only count.
    with django_capture_on_commit_callbacks(execute=True):
        mailing_editor_client.post(url("send", mailing.pk))
    assert sorted(rcpt(m).lower() for m in mail.outbox) == sorted(emails)
    assert mailing_editor_client.get(url("progress", mailing.pk)).json()["sent"] == 5


def test_copy_messages_pages_through_a_big_audience(
    mailing_editor_client, webinar, mailing_editor
):
    from wagtail_paidwebinar.actions import generate_links
    from wagtail_paidwebinar.mailing import create_mailing

    generate_links(
        webinar, "\n".join(f"P{i:02d} <p{i:02d}@example.org>" for i in range(25))
    )
    mailing = create_mailing(
        webinar, subject="Hi", body_html="<p>{{ name }}</p>", user=mailing_editor
    )
    first = mailing_editor_client.get(url("messages", mailing.pk)).content.decode()
    assert first.count("w-clipboard#copy") == 20
    assert "?p=2" in first
    second = mailing_editor_client.get(url("messages", mailing.pk), {"p": "2"})
    assert second.content.decode().count("w-clipboard#copy") == 5
    for bad in ("0", "-3", "x", "9" * 30):
        assert (
            mailing_editor_client.get(
                url("messages", mailing.pk), {"p": bad}
            ).status_code
            == 200
        )
