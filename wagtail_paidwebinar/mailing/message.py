"""Building one message, for every e-mail backend, and telling transient SMTP
failures from permanent ones.

:func:`compose` is the one builder of an invitation: the standard library's
``email.message.EmailMessage`` with ``email.policy.SMTP`` (what Django 6 itself
builds on; no Django e-mail internals, none of the helpers Django 6 deprecates).
The send loop gives its bytes (:meth:`Invitation.as_bytes`) to the SMTP
transaction it runs itself (:mod:`.wire`); any other backend (django-anymail,
console, file, locmem) gets :meth:`Invitation.as_django`, a Django message whose
fields come from the same values and whose ``message()`` is that very MIME
message. The multipart structure: multipart/mixed of multipart/alternative
(text/plain, text/html) and the ``invitation.ics`` attachment (text/calendar,
method=PUBLISH).
"""

from __future__ import annotations

import binascii
import re
import secrets
import smtplib
import socket
from dataclasses import dataclass, field
from email import base64mime, quoprimime
from email import policy as email_policy
from email.header import Header, decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from functools import cached_property

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import BadHeaderError

from .render import MailingTemplate, RenderedEmail

TRANSIENT = "transient"  # this address, later (4xx for the recipient)
CONNECTION = "connection"  # the server or the link to it; the rest of the batch waits
PERMANENT = "permanent"  # this address, never (5xx, bad header, bad address)


class _Policy(email_policy.EmailPolicy):
    """``email.policy.SMTP`` (CRLF line endings, headers folded at 78 characters,
    RFC 2047 for non-ASCII text) that writes a header laid out once per batch
    (:class:`Layout`: a parsed header object carrying its folded form) without
    folding it again for every message; header values stored as text are
    already folded and are written as they are (``refold_source="none"``)."""

    def fold_binary(self, name, value):
        laid_out = getattr(value, "laid_out", None)
        if laid_out is not None:
            return laid_out
        return super().fold_binary(name, value)


#: The policy every message is built and serialised with.
POLICY = _Policy(linesep="\r\n", refold_source="none")
MAX_LINE = 998  # octets, without CRLF (RFC 5321 section 4.5.3.1.6)
ICS_FILENAME = "invitation.ics"
PUBLISH = "PUBLISH"

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


def idna_address(email: str) -> str:
    """``local@domain`` with the domain in IDNA (what SMTP servers accept);
    ValueError for a non-ASCII or missing local part (no SMTPUTF8 here)."""
    local, _at, domain = email.strip().rpartition("@")
    if not local or not domain or not local.isascii():
        raise ValueError(f"Invalid address {email!r}")
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def _address(text: str) -> Address:
    """A sender setting (``Name <address>``, the name maybe RFC 2047-encoded) as
    an address with its display name decoded."""
    name, addr = parseaddr(text)
    if not addr:
        raise ValueError(f"Invalid address {text!r}")
    name = str(make_header(decode_header(name))) if "=?" in name else name
    return Address(display_name=name, addr_spec=idna_address(addr))


def _encoded(text: str, header: str) -> str:
    """Header text folded at 78 characters, non-ASCII text as RFC 2047
    encoded-words (``email.header.Header``, what Django has always used).

    Why not the policy's own folding: before Python 3.12.5 it drops the space
    between two encoded-words when it folds a long non-ASCII subject or name
    (CPython gh-121284), and the recipient would read "Zażółćgęślą"; it also
    parses every header again, the larger part of building a message."""
    if text.isascii():
        return Header(text, "us-ascii", header_name=header).encode(linesep="\r\n")
    return _one_encoded_word(text, header) or Header(
        text, "utf-8", header_name=header
    ).encode(linesep="\r\n")


# What email.header.Header allows on a header's first line (MAXLINELEN) and the
# length of an encoded-word's "=?utf-8?b??=" around its text.
_HEADER_LINE = 78
_UTF8_CHROME = len("=?utf-8?b??=")


