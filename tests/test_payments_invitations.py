"""One-recipient invitations (``mailing.send_invitation``) and the language of
every e-mail (issue 12 item 9): the webinar's, whoever presses Send or whatever
triggers it. Embedded default: inline queue, locmem e-mail."""

from __future__ import annotations

import pytest
from django.core import mail
from django.utils import timezone, translation
from wagtail.models import Locale
from wagtail.models.audit_log import ModelLogEntry
from wagtail.users.models import UserProfile

from tests.fixtures_payments import post_signed, purchase_body
from tests.utils import admin_url, make_user, make_webinar
from wagtail_paidwebinar import actions
from wagtail_paidwebinar.mailing import (
    InvitationStatus,
    create_mailing,
    send_invitation,
)
from wagtail_paidwebinar.mailing.invitations import (
    ACTION_INVITE,
    with_invitation_sent_at,
)
from wagtail_paidwebinar.models import (
    MailingRecipient,
    MailingSettings,
    PersonalLink,
    RecipientStatus,
)

pytestmark = pytest.mark.django_db

POLISH_ACCESS = "Link osobisty (uprawnia do wejścia jedną osobę"
ENGLISH_ACCESS = "Your personal link (it admits one person"


def make_holder(webinar, email="anna@example.org", name="Anna Nowak"):
    return PersonalLink.objects.create(
        webinar=webinar, name=name, email=email, email_normalized=email.lower()
    )


@pytest.fixture
def polish_webinar(index):
    pl = Locale.objects.get_or_create(language_code="pl")[0]
    webinar = make_webinar(index, title="Wydajność Django", slug="wydajnosc")
    webinar.locale = pl
    webinar.save()
    return webinar


def test_send_invitation_once_unless_resend(
    webinar, invitations_queue, django_capture_on_commit_callbacks
):
    link = make_holder(webinar)
    with django_capture_on_commit_callbacks(execute=True):
        assert send_invitation(link) == InvitationStatus.QUEUED
    with django_capture_on_commit_callbacks(execute=True):
        assert send_invitation(link) == InvitationStatus.ALREADY_SENT
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert len(message.to) == 1
    assert "anna@example.org" in message.to[0]
    assert link.get_url() in message.body
    with django_capture_on_commit_callbacks(execute=True):
        assert send_invitation(link, resend=True) == InvitationStatus.QUEUED
    assert len(mail.outbox) == 2
    assert (
        MailingRecipient.objects.filter(link=link, status=RecipientStatus.SENT).count()
        == 2
    )
    # Nobody else got anything.
    assert all("anna@example.org" in m.to[0] and len(m.to) == 1 for m in mail.outbox)


def test_only_the_one_link_holder_gets_it(
    webinar, invitations_queue, django_capture_on_commit_callbacks
):
    others = [make_holder(webinar, f"p{i}@example.org", f"P {i}") for i in range(5)]
    buyer = make_holder(webinar)
    with django_capture_on_commit_callbacks(execute=True):
        send_invitation(buyer)
    assert len(mail.outbox) == 1
    assert "anna@example.org" in mail.outbox[0].to[0]
    assert not MailingRecipient.objects.filter(link__in=others).exists()


def test_skipped_without_address_or_when_revoked(webinar):
    nameonly = PersonalLink.objects.create(webinar=webinar, name="Jan")
    assert send_invitation(nameonly) == InvitationStatus.SKIPPED
    revoked = make_holder(webinar)
    actions.revoke_link(revoked)
    assert send_invitation(revoked) == InvitationStatus.SKIPPED
    assert send_invitation(revoked, resend=True) == InvitationStatus.SKIPPED
    assert MailingRecipient.objects.count() == 0


def test_visible_in_the_admin_log_and_sent_at(
    webinar, invitations_queue, django_capture_on_commit_callbacks, superuser
):
    link = make_holder(webinar)
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        send_invitation(link, user=superuser)
    entry = ModelLogEntry.objects.get(action=ACTION_INVITE)
    assert entry.user_id == superuser.pk
    assert entry.object_id == str(link.pk)
    annotated = with_invitation_sent_at(PersonalLink.objects.filter(pk=link.pk)).get()
    assert annotated.invitation_sent_at >= before
    assert link.get_url() not in str(entry.data)


