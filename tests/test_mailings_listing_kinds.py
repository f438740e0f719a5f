"""The Mailings listing says what each mailing is (translated) and filters by
kind; one click hides the one-person invitations (re-issue, purchase, lost link)
that would otherwise fill it."""

from __future__ import annotations

import re

import pytest
from django.test import TestCase
from django.utils import translation
from wagtail.users.models import UserProfile

from tests.utils import admin_url
from wagtail_paidwebinar.actions import generate_links
from wagtail_paidwebinar.mailing import create_mailing, schedule, send_invitation
from wagtail_paidwebinar.models import Mailing, MailingKind

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("invitations_queue")]

ROW_RE = re.compile(r"<tr[^>]*>(.*?)</tr>", re.S)


@pytest.fixture
def mailings(webinar):
    links = generate_links(
        webinar, "Anna <anna@example.com>\nJan <jan@example.com>"
    ).created
    with TestCase.captureOnCommitCallbacks(execute=True):
        create_mailing(webinar, subject="Newsletter of May", body_html="<p>Hi</p>")
        for link in links:
            send_invitation(link)
        schedule.cancel_webinar(webinar)
    return Mailing.objects.all()


def rows(response) -> list[str]:
    """The listing's body rows as text, one per mailing."""
    html = response.content.decode()
    table = html[html.index('class="listing') :]
    body = table[table.index("<tbody") : table.index("</tbody>")]
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)) for r in ROW_RE.findall(body)
    ]


def test_kind_column_and_filter(mailings, mailing_editor_client):
    index = admin_url(Mailing, "index")
    everything = rows(mailing_editor_client.get(index))
    assert len(everything) == 4
    assert sum("Invitation (one person)" in r for r in everything) == 2
    assert sum("Cancellation" in r for r in everything) == 1
    assert any("Newsletter of May" in r and "Message" in r for r in everything)

    # One click: everything but the one-person invitations.
    page = mailing_editor_client.get(index)
    assert "?kind=not_invitation" in page.content.decode()
    hidden = rows(mailing_editor_client.get(index, {"kind": "not_invitation"}))
    assert len(hidden) == 2
    assert not any("Invitation (one person)" in r for r in hidden)

    only = rows(mailing_editor_client.get(index, {"kind": "invitation"}))
    assert len(only) == 2
    assert all("Invitation (one person)" in r for r in only)
    cancellations = rows(
        mailing_editor_client.get(index, {"kind": MailingKind.CANCELLATION})
    )
    assert len(cancellations) == 1 and "Cancellation" in cancellations[0]
    # A one-person invitation is kind "message" in the table: not a "Message".
    messages = rows(mailing_editor_client.get(index, {"kind": MailingKind.MESSAGE}))
    assert len(messages) == 1 and "Newsletter of May" in messages[0]
    # A made-up value filters nothing and breaks nothing.
    odd = mailing_editor_client.get(index, {"kind": "<script>"})
    assert odd.status_code == 200


def test_kinds_are_translated(mailings, mailing_editor, mailing_editor_client):
    profile = UserProfile.get_for_user(mailing_editor)
    profile.preferred_language = "pl"
    profile.save()
    with translation.override("pl"):
        expected = str(MailingKind.MESSAGE.label)
    assert expected == "Wiadomość"
    listing = rows(mailing_editor_client.get(admin_url(Mailing, "index")))
    assert any("Newsletter of May" in r and expected in r for r in listing)


def test_without_permission_no_listing(mailings, client, plain_editor):
    client.force_login(plain_editor)
    response = client.get(admin_url(Mailing, "index"), {"kind": "invitation"})
    assert response.status_code in (302, 403)