def _one_encoded_word(text: str, header: str) -> str | None:
    """``Header(text, "utf-8", header_name=header).encode()`` when its result
    is one encoded-word (the text fits on the header's first line), computed
    without ``Header``'s sizing of every prefix of the text (it measures the
    encoded length once per character); ``None`` when it would fold. The same
    choice of encoding (the shorter of base64 and Q) and the same limit;
    ``tests/test_mailing_wire.py`` compares the two over many texts."""
    data = text.encode("utf-8")
    b64, q = base64mime.header_length(data), quoprimime.header_length(data)
    module, length = (base64mime, b64) if b64 < q else (quoprimime, q)
    if len(header) + 2 + _UTF8_CHROME + length > _HEADER_LINE:
        return None
    return module.header_encode(data, charset="utf-8")


def _encoded_address(address: Address, header: str) -> str:
    """An address for a header: an ASCII display name quoted as needed; another
    as ONE encoded-word (``formataddr``, as Django does): a reader ignores the
    white space between two encoded-words of a name, so splitting it could glue
    or split words. Only a name too long for one line gets several (Django's
    sanitize_address does the same)."""
    if address.display_name.isascii():
        return str(address)
    single = formataddr((address.display_name, address.addr_spec), charset="utf-8")
    if len(single) <= 900:
        return single
    return f"{_encoded(address.display_name, header)} <{address.addr_spec}>"


def _laid_out(header):
    """A parsed header object that carries its folded form (see :class:`_Policy`):
    the generator reads it (Content-Type, boundaries) without parsing it again and
    writes it without folding it again."""
    header.laid_out = header.fold(policy=POLICY).encode("ascii", "surrogateescape")
    return header


def _body_bytes(text: str) -> tuple[str, bytes]:
    """``(Content-Transfer-Encoding, encoded body)`` of a text part: 7bit or 8bit
    as it is, quoted-printable when a line is longer than SMTP allows (RFC 5321's
    998 octets; inlined HTML can have such lines). What Django's SMTP backend
    has always sent."""
    data = text.encode("utf-8")
    if len(data) > MAX_LINE and max(map(len, data.splitlines())) > MAX_LINE:
        data = b"\r\n".join(data.splitlines()) + b"\r\n"
        return "quoted-printable", binascii.b2a_qp(data, istext=True)
    return ("7bit" if data.isascii() else "8bit"), data


def _body(text: str) -> tuple[str, str]:
    """:func:`_body_bytes` as ``set_content`` stores a payload (8bit as
    surrogate-escaped bytes)."""
    cte, data = _body_bytes(text)
    return cte, data.decode("ascii", "surrogateescape")


