"""The wire form of a mailing: the MIME message laid out once, filled per recipient.

Django's SMTP backend builds every message as a tree of ``email.message`` objects and
serialises it with the email package's generator: about 1 ms per message, more than
the SMTP exchange itself. A mailing sends thousands of messages that differ only in
a few headers (To, Subject when it names the recipient, Message-ID, Date,
List-Unsubscribe) and in the personal values inside three parts (text, HTML,
calendar). :class:`WireMessage` encodes everything else once (headers, part headers,
boundaries) and per recipient only:

- encodes the personal headers exactly as Django does (``forbid_multi_line_headers``
  and ``sanitize_address``: RFC 2047 for non-ASCII names, IDNA domains);
- encodes each part ``7bit``/``8bit`` like Django, or quoted-printable when a line
  would exceed the 998 octets SMTP allows (RFC 5321), again like Django;
- joins the pieces with CRLF line endings, ready for ``smtplib.SMTP.sendmail``.

The structure is the one :func:`.message.build_message` produces (multipart/mixed of
multipart/alternative text + HTML, and the ``.ics`` attachment); the tests parse both
and compare them header by header and part by part.
"""

from __future__ import annotations

import binascii
import re
import secrets
import smtplib
from dataclasses import replace
from email.header import Header
from email.utils import formataddr, formatdate, make_msgid

from django.conf import settings
from django.core.mail.message import forbid_multi_line_headers, sanitize_address
from django.utils.encoding import punycode

from .message import check_header_value
from .render import MailingTemplate, personalise

CRLF = b"\r\n"
MAX_LINE = 998  # octets, without CRLF (RFC 5321 section 4.5.3.1.6)
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")


def header_line(name: str, value: str, *, encoded: bool = False) -> bytes:
    """``Name: value`` + CRLF, encoded as Django encodes it (RFC 2047 for non-ASCII
    text, addresses via ``sanitize_address``) unless already ``encoded``; long
    lines folded."""
    if not encoded:
        name, value = forbid_multi_line_headers(name, value, "utf-8")
    value = str(value)
    if "\n" in value:  # already folded by email.header.Header
        value = value.replace("\r\n", "\n").replace("\n", "\r\n")
    elif len(name) + 2 + len(value) > 78 and value.isascii():
        value = Header(value, header_name=name).encode(linesep="\r\n")
    return f"{name}: {value}".encode("ascii") + CRLF


def encoded_words(text: str) -> bytes:
    """``text`` as RFC 2047 base64 encoded-words of at most 75 characters, one per
    folded line, never splitting a UTF-8 sequence (what email.header.Header does,
    without its per-character sizing)."""
    words = []
    chunk: list[str] = []
    size = 0
    for char in text:
        n = len(char.encode("utf-8"))
        if size + n > 45:  # 45 octets -> 60 base64 characters + 12 of framing
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += n
    words.append("".join(chunk))
    return b"\r\n ".join(
        b"=?utf-8?b?" + binascii.b2a_base64(word.encode("utf-8"), newline=False) + b"?="
        for word in words
    )


def crlf(text: str) -> str:
    return _LINE_BREAKS.sub("\r\n", text)


def encode_body(text: str, *, normalised: bool = False) -> tuple[bytes, bytes]:
    """``(Content-Transfer-Encoding, body)`` for a text part: CRLF line endings
    (``normalised``: already); 7bit or 8bit as is, quoted-printable when a line is
    longer than SMTP allows."""
    data = (text if normalised else crlf(text)).encode("utf-8")
    # A linear scan (a regex such as [^\n]{999,} backtracks at every position).
    if len(data) > MAX_LINE and max(map(len, data.split(CRLF))) > MAX_LINE:
        return b"quoted-printable", binascii.b2a_qp(data, istext=True)
    return (b"7bit" if data.isascii() else b"8bit"), data


