"""The mailing engine through the embedded default queue (fakeredis, ASYNC False)
and a real SMTP server (aiosmtpd): rendering, headers, ledger, idempotent start."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading

import icalendar
import pytest
from django.db import connection
from django.utils import timezone
from wagtail.models import Site

from tests.fixtures_mailing import make_link_holders
from wagtail_paidwebinar.mailing import (
    cancel_mailing,
    create_mailing,
    pause_mailing,
    render_preview,
    resume_mailing,
    retry_failed,
    start_mailing,
)
from wagtail_paidwebinar.mailing.delivery import _relax_commit
from wagtail_paidwebinar.models import (
    Mailing,
    MailingRecipient,
    MailingSettings,
    MailingStatus,
    PersonalLink,
    RecipientStatus,
    Signature,
)

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

BODY = (
    "<p>Hello {{ name }},</p><p>welcome to {{webinar}} on {{ starts_at }}.</p>"
    '<p>Your link: <a href="{{ link }}">join</a>; password {{ password }}.</p>'
)


@pytest.fixture
def mail_settings(db):
    site = Site.objects.get(is_default_site=True)
    ms = MailingSettings.for_site(site)
    ms.from_name = "Akademia Żółw"
    ms.from_email = "webinars@example.com"
    ms.reply_to = "help@example.com"
    ms.signature = "<p>Best regards, <b>the organisers</b></p>"
    ms.footer = "<p>Example Ltd, Warsaw</p>"
    ms.save()
    return ms


@pytest.fixture
def sending(smtp_settings, inline_queue, mail_settings):
    return smtp_settings


def parts(message):
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    ics = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    return html, text, ics


def test_three_recipients_each_get_their_own_link(webinar, sending, smtp_server):
    # The day Europe/Warsaw switches to summer time: 16:00 UTC is 18:00 local.
    webinar.starts_at = dt.datetime(2027, 3, 28, 16, 0, tzinfo=dt.UTC)
    webinar.save()
    links = make_link_holders(
        webinar, 3, names=["Anna Nowak", "Jan <b>Kowalski</b>", "Zoë O'Brien"]
    )
    mailing = create_mailing(
        webinar, subject="Invitation for {{ name }}", body_html=BODY
    )
    assert start_mailing(mailing) == 3
    mailing.refresh_from_db()
    assert mailing.status == MailingStatus.DONE
    assert mailing.progress() == {
        "pending": 0,
        "sending": 0,
        "sent": 3,
        "failed": 0,
        "total": 3,
    }
    assert smtp_server.by_recipient() == {link.email: 1 for link in links}

    by_to = {m["To"].addresses[0].addr_spec: m for m in smtp_server.messages}
    all_urls = {link.get_url() for link in links}
    for link in links:
        message = by_to[link.email]
        assert message["To"].addresses[0].display_name == link.name
        assert message["Subject"] == f"Invitation for {link.name}"
        assert message["Reply-To"] == "help@example.com"
        assert message["From"].addresses[0].display_name == "Akademia Żółw"
        assert message["Message-ID"]
        html, text, ics_parts = parts(message)
        url = link.get_url()
        # Own link in HTML and text; nobody else's.
        assert url in html and url in text
        for other in all_urls - {url}:
            assert other not in html and other not in text
        assert "kawa123" in html and "kawa123" in text
        assert "the organisers" in html and "the organisers" in text
        assert "Example Ltd" in text
        # Inlined styles (premailer) and escaped names.
        assert re.search(r'<div[^>]+style="[^"]*max-width:\s*600px', html)
        assert "<b>Kowalski</b>" not in html
        if "Kowalski" in link.name:
            assert "Jan &lt;b&gt;Kowalski&lt;/b&gt;" in html
        # The .ics: right local time, stable UID, the personal URL.
        assert len(ics_parts) == 1
        cal = icalendar.Calendar.from_ical(ics_parts[0].get_content())
        event = next(iter(cal.walk("VEVENT")))
        start = event.decoded("dtstart")
        assert start.tzinfo is not None
        assert start == webinar.starts_at
        assert (start.hour, start.minute) == (18, 0)
        assert start.utcoffset() == dt.timedelta(hours=2)
        assert event.decoded("dtend") - start == dt.timedelta(
            minutes=webinar.duration_minutes
        )
        assert str(event["dtstart"].params["TZID"]) == "Europe/Warsaw"
        assert str(event["uid"]) == f"paidwebinar-{webinar.pk}@webinars.example.com"
        assert str(event["url"]) == url
        assert cal.walk("VTIMEZONE")
    rows = MailingRecipient.objects.filter(mailing=mailing)
    assert all(r.status == RecipientStatus.SENT and r.message_id for r in rows)
    assert len({r.message_id for r in rows}) == 3


def test_double_start_queues_once(webinar, sending, smtp_server):
    make_link_holders(webinar, 4)
    mailing = create_mailing(webinar, subject="Hi", body_html="<p>x</p>")
    assert start_mailing(mailing) == 4
    assert start_mailing(mailing) == 0
    assert MailingRecipient.objects.filter(mailing=mailing).count() == 4
    assert sum(smtp_server.by_recipient().values()) == 4


def test_permanent_failure_fails_only_that_row(webinar, sending, smtp_server):
    links = make_link_holders(webinar, 3)
    smtp_server.handler.codes[links[1].email] = "550 5.1.1 No such user"
    mailing = create_mailing(webinar, subject="Hi", body_html="<p>x</p>")
    start_mailing(mailing)
    rows = {r.email: r for r in MailingRecipient.objects.filter(mailing=mailing)}
    assert rows[links[1].email].status == RecipientStatus.FAILED
    assert "550" in rows[links[1].email].last_error
    assert rows[links[0].email].status == RecipientStatus.SENT
    assert rows[links[2].email].status == RecipientStatus.SENT
    mailing.refresh_from_db()
    assert mailing.status == MailingStatus.DONE

    # The address is fixed: retry sends only the failed row.
    del smtp_server.handler.codes[links[1].email]
    assert retry_failed(mailing) == 1
    assert smtp_server.by_recipient() == {link.email: 1 for link in links}
    mailing.refresh_from_db()
    assert mailing.status == MailingStatus.DONE


def test_header_injection_in_a_name_fails_that_row(webinar, sending, smtp_server):
    links = make_link_holders(webinar, 2)
    PersonalLink.objects.filter(pk=links[0].pk).update(
        name="Eve\r\nBcc: victim@example.net"
    )
    mailing = create_mailing(webinar, subject="Hi {{ name }}", body_html="<p>x</p>")
    start_mailing(mailing)
    rows = {r.email: r for r in MailingRecipient.objects.filter(mailing=mailing)}
    assert rows[links[0].email].status == RecipientStatus.FAILED
    assert "header" in rows[links[0].email].last_error.lower()
    assert rows[links[1].email].status == RecipientStatus.SENT
    assert smtp_server.by_recipient() == {links[1].email: 1}
    for message in smtp_server.messages:
        assert "Bcc" not in message


def test_non_ascii_names_are_rfc2047_encoded(webinar, sending, smtp_server):
    make_link_holders(webinar, 1, names=['Łucja "Lu" Żółtowska, PhD'])
    mailing = create_mailing(webinar, subject="Zaproszenie: {{ name }}", body_html="")
    start_mailing(mailing)
    raw = smtp_server.handler.messages[0][1]
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    assert header_block.isascii()
    assert b"=?utf-8?" in header_block.lower()
    message = smtp_server.messages[0]
    assert message["To"].addresses[0].display_name == 'Łucja "Lu" Żółtowska, PhD'
    assert message["Subject"] == 'Zaproszenie: Łucja "Lu" Żółtowska, PhD'


def test_very_long_html_lines_pass_the_smtp_server(webinar, sending, smtp_server):
    make_link_holders(webinar, 2)
    # One paragraph of ~20 kB with no line break: premailer keeps it on one line.
    body = "<p>" + " ".join(["word"] * 5000) + "</p>" * 1
    body += "<p>" + "x" * 3000 + "</p>"
    mailing = create_mailing(webinar, subject="Long", body_html=body)
    start_mailing(mailing)
    assert mailing.progress()["sent"] == 2
    for _rcpt, raw in smtp_server.handler.messages:
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    html, text, _ics = parts(smtp_server.messages[0])
    assert "x" * 3000 in html


def test_link_holders_exclude_revoked_expired_and_no_email(
    webinar, sending, smtp_server
):
    links = make_link_holders(webinar, 4)
    now = timezone.now()
    PersonalLink.objects.filter(pk=links[0].pk).update(revoked_at=now)
    PersonalLink.objects.filter(pk=links[1].pk).update(
        expires_at=now - dt.timedelta(days=1)
    )
    PersonalLink.objects.create(webinar=webinar, name="No mail")
    mailing = create_mailing(webinar, subject="Hi", body_html="")
    assert start_mailing(mailing) == 2
    assert set(smtp_server.by_recipient()) == {links[2].email, links[3].email}


def test_pause_resume_cancel(webinar, sending, smtp_server):
    make_link_holders(webinar, 3)
    mailing = create_mailing(webinar, subject="Hi", body_html="")
    # Paused before any job ran (a sync queue runs them at commit): nothing sent.
    assert pause_mailing(mailing) is False  # a draft is not sending
    assert cancel_mailing(mailing) is True
    assert start_mailing(mailing) == 0
    assert resume_mailing(mailing) == 0
    assert smtp_server.by_recipient() == {}


def test_signature_choice_and_preview(webinar, sending, smtp_server):
    links = make_link_holders(webinar, 1, names=["Anna"])
    signature = Signature.objects.create(name="Dr", body="<p>Dr Who, host</p>")
    mailing = create_mailing(
        webinar, subject="Hi {{ name }}", body_html=BODY, signature=signature
    )
    preview = render_preview(mailing, links[0])
    assert preview.subject == "Hi Anna"
    assert "Dr Who, host" in preview.html and "organisers" not in preview.html
    assert links[0].get_url() in preview.text
    assert "kawa123" in preview.text
    start_mailing(mailing)
    html, text, _ics = parts(smtp_server.messages[0])
    assert "Dr Who, host" in html


def pause_during_fifth_data(smtp_server, mailing) -> int:
    """Start ``mailing`` with the SMTP sink pausing it while it accepts the fifth
    message; returns how many messages the sink had accepted when the pause was
    committed (the fifth not included: it waits for the pause)."""
    handler = smtp_server.handler
    accept = handler.handle_DATA
    fifth = threading.Event()
    accepted_at_pause: list[int] = []

    async def handle_data(server, session, envelope):
        with handler.lock:
            is_fifth = len(handler.messages) == 4 and not fifth.is_set()
            if is_fifth:
                fifth.set()
        if is_fifth:
            await asyncio.to_thread(pause)
        return await accept(server, session, envelope)

    def pause():
        try:
            Mailing.objects.filter(pk=mailing.pk).update(status=MailingStatus.PAUSED)
            with handler.lock:
                accepted_at_pause.append(len(handler.messages))
        finally:
            connection.close()  # this thread's own connection

    handler.handle_DATA = handle_data
    try:
        start_mailing(mailing)
    finally:
        handler.handle_DATA = accept
    return accepted_at_pause[0]


def test_pause_between_two_messages_stops_before_the_next_data(
    webinar, sending, smtp_server, settings
):
    """One connection. Paused while message 5 is being accepted: the next
    message's transaction (opened along with message 5's content) is abandoned,
    not delivered; nothing is left 'sending'; resume delivers the rest, each
    once."""
    settings.WAGTAIL_PAIDWEBINAR_SMTP_CONNECTIONS = 1
    links = make_link_holders(webinar, 12)
    mailing = create_mailing(webinar, subject="Hi {{ name }}", body_html="<p>x</p>")
    pause_during_fifth_data(smtp_server, mailing)

    progress = mailing.progress()
    assert len(smtp_server.messages) == 5
    assert progress["sent"] == 5
    assert progress["sending"] == 0
    assert progress["pending"] == 7
    sent_to = set(
        MailingRecipient.objects.filter(
            mailing=mailing, status=RecipientStatus.SENT
        ).values_list("email", flat=True)
    )
    assert sent_to == set(smtp_server.by_recipient())

    assert resume_mailing(mailing) == 7
    assert smtp_server.by_recipient() == {link.email: 1 for link in links}
    assert mailing.progress()["sent"] == 12


@pytest.mark.parametrize("connections", [2, 4])
def test_pause_stops_every_connection_after_its_message_in_flight(
    webinar, sending, smtp_server, settings, connections
):
    """Several connections (PostgreSQL; SQLite sends over one). Paused while
    message 5 is being accepted: after the pause each other connection delivers
    at most the message it had already claimed, the transactions opened for the
    next ones are abandoned; nothing is left 'sending', what was delivered is what
    the ledger says was sent, and resume delivers the rest, each once."""
    settings.WAGTAIL_PAIDWEBINAR_SMTP_CONNECTIONS = connections
    links = make_link_holders(webinar, 40)
    mailing = create_mailing(webinar, subject="Hi {{ name }}", body_html="<p>x</p>")
    accepted = pause_during_fifth_data(smtp_server, mailing)

    progress = mailing.progress()
    delivered = smtp_server.by_recipient()
    # Once paused: the fifth message, and on each other connection at most the
    # message whose DATA had already gone out.
    assert accepted >= 4
    assert 5 <= len(smtp_server.messages) <= accepted + connections, progress
    assert progress["sent"] == len(smtp_server.messages)
    assert progress["sending"] == 0
    assert progress["pending"] == 40 - progress["sent"]
    sent_to = set(
        MailingRecipient.objects.filter(
            mailing=mailing, status=RecipientStatus.SENT
        ).values_list("email", flat=True)
    )
    assert sent_to == set(delivered)
    assert all(n == 1 for n in delivered.values())

    assert resume_mailing(mailing) == 40 - progress["sent"]
    assert smtp_server.by_recipient() == {link.email: 1 for link in links}
    assert mailing.progress()["sent"] == 40


def test_pipelining_server_gets_mail_and_rcpt_together(webinar, sending, smtp_server):
    """A server that offers PIPELINING (RFC 2920) gets MAIL FROM and RCPT TO in one
    write; a refused address still fails only its own row, a 4xx leaves it pending,
    and everyone else gets exactly one message."""
    smtp_server.handler.pipelining = True
    links = make_link_holders(webinar, 6)
    smtp_server.handler.codes[links[2].email] = "550 5.1.1 No such user"
    smtp_server.handler.codes[links[4].email] = "451 4.3.0 Try again later"
    mailing = create_mailing(webinar, subject="Hi {{ name }}", body_html="<p>x</p>")
    start_mailing(mailing)

    delivered = {links[i].email: 1 for i in (0, 1, 3, 5)}
    assert smtp_server.by_recipient() == delivered
    rows = dict(
        MailingRecipient.objects.filter(mailing=mailing).values_list("email", "status")
    )
    assert rows[links[2].email] == RecipientStatus.FAILED
    assert rows[links[4].email] == RecipientStatus.PENDING
    assert "550" in MailingRecipient.objects.get(email=links[2].email).last_error
    handler = smtp_server.handler
    assert handler.mail_commands == 6
    assert handler.pipelined_mail_commands == 6


def test_pipelining_server_gets_each_message_with_the_next_ones_envelope(
    webinar, sending, smtp_server, settings
):
    """With PIPELINING the end of one message and the next message's MAIL FROM,
    RCPT TO and DATA go out in one write (RFC 2920 §3.1): one round trip a
    message, not four. Each row is still claimed before its content goes out.
    (One connection, so that every message but the last has a next one.)"""
    settings.WAGTAIL_PAIDWEBINAR_SMTP_CONNECTIONS = 1
    smtp_server.handler.pipelining = True
    links = make_link_holders(webinar, 8)
    mailing = create_mailing(webinar, subject="Hi {{ name }}", body_html="<p>x</p>")
    start_mailing(mailing)

    assert smtp_server.by_recipient() == {link.email: 1 for link in links}
    # Every message but the last was followed in the same write by the next
    # message's envelope.
    assert smtp_server.handler.data_followed_by_mail == 7
    assert mailing.progress()["sent"] == 8


def test_row_taken_after_its_data_was_accepted_is_abandoned_not_sent(
    webinar, sending, smtp_server, settings
):
    """The server accepted a message's DATA (354) but its row is no longer
    pending when the loop claims it (another worker took it): the transaction is
    abandoned by closing the connection, never given its content, and the loop
    goes on over a new connection (one connection here, so that the count of
    connections is the abandon's)."""
    settings.WAGTAIL_PAIDWEBINAR_SMTP_CONNECTIONS = 1
    smtp_server.handler.pipelining = True
    links = make_link_holders(webinar, 5)
    taken = links[2].email
    mailing = create_mailing(webinar, subject="Hi {{ name }}", body_html="<p>x</p>")
    handler = smtp_server.handler
    accept_rcpt = handler.handle_RCPT

    async def handle_rcpt(server, session, envelope, address, rcpt_options):
        if address.lower() == taken:
            await asyncio.to_thread(take_row)
        return await accept_rcpt(server, session, envelope, address, rcpt_options)

    def take_row():
        try:
            MailingRecipient.objects.filter(mailing=mailing, email=taken).update(
                status=RecipientStatus.SENT, message_id="<elsewhere@example.com>"
            )
        finally:
            connection.close()  # this thread's own connection

    handler.handle_RCPT = handle_rcpt
    try:
        start_mailing(mailing)
    finally:
        handler.handle_RCPT = accept_rcpt

    assert smtp_server.by_recipient() == {
        link.email: 1 for link in links if link.email != taken
    }
    row = MailingRecipient.objects.get(mailing=mailing, email=taken)
    assert row.message_id == "<elsewhere@example.com>"
    assert mailing.progress()["sent"] == 5
    assert handler.greetings == 2  # the abandoned connection and its successor


def test_server_without_pipelining_gets_one_command_at_a_time(
    webinar, sending, smtp_server
):
    links = make_link_holders(webinar, 3)
    mailing = create_mailing(webinar, subject="Hi", body_html="<p>x</p>")
    start_mailing(mailing)
    assert smtp_server.by_recipient() == {link.email: 1 for link in links}
    assert smtp_server.handler.mail_commands == 3
    assert smtp_server.handler.pipelined_mail_commands == 0
    assert smtp_server.handler.data_followed_by_mail == 0


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="synchronous_commit is PostgreSQL's"
)
def test_ledger_commits_are_durable_unless_the_site_opts_out(settings):
    """By default the send loop leaves the database's durability alone; with
    LEDGER_SYNCHRONOUS_COMMIT = False its connection runs ``SET synchronous_commit
    TO OFF`` and puts it back afterwards."""

    def current() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    durable = current()
    restore = _relax_commit()
    assert current() == durable
    restore()
    assert current() == durable

    settings.WAGTAIL_PAIDWEBINAR_LEDGER_SYNCHRONOUS_COMMIT = False
    restore = _relax_commit()
    assert current() == "off"
    restore()
    assert current() == durable
