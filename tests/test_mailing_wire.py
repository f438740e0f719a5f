"""The message every backend gets (mailing/message.py ``compose``) against Django's
own serialisation: for the same recipient both must parse to the same headers and
the same parts."""

from __future__ import annotations

import email
from dataclasses import replace
from email import policy
from email.header import Header
from email.mime.text import MIMEText
from smtplib import quoteaddr

import django
import pytest
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.message import BadHeaderError, sanitize_address
from wagtail.models import Site

from wagtail_paidwebinar.mailing import create_mailing, ics
from wagtail_paidwebinar.mailing import message as message_module
from wagtail_paidwebinar.mailing.message import MAX_LINE, Layout, compose
from wagtail_paidwebinar.mailing.render import build_template, personalise
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
MODERN_DJANGO_EMAIL = django.VERSION >= (6, 1)
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


def _lines(content):
    # A line break is a line break: Django 6.1's builder decodes a text part's
    # breaks as "\n" where ours (and Django 5.2's) keep "\r\n"; on the wire both
    # are CRLF (the byte-level checks below hold that).
    return content.replace("\r\n", "\n") if isinstance(content, str) else content


def leaves(message) -> list[tuple]:
    return [
        (
            part.get_content_type(),
            _lines(part.get_content()),
            part.get_filename(),
            part.get_param("method"),
        )
        for part in message.walk()
        if not part.is_multipart()
    ]


def django_envelope_from(address: str) -> str:
    """The MAIL FROM address Django's SMTP backend would send."""
    if MODERN_DJANGO_EMAIL:  # Django 6.1 deprecates sanitize_address()
        return SMTPBackend(alias="reference", host="localhost").prep_address(address)
    return sanitize_address(address, "utf-8")


def django_bytes(template, *, name, address, unsubscribe=""):
    """The reference: the same recipient's message built with Django's own
    e-mail classes and serialised by them, as Django's SMTP backend would."""
    rendered = personalise(template, name=name, link=LINK, unsubscribe_url=unsubscribe)
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=template.from_email,
        to=[email.utils.formataddr((name, address))],
        reply_to=template.reply_to,
        headers={"Message-ID": email.utils.make_msgid(domain="example.com")},
    )
    message.attach_alternative(rendered.html, "text/html")
    if MODERN_DJANGO_EMAIL:  # Django 6.1 deprecates MIMEBase attachments
        part = email.message.MIMEPart()
        part.set_content(
            rendered.ics,
            subtype="calendar",
            charset="utf-8",
            disposition="attachment",
            filename="invitation.ics",
            params={"method": "PUBLISH"},
        )
    else:
        part = MIMEText(rendered.ics, "calendar", "utf-8")
        part.set_param("method", "PUBLISH")
        part.add_header("Content-Disposition", "attachment", filename="invitation.ics")
    message.attach(part)
    built = message.message()
    try:
        return built.as_bytes(linesep="\r\n")
    except TypeError:
        # Django 6.1 builds a modern email.message.EmailMessage: its line ending
        # comes with the policy.
        return built.as_bytes(policy=built.policy.clone(linesep="\r\n"))


class Wire:
    """What the send loop does with one recipient: compose, then the bytes."""

    def __init__(self, template):
        self.template = template
        self.layout = Layout(template)

    def envelope(self, *, name, email, link, unsubscribe_url=""):
        rendered = personalise(
            self.template, name=name, link=link, unsubscribe_url=unsubscribe_url
        )
        invitation = compose(
            self.template,
            rendered,
            name=name,
            email=email,
            unsubscribe_url=unsubscribe_url,
            layout=self.layout,
        )
        return (
            invitation.envelope_from,
            invitation.recipients,
            invitation.as_bytes(),
            invitation.message_id,
        )