class WireMessage:
    """A mailing's messages, each serialised by filling in one recipient."""

    def __init__(self, template: MailingTemplate) -> None:
        # Line endings normalised once; the personal values have none (names and
        # addresses with line breaks are refused, links and URLs are ours).
        self.template = template = replace(
            template,
            html=crlf(template.html),
            text=crlf(template.text),
            ics=crlf(template.ics),
            unsubscribe_html=crlf(template.unsubscribe_html),
            unsubscribe_text=crlf(template.unsubscribe_text),
        )
        self.encoding = "utf-8"
        self.envelope_from = sanitize_address(template.from_email, self.encoding)
        self.quoted_from = smtplib.quoteaddr(self.envelope_from)  # for MAIL FROM
        self.personal_subject = any(
            template.placeholder(key) in template.subject for key in ("name", "link")
        )
        self.subject_line = b"" if self.personal_subject else self._subject(None)
        fixed = [header_line("From", template.from_email)]
        if template.reply_to:
            fixed.append(header_line("Reply-To", ", ".join(template.reply_to)))
        self.fixed_headers = b"".join(fixed)
        self.new_boundaries()

    def new_boundaries(self) -> None:
        token = secrets.token_hex(16)
        self.mixed = f"=_pw_mixed_{token}".encode("ascii")
        self.alternative = f"=_pw_alt_{token}".encode("ascii")

    def _subject(self, rendered_subject: str | None) -> bytes:
        subject = (
            self.template.subject if rendered_subject is None else rendered_subject
        )
        check_header_value(subject, "subject")
        if subject.isascii():
            return header_line("Subject", subject)
        return b"Subject: " + encoded_words(subject) + CRLF

    def envelope(
        self,
        *,
        name: str,
        email: str,
        link: str,
        unsubscribe_url: str = "",
    ) -> tuple[str, list[str], bytes, str]:
        """``(from, [to], message bytes, Message-ID)`` for one recipient.

        Raises BadHeaderError or ValueError for a name or address that cannot be a
        header (the caller fails that row)."""
        template = self.template
        check_header_value(name, "name")
        check_header_value(email, "e-mail")
        rendered = personalise(
            template, name=name, link=link, unsubscribe_url=unsubscribe_url
        )
        local, _at, domain = email.rpartition("@")
        if not local or not local.isascii():
            raise ValueError(f"Invalid address {email!r}")
        address = f"{local}@{punycode(domain)}"
        # Like Django: one RFC 2047 word for a non-ASCII name (formataddr); a name
        # too long for one line gets several words instead (sanitize_address).
        recipient = formataddr((name, address))
        if len(recipient) > 900:
            recipient = sanitize_address((name, email), self.encoding)
        message_id = make_msgid(domain=template.msgid_domain)
        headers = [
            b"MIME-Version: 1.0\r\n",
            self._subject(rendered.subject) if self.personal_subject else b"",
            self.subject_line,
            self.fixed_headers,
            header_line("To", recipient, encoded=True),
            header_line("Date", formatdate(localtime=settings.EMAIL_USE_LOCALTIME)),
            header_line("Message-ID", message_id),
        ]
        if unsubscribe_url and template.list_unsubscribe:
            headers.append(header_line("List-Unsubscribe", f"<{unsubscribe_url}>"))
            headers.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        text_cte, text = encode_body(rendered.text, normalised=True)
        html_cte, html = encode_body(rendered.html, normalised=True)
        parts = (
            (b'text/plain; charset="utf-8"', text_cte, text),
            (b'text/html; charset="utf-8"', html_cte, html),
        )
        calendar = b""
        if rendered.ics:
            ics_cte, calendar = encode_body(rendered.ics, normalised=True)
        while any(
            self.mixed in body or self.alternative in body
            for body in (text, html, calendar)
        ):  # a personal value cannot guess a random boundary; still, be sure
            self.new_boundaries()
        mixed, alt = self.mixed, self.alternative
        out = [
            *headers,
            b'Content-Type: multipart/mixed; boundary="' + mixed + b'"\r\n',
            CRLF,
            b"--" + mixed + CRLF,
            b'Content-Type: multipart/alternative; boundary="' + alt + b'"\r\n',
            CRLF,
        ]
        for content_type, cte, body in parts:
            out += [
                b"--" + alt + CRLF,
                b"Content-Type: " + content_type + CRLF,
                b"Content-Transfer-Encoding: " + cte + CRLF,
                CRLF,
                body,
                CRLF,  # belongs to the boundary that follows (RFC 2046)
            ]
        out += [b"--" + alt + b"--" + CRLF, CRLF]
        if calendar:
            out += [
                b"--" + mixed + CRLF,
                b'Content-Type: text/calendar; charset="utf-8"; method="PUBLISH"\r\n',
                b"Content-Transfer-Encoding: " + ics_cte + CRLF,
                b'Content-Disposition: attachment; filename="invitation.ics"\r\n',
                CRLF,
                calendar,
                CRLF,
            ]
        out.append(b"--" + mixed + b"--" + CRLF)
        return self.envelope_from, [address], b"".join(out), message_id