def _crlf(data: bytes) -> bytes:
    """Every line break (CRLF, CR or LF: email.generator's NLCRE) as CRLF, as the
    standard library's generator writes a text part's payload with
    ``linesep="\\r\\n"``; three C-level replaces rather than a regex."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


@dataclass
class _Node:
    """One part of the laid-out message: its headers (folded once), and either
    its sub-parts or which text it holds (``body``: text, html or ics)."""

    headers: list[tuple[str, object]]
    children: list[_Node] | None = None
    body: str = ""


_BODY_OF_TYPE = {"text/plain": "text", "text/html": "html", "text/calendar": "ics"}


class Layout:
    """A mailing's messages laid out once per batch: the multipart structure and
    every header that is the same for every recipient (From, Reply-To, the parts'
    Content-Type and Content-Disposition), built with the standard library's own
    ``set_content``/``add_alternative``/``add_attachment`` and folded once; and
    the envelope sender. :func:`compose` then only fills in one recipient."""

    def __init__(self, template: MailingTemplate) -> None:
        self.template = template
        from_address = _address(template.from_email)
        reply_to = [_address(value) for value in template.reply_to]
        self.envelope_from = from_address.addr_spec
        # For the Django message of other backends: decoded, as typed.
        self.from_email = str(from_address)
        self.reply_to = [str(address) for address in reply_to]
        self.quoted_from = smtplib.quoteaddr(self.envelope_from)  # for MAIL FROM
        self.sender_headers = [("From", _encoded_address(from_address, "From"))]
        if reply_to:
            self.sender_headers.append(
                (
                    "Reply-To",
                    ",\r\n ".join(_encoded_address(a, "Reply-To") for a in reply_to),
                )
            )
        self.transfer_encodings = {
            cte: _laid_out(POLICY.header_factory("Content-Transfer-Encoding", cte))
            for cte in ("7bit", "8bit", "quoted-printable")
        }
        self.new_boundaries()

    def new_boundaries(self) -> None:
        """Lay the structure out again with fresh multipart boundaries."""
        skeleton = EmailMessage(policy=POLICY)
        skeleton.set_content("-\n", charset="utf-8", cte="7bit")
        skeleton.add_alternative("-\n", subtype="html", charset="utf-8", cte="7bit")
        if self.template.ics:
            skeleton.add_attachment(
                "-\n",
                subtype="calendar",
                charset="utf-8",
                cte="7bit",
                filename=ICS_FILENAME,
                params={"method": self.template.ics_method},
            )
        token = secrets.token_hex(12)
        self.boundaries = []
        for index, part in enumerate(skeleton.walk()):
            if part.is_multipart():
                boundary = f"=_pw_{index}_{token}"
                part.set_boundary(boundary)
                self.boundaries.append(boundary)
        self.root = self._node(skeleton, root=True)
        self.wire = self._wire()

    def _wire(self) -> tuple[list[bytes], list[str]] | None:
        """The bytes the standard library's generator writes for this structure,
        cut where each text goes: ``(segments, which text goes after each but the
        last)``. Laid out once per batch by the generator itself (the tree filled
        with markers), so that per recipient :meth:`serialise` only encodes the
        texts and joins them in: what the generator does with a text part's
        payload (line breaks as CRLF), without walking the tree again for every
        message. ``None`` (the generator then writes every message) if the
        markers are not found as expected."""
        token = secrets.token_hex(8)
        markers = {key: f"pw-text-{key}-{token}" for key in _BODY_OF_TYPE.values()}
        data = self._fill(self.root, markers).as_bytes(policy=POLICY)
        lead = self.transfer_encodings["7bit"].laid_out + b"\r\n"
        by_marker = {(lead + m.encode()): key for key, m in markers.items()}
        pattern = re.compile(b"|".join(re.escape(m) for m in by_marker))
        segments, order, start = [], [], 0
        for match in pattern.finditer(data):
            segments.append(data[start : match.start()])
            order.append(by_marker[match.group()])
            start = match.end()
        segments.append(data[start:])
        leaves = sum(1 for _ in self._leaves(self.root))
        return (segments, order) if len(order) == leaves else None

    def _leaves(self, node: _Node):
        if node.children is None:
            yield node
        for child in node.children or ():
            yield from self._leaves(child)

    def check_boundaries(self, bodies: dict) -> None:
        """Lay out again if a text happens to contain a boundary."""
        while any(b in text for b in self.boundaries for text in bodies.values()):
            # A personal value cannot guess a random boundary; still, be sure.
            self.new_boundaries()

    def _node(self, part: MIMEPart, *, root: bool = False) -> _Node:
        headers = [
            (name, _laid_out(value))
            for name, value in part.raw_items()
            # The top level's MIME-Version only (set_content gave the first text
            # part one too); each body's transfer encoding is chosen per message.
            if (root or name.lower() != "mime-version")
            and name.lower() != "content-transfer-encoding"
        ]
        if part.is_multipart():
            return _Node(headers, [self._node(child) for child in part.iter_parts()])
        return _Node(headers, body=_BODY_OF_TYPE[part.get_content_type()])

    def fill(self, root_headers: list[tuple[str, str]], bodies: dict) -> EmailMessage:
        """The message tree for one recipient: ``root_headers`` first, then the
        laid-out structure with ``bodies`` (text, html, ics) in it."""
        self.check_boundaries(bodies)
        return self._fill(self.root, bodies, root_headers)

    def serialise(
        self, root_headers: list[tuple[str, str]], bodies: dict
    ) -> bytes | None:
        """What ``fill(root_headers, bodies).as_bytes(policy=POLICY)`` gives, from
        the structure's bytes laid out once (:meth:`_wire`): each header folded by
        the policy, each text encoded as the generator writes it; ``None`` when
        there is no such layout. ``tests/test_mailing_wire.py`` holds the two
        equal byte for byte."""
        if self.wire is None:
            return None
        self.check_boundaries(bodies)
        segments, order = self.wire
        out = [POLICY.fold_binary(name, value) for name, value in root_headers]
        out.append(segments[0])
        for key, segment in zip(order, segments[1:], strict=True):
            cte, data = _body_bytes(bodies[key])
            out += (
                self.transfer_encodings[cte].laid_out,
                b"\r\n",
                _crlf(data),
                segment,
            )
        return b"".join(out)

    def _fill(self, node: _Node, bodies: dict, first=()) -> InvitationMIME:
        part = InvitationMIME(policy=POLICY)
        for name, value in (*first, *node.headers):
            part.set_raw(name, value)
        if node.children is not None:
            for child in node.children:
                part.attach(self._fill(child, bodies))
            return part
        cte, payload = _body(bodies[node.body])
        part.set_raw("Content-Transfer-Encoding", self.transfer_encodings[cte])
        part.set_payload(payload)
        return part


@dataclass
class Invitation:
    """One recipient's message, for any backend (see the module docstring)."""

    layout: Layout
    headers: list[tuple[str, str]]  # the recipient's own, folded
    bodies: dict[str, str]  # text, html, ics
    envelope_from: str
    recipients: list[str]
    message_id: str
    # What a Django message needs besides the MIME tree (django-anymail reads
    # these fields, not the MIME).
    rendered: RenderedEmail
    from_email: str
    to: str
    reply_to: list[str] = field(default_factory=list)
    extra_headers: dict[str, str] = field(default_factory=dict)

    @cached_property
    def mime(self) -> EmailMessage:
        """The message tree (the standard library's ``EmailMessage``)."""
        return self.layout.fill(self.headers, self.bodies)

    def as_bytes(self) -> bytes:
        """The message as SMTP sends it (CRLF, no line over 998 octets): the
        bytes of :attr:`mime`, written from the batch's layout
        (:meth:`Layout.serialise`) without building the tree."""
        if "mime" not in self.__dict__:
            data = self.layout.serialise(self.headers, self.bodies)
            if data is not None:
                return data
        return self.mime.as_bytes(policy=POLICY)

    def as_django(self, connection=None) -> EmailMultiAlternatives:
        """The same message as a Django message for ``connection``: its fields
        for backends that read them (django-anymail's e-mail services), and
        ``message()`` returning this very MIME message for backends that
        serialise it (SMTP, console, file, locmem, anymail's raw-MIME ones)."""
        message = _PrebuiltEmail(
            subject=self.rendered.subject,
            body=self.rendered.text,
            from_email=self.from_email,
            to=[self.to],
            reply_to=self.reply_to,
            headers=dict(self.extra_headers),
            connection=connection,
        )
        message.attach_alternative(self.rendered.html, "text/html")
        if self.rendered.ics:
            # A MIME part, not a (name, content, type) triple: an e-mail service
            # gets the whole Content-Type, method parameter included (anymail's
            # Attachment.content_type), without which Outlook may ignore a
            # METHOD:CANCEL. Appended as is: Django never serialises it (message()
            # below), so this works with Django 5.2 and 6.
            message.attachments.append(self.calendar_part())
        message.prebuilt = self.mime
        return message

    def calendar_part(self) -> MIMEPart:
        """The ``.ics`` as an attachment part whose Content-Type carries the
        ``method`` parameter of the calendar part in :attr:`mime`."""
        method = PUBLISH
        for sub in self.mime.walk():
            if sub.get_content_type() == "text/calendar":
                method = str(sub.get_param("method") or PUBLISH)
                break
        part = MIMEPart(policy=POLICY)
        part.set_content(
            self.rendered.ics,
            subtype="calendar",
            charset="utf-8",
            # Quoted-printable, not base64: code that looks at
            # message.attachments still reads the calendar's ASCII lines.
            cte="quoted-printable",
            disposition="attachment",
            filename=ICS_FILENAME,
            params={"method": method},
        )
        return part