def test_per_webinar_text_over_site_default(
    webinar, invitations_queue, django_capture_on_commit_callbacks
):
    ms = MailingSettings.for_site(webinar.get_site())
    ms.invitation_subject = "Site: {{ webinar }}"
    ms.invitation_body = "<p>Site body for {{ name }}</p>"
    ms.save()
    link = make_holder(webinar)
    with django_capture_on_commit_callbacks(execute=True):
        send_invitation(link)
    assert mail.outbox[-1].subject == f"Site: {webinar.title}"
    assert "Site body for Anna Nowak" in mail.outbox[-1].body
    webinar.invitation_subject = "Own: {{ webinar }}"
    webinar.save()
    other = make_holder(webinar, "b@example.org", "Bob")
    with django_capture_on_commit_callbacks(execute=True):
        send_invitation(other)
    assert mail.outbox[-1].subject == f"Own: {webinar.title}"


def test_invitation_is_in_the_webinars_language_whoever_triggers_it(
    polish_webinar,
    client,
    webhook_secret,
    invitations_queue,
    django_capture_on_commit_callbacks,
):
    # A webhook: no user, no request language (the request says English).
    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed(client, purchase_body(polish_webinar))
    assert response.json()["invitation"] == "queued"
    message = mail.outbox[-1]
    assert POLISH_ACCESS in message.body
    assert ENGLISH_ACCESS not in message.body
    assert "Wydajność Django" in message.subject
    # Under an English admin session, an explicit trigger speaks Polish too.
    link = make_holder(polish_webinar, "b@example.org", "Bob")
    with translation.override("en"), django_capture_on_commit_callbacks(execute=True):
        send_invitation(link)
    assert POLISH_ACCESS in mail.outbox[-1].body


def test_english_admin_sends_a_polish_webinars_mailing_in_polish(
    polish_webinar, client, invitations_queue, django_capture_on_commit_callbacks
):
    editor = make_user("sender", superuser=True)
    profile = UserProfile.get_for_user(editor)
    profile.preferred_language = "en"
    profile.save()
    client.force_login(editor)
    make_holder(polish_webinar)
    mailing = create_mailing(
        polish_webinar, subject="{{ webinar }}", body_html="<p>Cześć</p>", user=editor
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            admin_url("mailing", "send", mailing.pk), HTTP_ACCEPT_LANGUAGE="en"
        )
    assert response.status_code in (200, 302)
    assert len(mail.outbox) == 1
    text = mail.outbox[0].body
    html = mail.outbox[0].alternatives[0][0]
    assert POLISH_ACCESS in text
    assert ENGLISH_ACCESS not in text
    assert 'lang="pl"' in html
    ics = next(a for a in mail.outbox[0].attachments if "calendar" in str(a))
    assert "Link osobisty:" in str(ics)


def test_polish_admin_sends_an_english_webinars_mailing_in_english(
    webinar, client, invitations_queue, django_capture_on_commit_callbacks
):
    editor = make_user("nadawca", superuser=True)
    profile = UserProfile.get_for_user(editor)
    profile.preferred_language = "pl"
    profile.save()
    client.force_login(editor)
    make_holder(webinar)
    mailing = create_mailing(webinar, subject="Hi", body_html="<p>Hi</p>")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(admin_url("mailing", "send", mailing.pk), HTTP_ACCEPT_LANGUAGE="pl")
    assert ENGLISH_ACCESS in mail.outbox[0].body
    assert POLISH_ACCESS not in mail.outbox[0].body


def test_a_mailing_may_choose_its_language(
    webinar, invitations_queue, django_capture_on_commit_callbacks
):
    make_holder(webinar)
    from wagtail_paidwebinar.mailing import start_mailing

    mailing = create_mailing(webinar, subject="Hi", body_html="", language="pl")
    with django_capture_on_commit_callbacks(execute=True):
        start_mailing(mailing)
    assert POLISH_ACCESS in mail.outbox[0].body


def test_the_database_keeps_one_first_invitation_per_link(webinar):
    from django.db import IntegrityError, transaction

    link = make_holder(webinar)
    create_mailing(webinar, subject="A", body_html="", audience=link)
    with pytest.raises(IntegrityError), transaction.atomic():
        create_mailing(webinar, subject="B", body_html="", audience=link)
    # A re-send is the one way to a second one.
    create_mailing(webinar, subject="C", body_html="", audience=link, resend=True)