def open_transaction(smtp, from_addr: str, to_addrs: list[str], size: int) -> None:
    """MAIL FROM and RCPT TO: the first half of ``smtplib.SMTP.sendmail``, for
    addresses already quoted (``smtplib.quoteaddr``, done in the builder thread).

    When the server offers PIPELINING (RFC 2920; Postfix, Exim and the big relays
    do), the commands go out together and their replies are read afterwards: one
    round trip instead of 1 + recipients. Nothing is delivered until
    :func:`finish_transaction` sends the data, so the caller may do other work
    (record the previous message) in between. Raises what sendmail raises (after
    RSET, or closing on 421)."""
    smtp.ehlo_or_helo_if_needed()
    esmtp = smtp.does_esmtp
    size_option = f" size={size}" if esmtp and smtp.has_extn("size") else ""
    mail = f"MAIL FROM:{from_addr}{size_option}"
    rcpts = [f"RCPT TO:{address}" for address in to_addrs]
    if any("\r" in command or "\n" in command for command in (mail, *rcpts)):
        raise ValueError("Line break in an SMTP command")  # as smtplib.putcmd
    if esmtp and smtp.has_extn("pipelining"):
        smtp.send("".join(f"{command}\r\n" for command in (mail, *rcpts)))
        replies = [smtp.getreply() for _command in range(1 + len(rcpts))]
    else:
        smtp.putcmd(mail)
        replies = [smtp.getreply()]
        if replies[0][0] == 250:
            for command in rcpts:
                smtp.putcmd(command)
                replies.append(smtp.getreply())
                if replies[-1][0] == 421:
                    break
    code, resp = replies[0]
    if code != 250:
        _reset(smtp, code)
        raise smtplib.SMTPSenderRefused(code, resp, from_addr)
    refused = {}
    for address, (code, resp) in zip(to_addrs, replies[1:], strict=False):
        if code not in (250, 251):
            refused[address] = (code, resp)
        if code == 421:
            smtp.close()
            raise smtplib.SMTPRecipientsRefused(refused)
    if len(refused) == len(to_addrs):
        smtp._rset()
        raise smtplib.SMTPRecipientsRefused(refused)


def finish_transaction(smtp, data: bytes) -> None:
    """DATA: the second half of ``smtplib.SMTP.sendmail``; delivered on success."""
    code, resp = smtp.data(data)
    if code != 250:
        _reset(smtp, code)
        raise smtplib.SMTPDataError(code, resp)


def abort_transaction(smtp) -> None:
    """RSET an opened transaction (the row was not ours to send after all)."""
    smtp._rset()


def _reset(smtp, code: int) -> None:
    if code == 421:
        smtp.close()
    else:
        smtp._rset()