class _PrebuiltEmail(EmailMultiAlternatives):
    """A Django message whose MIME form is the one :func:`compose` built."""

    prebuilt: EmailMessage

    def message(self, *args, **kwargs):  # Django 5.2: (), 6.x: (*, policy=...)
        return self.prebuilt


class InvitationMIME(EmailMessage):
    """The standard library's message; ``as_bytes``/``as_string`` also take the
    ``linesep`` argument Django 5.2's backends pass (``message().as_bytes(
    linesep="\\r\\n")``, an argument of Django's own MIME classes)."""

    def as_bytes(self, unixfrom=False, policy=None, linesep=None) -> bytes:
        policy = policy or self.policy
        if linesep is not None:
            policy = policy.clone(linesep=linesep)
        return super().as_bytes(unixfrom=unixfrom, policy=policy)

    def as_string(self, unixfrom=False, maxheaderlen=0, policy=None, linesep=None):
        policy = policy or self.policy
        if linesep is not None:
            policy = policy.clone(linesep=linesep)
        return super().as_string(unixfrom, maxheaderlen, policy)


def compose(
    template: MailingTemplate,
    rendered: RenderedEmail,
    *,
    name: str,
    email: str,
    unsubscribe_url: str = "",
    layout: Layout | None = None,
) -> Invitation:
    """The one builder of a message: text + HTML alternatives and the ``.ics``
    invitation, a unique Message-ID, Reply-To, and for list mailings
    List-Unsubscribe with RFC 8058 one-click. ``layout``: the batch's
    :class:`Layout` (laid out once per batch), else laid out here.

    Raises BadHeaderError for a line break in the name, address or subject
    (header injection) and ValueError for an address that cannot be sent to (the
    caller fails that row)."""
    check_header_value(name, "name")
    check_header_value(email, "e-mail")
    check_header_value(rendered.subject, "subject")
    layout = layout or Layout(template)
    to = Address(display_name=name, addr_spec=idna_address(email))
    message_id = make_msgid(domain=template.msgid_domain)
    extra_headers = {"Message-ID": message_id}
    if unsubscribe_url and template.list_unsubscribe:
        extra_headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        extra_headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    headers = [
        ("Subject", _encoded(rendered.subject, "Subject")),
        *layout.sender_headers,
        ("To", _encoded_address(to, "To")),
        ("Date", formatdate(localtime=settings.EMAIL_USE_LOCALTIME)),
        *((header, _encoded(value, header)) for header, value in extra_headers.items()),
    ]
    return Invitation(
        layout=layout,
        headers=headers,
        bodies={"text": rendered.text, "html": rendered.html, "ics": rendered.ics},
        envelope_from=layout.envelope_from,
        recipients=[to.addr_spec],
        message_id=message_id,
        rendered=rendered,
        from_email=layout.from_email,
        to=str(to),
        reply_to=layout.reply_to,
        extra_headers=extra_headers,
    )


