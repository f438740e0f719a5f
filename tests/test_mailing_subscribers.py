"""Mailings to a subscriber list: links issued on start, List-Unsubscribe (RFC 8058),
unsubscribed addresses skipped at send time; the command; test sends; previews."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from tests.fixtures_mailing import make_link_holders
from tests.utils import use_mailer
from wagtail_paidwebinar.mailing import (
    MailingError,
    audience,
    create_mailing,
    render_preview,
    send_test,
    start_mailing,
    subscriber_for_unsubscribe_token,
    unsubscribe,
    unsubscribe_token,
    unsubscribe_url,
)
from wagtail_paidwebinar.models import (
    MailingRecipient,
    MailingStatus,
    PersonalLink,
    RecipientStatus,
    Subscriber,
    SubscriberList,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscribers(db):
    members = SubscriberList.objects.create(name="Newsletter")
    people = []
    for i, name in enumerate(["Ala", "Basia", "Celina", "Dorota"]):
        sub = Subscriber.objects.create(name=name, email=f"Sub{i}@Example.org")
        sub.lists.add(members)
        people.append(sub)
    return members, people


def run_start(mailing, capture):
    with capture(execute=True):
        return start_mailing(mailing)


def test_list_mailing_issues_links_and_carries_list_unsubscribe(
    webinar,
    subscribers,
    smtp_settings,
    inline_queue,
    smtp_server,
    django_capture_on_commit_callbacks,
):
    members, people = subscribers
    # One member already holds a link (issued earlier, e-mail in another case).
    existing = make_link_holders(webinar, 1)[0]
    PersonalLink.objects.filter(pk=existing.pk).update(
        email="sub0@example.org", email_normalized="sub0@example.org"
    )
    mailing = create_mailing(
        webinar, subject="Hello {{ name }}", body_html="<p>Hi</p>", audience=members
    )
    assert run_start(mailing, django_capture_on_commit_callbacks) == 4
    # Three new links, one reused; each row points at the member's link.
    assert PersonalLink.objects.filter(webinar=webinar).count() == 4
    rows = MailingRecipient.objects.filter(mailing=mailing).select_related("link")
    for row in rows:
        assert row.status == RecipientStatus.SENT
        assert row.link.email_normalized == row.email_normalized
    assert rows.get(email_normalized="sub0@example.org").link_id == existing.pk

    messages = {m["To"].addresses[0].addr_spec.lower(): m for m in smtp_server.messages}
    assert len(messages) == 4
    for sub in people:
        message = messages[sub.email_normalized]
        header = message["List-Unsubscribe"].strip()  # may be folded
        assert header == f"<{unsubscribe_url(sub)}>"
        assert header.startswith("<https://webinars.example.com/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        text = message.get_body(("plain",)).get_content()
        assert unsubscribe_url(sub) in text
        link = PersonalLink.objects.get(
            webinar=webinar, email_normalized=sub.email_normalized
        )
        assert link.get_url() in text


def test_link_holder_mailing_has_no_list_unsubscribe(
    webinar,
    smtp_settings,
    inline_queue,
    smtp_server,
    django_capture_on_commit_callbacks,
):
    make_link_holders(webinar, 1)
    mailing = create_mailing(webinar, subject="Hi", body_html="")
    run_start(mailing, django_capture_on_commit_callbacks)
    assert "List-Unsubscribe" not in smtp_server.messages[0]


def test_unsubscribed_members_are_not_sent_to(
    webinar,
    subscribers,
    smtp_settings,
    inline_queue,
    smtp_server,
    django_capture_on_commit_callbacks,
):
    members, people = subscribers
    unsubscribe(people[1])
    mailing = create_mailing(webinar, subject="Hi", body_html="", audience=members)
    assert run_start(mailing, django_capture_on_commit_callbacks) == 3
    assert people[1].email_normalized not in smtp_server.by_recipient()


def test_unsubscribed_between_start_and_send_is_skipped(
    webinar, subscribers, smtp_settings, smtp_server
):
    members, people = subscribers
    mailing = create_mailing(webinar, subject="Hi", body_html="", audience=members)
    assert start_mailing(mailing, enqueue=False) == 4
    unsubscribe(people[2])
    call_command("paidwebinar_send", str(mailing.pk), "--sync", stdout=None)
    row = MailingRecipient.objects.get(
        mailing=mailing, email_normalized=people[2].email_normalized
    )
    assert row.status == RecipientStatus.FAILED
    assert "nsubscribed" in row.last_error
    assert len(smtp_server.messages) == 3


def test_unsubscribe_tokens(subscribers):
    _members, people = subscribers
    token = unsubscribe_token(people[0])
    assert subscriber_for_unsubscribe_token(token) == people[0]
    assert "example" not in token.lower()
    assert subscriber_for_unsubscribe_token(token + "x") is None
    other = unsubscribe_token(people[1])
    forged = f"{people[1].pk}.{token.partition('.')[2]}"
    assert subscriber_for_unsubscribe_token(forged) is None
    assert subscriber_for_unsubscribe_token(other) == people[1]
    for bad in ["", "1", ".", "x.y", "99999.abc", None, 5, "1" * 500, "١.abc"]:
        assert subscriber_for_unsubscribe_token(bad) is None
    assert unsubscribe(people[0]) is True
    assert unsubscribe(people[0]) is False
    people[0].refresh_from_db()
    assert not people[0].subscribed and people[0].unsubscribed_at


def test_unsubscribe_url_signed_under_an_old_key_still_works(
    client, subscribers, settings
):
    """Rotating SECRET_KEY keeps the unsubscribe links of mails already sent working
    while the old key is listed in SECRET_KEY_FALLBACKS."""
    _members, people = subscribers
    settings.SECRET_KEY = "old-key-" + "o" * 50
    old_path = urlsplit(unsubscribe_url(people[0])).path
    tampered_path = urlsplit(unsubscribe_url(people[1])).path
    tampered_path = (
        tampered_path[:-2] + ("A" if tampered_path[-2] != "A" else "B") + "/"
    )
    settings.SECRET_KEY = "new-key-" + "n" * 50
    settings.SECRET_KEY_FALLBACKS = ["old-key-" + "o" * 50]

    assert client.post(tampered_path).status_code == 404
    assert client.post(old_path).status_code == 200
    people[0].refresh_from_db()
    people[1].refresh_from_db()
    assert not people[0].subscribed
    assert people[1].subscribed


def test_unsubscribe_url_under_a_dropped_key_is_refused(client, subscribers, settings):
    _members, people = subscribers
    settings.SECRET_KEY = "old-key-" + "o" * 50
    path = urlsplit(unsubscribe_url(people[0])).path
    settings.SECRET_KEY = "new-key-" + "n" * 50
    settings.SECRET_KEY_FALLBACKS = []

    assert client.post(path).status_code == 404
    people[0].refresh_from_db()
    assert people[0].subscribed


def test_command_sync_sends_in_process(webinar, smtp_settings, smtp_server, capsys):
    links = make_link_holders(webinar, 5)
    mailing = create_mailing(webinar, subject="Hi", body_html="")
    call_command("paidwebinar_send", str(mailing.pk), "--sync")
    out = capsys.readouterr().out
    assert "Started mailing" in out and "sent 5" in out
    mailing.refresh_from_db()
    assert mailing.status == MailingStatus.DONE
    assert smtp_server.by_recipient() == {link.email: 1 for link in links}
    # Again: nothing to send, nothing sent twice.
    call_command("paidwebinar_send", str(mailing.pk), "--sync")
    assert "nothing to send" in capsys.readouterr().out
    assert len(smtp_server.messages) == 5


def test_command_sync_gives_up_when_smtp_stays_down(
    webinar, smtp_settings, smtp_server, settings
):
    settings.WAGTAIL_PAIDWEBINAR_RETRY_DELAYS = [0.1, 0.1]
    make_link_holders(webinar, 2)
    smtp_server.stop()
    mailing = create_mailing(webinar, subject="Hi", body_html="")
    call_command("paidwebinar_send", str(mailing.pk), "--sync")
    progress = mailing.progress()
    assert progress["failed"] == 2 and progress["pending"] == 0
    mailing.refresh_from_db()
    assert mailing.status == MailingStatus.DONE
    assert "Gave up" in MailingRecipient.objects.first().last_error


def test_command_unknown_mailing():
    with pytest.raises(CommandError):
        call_command("paidwebinar_send", "999999")


def test_command_queues_without_sync(
    webinar, inline_queue, capsys, settings, django_capture_on_commit_callbacks
):
    use_mailer(settings, "django.core.mail.backends.locmem.EmailBackend")
    make_link_holders(webinar, 2)
    mailing = create_mailing(webinar, subject="Hi", body_html="")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        call_command("paidwebinar_send", str(mailing.pk))
        # Jobs enter the queue on commit (COMMIT_MODE=on_db_commit).
        assert len(mail.outbox) == 0
    assert len(callbacks) == 1
    assert "Queued on" in capsys.readouterr().out
    assert len(mail.outbox) == 2


def test_send_test_and_preview(webinar, smtp_settings, smtp_server, superuser):
    links = make_link_holders(webinar, 2, names=["Anna", "Bob"])
    mailing = create_mailing(webinar, subject="Hi {{ name }}", body_html="<p>x</p>")
    message_id = send_test(mailing, "editor@example.com", user=superuser, link=links[1])
    message = smtp_server.messages[0]
    assert message["Message-ID"] == message_id
    assert message["Subject"] == "[Test] Hi Bob"
    assert message["To"] == "editor@example.com"
    assert MailingRecipient.objects.count() == 0
    preview = render_preview(mailing, links[0])
    assert preview.subject == "Hi Anna"
    assert links[0].get_url() in preview.html
    # Without a link, a test send never carries a participant's working link.
    send_test(mailing, "editor@example.com", user=superuser)
    body = "".join(
        part.get_content()
        for part in smtp_server.messages[1].walk()
        if part.get_content_type() in ("text/plain", "text/html")
    )
    assert "?access=0." in body
    assert not any(link.token in body for link in links)
    smtp_server.stop()
    with pytest.raises(MailingError):
        send_test(mailing, "editor@example.com")


def test_resume_sends_stale_rows_but_not_fresh_ones(
    webinar, smtp_settings, smtp_server, settings
):
    import datetime as dt

    from django.utils import timezone

    links = make_link_holders(webinar, 4)
    mailing = create_mailing(webinar, subject="Hi", body_html="")
    start_mailing(mailing, enqueue=False)
    rows = list(MailingRecipient.objects.filter(mailing=mailing).order_by("pk"))
    # A dead worker's row (old claim) and a live worker's row (fresh claim).
    settings.WAGTAIL_PAIDWEBINAR_STALE_SENDING_SECONDS = 600
    MailingRecipient.objects.filter(pk=rows[0].pk).update(
        status=RecipientStatus.SENDING,
        claimed_at=timezone.now() - dt.timedelta(seconds=601),
    )
    MailingRecipient.objects.filter(pk=rows[1].pk).update(
        status=RecipientStatus.SENDING, claimed_at=timezone.now()
    )
    call_command("paidwebinar_send", str(mailing.pk), "--sync")
    assert set(smtp_server.by_recipient()) == {
        links[0].email,
        links[2].email,
        links[3].email,
    }
    assert mailing.progress()["sending"] == 1
    mailing.refresh_from_db()
    assert mailing.status == MailingStatus.SENDING  # not done while a row is in flight


def test_members_without_a_usable_link_get_a_failed_row_saying_why(
    webinar, subscribers, smtp_settings, smtp_server
):
    from django.utils import timezone

    members, people = subscribers
    # A revoked link for one member; an address generate_links refuses for another.
    revoked = make_link_holders(webinar, 1)[0]
    PersonalLink.objects.filter(pk=revoked.pk).update(
        email="sub1@example.org",
        email_normalized="sub1@example.org",
        revoked_at=timezone.now(),
    )
    Subscriber.objects.filter(pk=people[2].pk).update(
        email="not-an-address", email_normalized="not-an-address", name=""
    )
    mailing = create_mailing(webinar, subject="Hi", body_html="", audience=members)
    assert start_mailing(mailing, enqueue=False) == 2
    rows = {
        r.email_normalized: r for r in MailingRecipient.objects.filter(mailing=mailing)
    }
    assert rows["sub1@example.org"].status == RecipientStatus.FAILED
    assert "revoked or expired" in rows["sub1@example.org"].last_error
    assert rows["not-an-address"].status == RecipientStatus.FAILED
    assert rows["not-an-address"].last_error.startswith("No personal link")
    call_command("paidwebinar_send", str(mailing.pk), "--sync")
    assert set(smtp_server.by_recipient()) == {"sub0@example.org", "sub3@example.org"}


def test_link_holders_and_a_list_one_row_per_address_the_holders_kept(
    webinar,
    subscribers,
    smtp_settings,
    inline_queue,
    smtp_server,
    django_capture_on_commit_callbacks,
):
    members, people = subscribers
    holders = make_link_holders(webinar, 3, names=["Ewa", "Fryderyk", "Grażyna"])
    # Dorota is a member and already holds a link, under another name.
    PersonalLink.objects.filter(pk=holders[0].pk).update(
        email="Sub3@Example.org", email_normalized="sub3@example.org"
    )
    mailing = create_mailing(
        webinar,
        subject="Hello {{ name }}",
        body_html="<p>Hi</p>",
        audience=["link_holders", members],
    )
    assert run_start(mailing, django_capture_on_commit_callbacks) == 6

    rows = {
        row.email_normalized: row
        for row in MailingRecipient.objects.filter(mailing=mailing)
    }
    assert len(rows) == 6
    kept = rows["sub3@example.org"]
    assert (kept.name, kept.link_id, kept.subscriber_id) == ("Ewa", holders[0].pk, None)
    assert kept.email == "Sub3@Example.org"
    assert rows[holders[1].email_normalized].name == "Fryderyk"
    assert rows["sub0@example.org"].subscriber_id == people[0].pk
    for row in rows.values():
        assert row.status == RecipientStatus.SENT
        assert row.attempts == 1
        assert row.message_id and row.sent_at is not None
    assert sorted(smtp_server.by_recipient().values()) == [1] * 6


def test_planned_audience_is_the_audience_start_resolves(
    webinar, subscribers, inline_queue, django_capture_on_commit_callbacks
):
    """The admin's preview of a draft and start_mailing ask the same rules: the same
    addresses, the link holder kept for an address that is both."""
    members, people = subscribers
    holders = make_link_holders(webinar, 3)
    PersonalLink.objects.filter(pk=holders[0].pk).update(
        email="Sub3@Example.org", email_normalized="sub3@example.org"
    )
    PersonalLink.objects.filter(pk=holders[1].pk).update(revoked_at=timezone.now())
    mailing = create_mailing(
        webinar,
        subject="Hello",
        body_html="<p>Hi</p>",
        audience=["link_holders", members],
    )
    planned = list(audience.planned_audience(mailing))
    assert not audience.is_resolved(mailing)
    with django_capture_on_commit_callbacks(execute=False):
        start_mailing(mailing)

    planned_by_email = {
        (p.subscriber or p.link).email_normalized: p.subscriber for p in planned
    }
    rows = {r.email_normalized: r.subscriber_id for r in audience.ledger_rows(mailing)}
    assert audience.is_resolved(mailing)
    assert (
        set(planned_by_email)
        == set(rows)
        == {
            holders[2].email_normalized,
            *(p.email_normalized for p in people),
        }
    )
    assert planned_by_email["sub3@example.org"] is None
    assert rows["sub3@example.org"] is None
