"""Building one message and telling transient SMTP failures from permanent ones."""

from __future__ import annotations

import smtplib
import socket
from dataclasses import dataclass
from email.utils import formataddr, make_msgid

from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import BadHeaderError, SafeMIMEText

from .render import MailingTemplate, RenderedEmail

TRANSIENT = "transient"  # this address, later (4xx for the recipient)
CONNECTION = "connection"  # the server or the link to it; the rest of the batch waits
PERMANENT = "permanent"  # this address, never (5xx, bad header, bad address)

_HEADER_BREAKS = ("\r", "\n", "\x00", "\x85", "\u2028", "\u2029")


class MailingError(Exception):
    """Sending failed in a way a caller shows to an editor (e.g. a test send)."""


@dataclass(frozen=True)
class Failure:
    kind: str
    message: str


def check_header_value(value: str, what: str) -> None:
    """Reject CR/LF (and other line breaks) in anything that ends up in a header."""
    if any(ch in value for ch in _HEADER_BREAKS):
        raise BadHeaderError(f"Line break in the recipient's {what}")


def build_message(
    template: MailingTemplate,
    rendered: RenderedEmail,
    *,
    name: str,
    email: str,
    unsubscribe_url: str = "",
    connection=None,
) -> EmailMultiAlternatives:
    """The multipart message: text + HTML alternatives and the .ics invitation, a
    unique Message-ID, Reply-To, and for list mailings List-Unsubscribe with RFC
    8058 one-click. Names are RFC 2047-encoded by Django; CR/LF raise
    BadHeaderError."""
    check_header_value(name, "name")
    check_header_value(email, "e-mail")
    check_header_value(rendered.subject, "subject")
    headers = {"Message-ID": make_msgid(domain=template.msgid_domain)}
    if unsubscribe_url and template.list_unsubscribe:
        headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=template.from_email,
        to=[formataddr((name, email))],
        reply_to=template.reply_to,
        headers=headers,
        connection=connection,
    )
    message.attach_alternative(rendered.html, "text/html")
    if rendered.ics:
        part = SafeMIMEText(rendered.ics, "calendar", "utf-8")
        part.set_param("method", "PUBLISH")
        part.add_header("Content-Disposition", "attachment", filename="invitation.ics")
        message.attach(part)
    return message


def _code_kind(code: int | None) -> str:
    if code == 421:  # "service not available, closing channel"
        return CONNECTION
    if code is not None and 400 <= code < 500:
        return TRANSIENT
    return PERMANENT


def classify(exc: BaseException) -> Failure:
    """Sort a sending exception into TRANSIENT, CONNECTION or PERMANENT."""
    text = str(exc)[:500]
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        kind = TRANSIENT if codes and all(400 <= c < 500 for c in codes) else PERMANENT
        detail = "; ".join(
            f"{code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
            for code, msg in exc.recipients.values()
        )
        return Failure(kind, detail[:500] or text)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return Failure(CONNECTION, f"SMTP server disconnected: {text}")
    if isinstance(exc, smtplib.SMTPResponseException):
        # SMTPSenderRefused, SMTPDataError, SMTPConnectError, SMTPHeloError...
        error = exc.smtp_error
        if isinstance(error, bytes):
            error = error.decode(errors="replace")
        kind = _code_kind(exc.smtp_code)
        if isinstance(
            exc,
            smtplib.SMTPConnectError
            | smtplib.SMTPHeloError
            | smtplib.SMTPAuthenticationError,
        ):
            # Nothing can be sent until the server (or its config) is fixed.
            kind = CONNECTION
        return Failure(kind, f"{exc.smtp_code} {error}"[:500])
    if isinstance(exc, BadHeaderError | ValueError | UnicodeError):
        return Failure(PERMANENT, f"Bad header or address: {text}")
    if isinstance(exc, socket.timeout | TimeoutError | ConnectionError | OSError):
        return Failure(CONNECTION, f"{type(exc).__name__}: {text}")
    if isinstance(exc, smtplib.SMTPException):
        return Failure(CONNECTION, f"{type(exc).__name__}: {text}")
    return Failure(PERMANENT, f"{type(exc).__name__}: {text}")