def build_message(
    template: MailingTemplate,
    rendered: RenderedEmail,
    *,
    name: str,
    email: str,
    unsubscribe_url: str = "",
    connection=None,
) -> EmailMultiAlternatives:
    """:func:`compose` as a Django message (test sends, non-SMTP backends)."""
    return compose(
        template, rendered, name=name, email=email, unsubscribe_url=unsubscribe_url
    ).as_django(connection)


def _code_kind(code: int | None) -> str:
    if code == 421:  # "service not available, closing channel"
        return CONNECTION
    if code is not None and 400 <= code < 500:
        return TRANSIENT
    return PERMANENT


def classify(exc: BaseException) -> Failure:
    """Sort a sending exception into TRANSIENT, CONNECTION or PERMANENT."""
    try:
        text = str(exc)[:500]
    except Exception:  # a third-party exception whose __str__ fails
        text = f"{type(exc).__name__}{exc.args!r}"[:500]
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and not isinstance(exc, smtplib.SMTPException):
        # An e-mail service's HTTP answer (django-anymail's AnymailAPIError):
        # busy or down (408, 429, 5xx) is the connection's problem, the rest
        # waits; another 4xx refuses this message only.
        kind = CONNECTION if status in (408, 429) or status >= 500 else PERMANENT
        return Failure(kind, f"{status} {text}"[:500])
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
