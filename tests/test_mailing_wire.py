"""The wire form of a mailing (mailing/wire.py) against Django's own serialisation:
for the same recipient both must parse to the same headers and the same parts."""

from __future__ import annotations

import email
from email import policy

import pytest
from django.core.mail.message import BadHeaderError, sanitize_address
from wagtail.models import Site

from wagtail_paidwebinar.mailing import create_mailing, ics
from wagtail_paidwebinar.mailing.message import build_message
from wagtail_paidwebinar.mailing.render import build_template, personalise
from wagtail_paidwebinar.mailing.wire import MAX_LINE, WireMessage, encoded_words
from wagtail_paidwebinar.models import MailingSettings

LINK = "https://webinars.example.com/webinars/x/?access=12.AbCdEf_-0123456789"
UNSUBSCRIBE = "https://webinars.example.com/unsubscribe/tok.en/"
NAMES = [
    "Ann",
    "Żółć Gęś",
    'O\'Brien, "Jr."',
    "a <b@c.example>",
    "😀 Emoji Łukasz",
    "N" * 200,
    "Zażółć gęślą jaźń " * 11,
    "<script>alert(1)</script> & Co",
]
ADDRESSES = ["ann@example.org", "very.long.address.with.many.parts@sub.example.org"]


@pytest.fixture
def template(db, webinar):
    ms = MailingSettings.for_site(Site.objects.get(is_default_site=True))
    ms.from_name = "Akademia Żółw"
    ms.from_email = "webinars@example.com"
    ms.reply_to = "help@example.com"
    ms.signature = "<p>Pozdrawiamy, <b>organizatorzy</b></p>"
    ms.save()
    webinar.room_password = "kawa123"
    webinar.save()
    # A paragraph far over the 998-octet SMTP line limit (one rich-text line).
    long_paragraph = "<p>" + "słowo " * 300 + "</p>"
    mailing = create_mailing(
        webinar,
        subject="Zaproszenie dla {{ name }}: {{ webinar }}",
        body_html="<p>Cześć {{ name }}!</p>" + long_paragraph,
    )
    mailing.subscriber_list_id = None
    return build_template(mailing)


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)


def leaves(message) -> list[tuple]:
    return [
        (
            part.get_content_type(),
            part.get_content(),
            part.get_filename(),
            part.get_param("method"),
        )
        for part in message.walk()
        if not part.is_multipart()
    ]


def django_bytes(template, *, name, address, unsubscribe=""):
    rendered = personalise(template, name=name, link=LINK, unsubscribe_url=unsubscribe)
    message = build_message(
        template, rendered, name=name, email=address, unsubscribe_url=unsubscribe
    )
    return message.message().as_bytes(linesep="\r\n")


@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize("name", NAMES)
def test_same_message_as_django(template, name, address):
    wire = WireMessage(template)
    from_email, recipients, data, message_id = wire.envelope(
        name=name, email=address, link=LINK
    )
    ours = parse(data)
    theirs = parse(django_bytes(template, name=name, address=address))

    for header in ("Subject", "From", "To", "Reply-To", "MIME-Version"):
        assert str(ours[header]).strip() == str(theirs[header]).strip(), header
    assert ours["To"].addresses[0].display_name == name
    assert ours["To"].addresses[0].addr_spec == address
    assert ours["Message-ID"] == message_id
    assert ours["Date"].datetime is not None
    assert [p.get_content_type() for p in ours.walk()] == [
        p.get_content_type() for p in theirs.walk()
    ]
    assert leaves(ours) == leaves(theirs)
    assert not ours.defects
    assert all(not part.defects for part in ours.walk())
    # Envelope, as Django's SMTP backend would give it to smtplib.
    assert recipients == [address]
    assert from_email == sanitize_address(template.from_email, "utf-8")


def test_long_lines_quoted_printable_others_as_they_are(template):
    _from, _to, data, _id = WireMessage(template).envelope(
        name="Żółć", email="a@example.org", link=LINK
    )
    assert max(len(line) for line in data.split(b"\r\n")) <= MAX_LINE
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    message = parse(data)
    html = message.get_body(("html",))
    assert html["Content-Transfer-Encoding"] == "quoted-printable"
    assert "słowo " * 300 in html.get_content()
    text = message.get_body(("plain",))
    assert text.get_content().count("słowo") == 300
    # The calendar has short lines only: sent as it is.
    assert message.get_payload()[1]["Content-Transfer-Encoding"] in ("8bit", "7bit")


def test_personal_values_escaped_and_unsubscribe_headers(template):
    template = template.__class__(
        **{**template.to_dict(), "list_unsubscribe": True, "unsubscribe_html": "U"}
    )
    data = WireMessage(template).envelope(
        name="<b>Ann</b> & Bob",
        email="a@example.org",
        link=LINK,
        unsubscribe_url=UNSUBSCRIBE,
    )[2]
    message = parse(data)
    html = message.get_body(("html",)).get_content()
    assert "&lt;b&gt;Ann&lt;/b&gt; &amp; Bob" in html
    assert "<b>Ann</b>" not in html
    assert LINK.replace("&", "&amp;") in html
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    calendar = message.get_payload()[1]
    assert calendar.get_filename() == "invitation.ics"
    assert LINK in calendar.get_content().replace("\r\n ", "")


@pytest.mark.parametrize(
    "name,address",
    [
        ("Ann\r\nBcc: victim@example.org", "a@example.org"),
        ("Ann", "a@example.org\nBcc: victim@example.org"),
        ("Ann\u2028", "a@example.org"),
    ],
)
def test_header_injection_refused(template, name, address):
    with pytest.raises(BadHeaderError):
        WireMessage(template).envelope(name=name, email=address, link=LINK)


def test_internationalised_domain_goes_out_in_punycode(template):
    _from, recipients, data, _id = WireMessage(template).envelope(
        name="Jürgen", email="jurgen@bücher.example", link=LINK
    )
    assert recipients == ["jurgen@xn--bcher-kva.example"]
    assert parse(data)["To"].addresses[0].domain == "xn--bcher-kva.example"


def test_every_message_is_unique(template):
    wire = WireMessage(template)
    ids = {
        wire.envelope(name="Ann", email="a@example.org", link=LINK)[3]
        for _ in range(50)
    }
    assert len(ids) == 50


@pytest.mark.parametrize(
    "line",
    ["URL;VALUE=URI:" + "a" * n for n in (0, 60, 61, 62, 135, 136, 300)]
    + ["DESCRIPTION:" + "żółć " * n for n in (1, 20, 80)],
)
def test_ics_fold_keeps_lines_short_and_content_whole(line):
    folded = ics.fold(line)
    assert folded.endswith("\r\n")
    physical = folded[:-2].split("\r\n")
    assert all(len(part.encode("utf-8")) <= 75 for part in physical)
    assert all(part.startswith(" ") for part in physical[1:])
    assert folded[:-2].replace("\r\n ", "") == line


@pytest.mark.parametrize(
    "subject", ["Zaproszenie", "Zażółć gęślą jaźń " * 12, "😀" * 40, "a" * 44 + "ż"]
)
def test_subject_encoded_words_decode_to_the_subject(subject):
    encoded = encoded_words(subject)
    assert all(len(line.strip()) <= 75 for line in encoded.split(b"\r\n"))
    message = parse(b"Subject: " + encoded + b"\r\n\r\n")
    assert message["Subject"] == subject