@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize("name", NAMES)
def test_same_message_as_django(template, name, address):
    wire = Wire(template)
    from_email, recipients, data, message_id = wire.envelope(
        name=name, email=address, link=LINK
    )
    ours = parse(data)
    theirs = parse(django_bytes(template, name=name, address=address))

    for header in ("Subject", "From", "To", "Reply-To", "MIME-Version"):
        if header == "To" and theirs["To"].addresses[0].display_name != name:
            # Django 6.1 folds a long non-ASCII display name (the 200-character
            # Polish one) into encoded-words split inside words, and Python's
            # parser reads them back with extra spaces ("gęśl ą"): the reference
            # itself does not carry the name. Ours does (one encoded-word, as
            # Django 5.2 and formataddr write it); checked against the name below.
            continue
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
    assert max(len(line) for line in data.split(b"\r\n")) <= MAX_LINE
    # Envelope: the MAIL FROM / RCPT TO Django's SMTP backend would send.
    assert recipients == [address]
    assert quoteaddr(from_email) == quoteaddr(django_envelope_from(template.from_email))
    # Any other backend gets a Django message whose MIME form is the same.
    rendered = personalise(template, name=name, link=LINK)
    invitation = compose(template, rendered, name=name, email=address)
    django_message = invitation.as_django()
    assert django_message.message() is invitation.mime
    assert parse(django_message.message().as_bytes(linesep="\r\n"))["To"] == ours["To"]
    assert django_message.body == rendered.text
    assert django_message.alternatives[0][0] == rendered.html
    assert django_message.extra_headers["Message-ID"] == invitation.message_id


def test_long_lines_quoted_printable_others_as_they_are(template):
    _from, _to, data, _id = Wire(template).envelope(
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
    data = Wire(template).envelope(
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
        Wire(template).envelope(name=name, email=address, link=LINK)


def test_internationalised_domain_goes_out_in_punycode(template):
    _from, recipients, data, _id = Wire(template).envelope(
        name="Jürgen", email="jurgen@bücher.example", link=LINK
    )
    assert recipients == ["jurgen@xn--bcher-kva.example"]
    assert parse(data)["To"].addresses[0].domain == "xn--bcher-kva.example"


def test_every_message_is_unique(template):
    wire = Wire(template)
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
def test_subject_encoded_words_decode_to_the_subject(template, subject):
    rendered = replace(personalise(template, name="Ann", link=LINK), subject=subject)
    data = compose(template, rendered, name="Ann", email="a@example.org").as_bytes()
    head = data.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(b"Subject:"))
    subject_lines = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith(b" "):
            break
        subject_lines.append(line)
    assert all(len(line) <= 78 for line in subject_lines)
    assert all(line.isascii() for line in subject_lines)
    assert parse(data)["Subject"] == subject


@pytest.mark.parametrize("unsubscribe", ["", UNSUBSCRIBE])
@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize("name", NAMES)
def test_bytes_are_the_standard_librarys_own(template, name, address, unsubscribe):
    """The send loop's bytes (written from the batch's layout) are exactly what
    the standard library's generator writes for the same message tree."""
    template = replace(template, list_unsubscribe=bool(unsubscribe))
    layout = Layout(template)
    rendered = personalise(template, name=name, link=LINK, unsubscribe_url=unsubscribe)
    invitation = compose(
        template,
        rendered,
        name=name,
        email=address,
        unsubscribe_url=unsubscribe,
        layout=layout,
    )
    data = invitation.as_bytes()
    assert layout.wire is not None
    assert data == invitation.mime.as_bytes(policy=message_module.POLICY)
    assert (b"List-Unsubscribe-Post:" in data) == bool(unsubscribe)


_WORDS = ["Zażółć", "gęślą", "jaźń", "Ann", "😀", "O'Brien,", '"Jr."', "ŁÓDŹ", "x" * 9]


@pytest.mark.parametrize("header", ["Subject", "To", "Reply-To"])
def test_one_encoded_word_is_what_header_writes(header):
    """The short cut for a non-ASCII header that fits on one line gives exactly
    email.header.Header's encoding, and gives up where Header folds."""
    import random

    rng = random.Random(14)
    texts = [
        " ".join(rng.choices(_WORDS, k=k)) for k in range(1, 16) for _ in range(40)
    ]
    texts += ["ż" * n for n in range(1, 60)] + ["a" * n + "ż" for n in range(40, 70)]
    shortcuts = 0
    for text in texts:
        expected = Header(text, "utf-8", header_name=header).encode(linesep="\r\n")
        word = message_module._one_encoded_word(text, header)
        if word is not None:
            shortcuts += 1
            assert word == expected, text
        else:
            assert "\r\n" in expected, text
        if not text.isascii():
            assert message_module._encoded(text, header) == expected
    assert 100 < shortcuts < len(texts)
