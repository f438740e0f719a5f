"""Rendering: the non-personal part once per mailing, personal values substituted.

:func:`build_template` renders ``mailing/email.html`` and ``mailing/email.txt`` with
unique placeholders where the recipient's name, personal link and unsubscribe link
go, runs premailer **once**, and returns a JSON-serialisable :class:`MailingTemplate`
(stored on the mailing when sending starts). :func:`personalise` then only replaces
the placeholders with the recipient's escaped values instead of running premailer
per message (figures in docs/invitations.md).

Merge fields, in the subject and the body: ``{{ name }}``, ``{{ link }}``,
``{{ password }}``, ``{{ webinar }}``, ``{{ starts_at }}`` (spaces inside the braces
optional; also recognised URL-encoded inside a link target). Whatever the body says,
the personal link and the room password (when set) are always printed below it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from dataclasses import asdict, dataclass, field
from email.header import decode_header, make_header
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import NoReverseMatch
from django.utils import translation
from django.utils.formats import date_format, time_format
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from wagtail.models import Site
from wagtail.rich_text import expand_db_html

from ..models import (
    Mailing,
    MailingRecipient,
    MailingSettings,
    PersonalLink,
    Subscriber,
    WebinarPage,
)
from ..utils import absolute_page_url, base_url
from . import ics
from .text import html_to_text
from .unsubscribe import unsubscribe_url

logger = logging.getLogger(__name__)

MERGE_FIELDS = ("name", "link", "password", "webinar", "starts_at")
_MERGE_RE = re.compile(r"\{\{\s*(name|link|password|webinar|starts_at)\s*\}\}")
_MERGE_URL_RE = re.compile(
    r"%7B%7B(?:%20|\s|\+)*(name|link|password|webinar|starts_at)(?:%20|\s|\+)*%7D%7D",
    re.IGNORECASE,
)
_RELATIVE_HREF_RE = re.compile(r'(\s(?:href|src)=")(/[^/"][^"]*|/)"')
_NEWLINES_RE = re.compile(r"[\r\n\t\v\f\x85\u2028\u2029]+")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class RenderedEmail:
    """One recipient's message: subject, HTML (styles inlined) and plain text."""

    subject: str
    html: str
    text: str
    ics: str = ""


@dataclass(frozen=True)
class MailingTemplate:
    """The non-personal part of a mailing, rendered once (see module docstring)."""

    nonce: str
    subject: str
    html: str
    text: str
    ics: str
    ics_description: str
    from_email: str
    reply_to: list[str] = field(default_factory=list)
    msgid_domain: str = "localhost"
    list_unsubscribe: bool = False
    unsubscribe_html: str = ""
    unsubscribe_text: str = ""
    # The .ics METHOD, also the MIME part's method parameter (message.py).
    ics_method: str = "PUBLISH"
    version: int = FORMAT_VERSION

    def placeholder(self, key: str) -> str:
        return placeholder(self.nonce, key)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> MailingTemplate | None:
        if not data or data.get("version") != FORMAT_VERSION:
            return None
        try:
            return cls(**data)
        except TypeError:
            return None


def placeholder(nonce: str, key: str) -> str:
    # Letters and digits only: survives HTML escaping, premailer, URL attributes
    # and the text template untouched; the random nonce means no body text can
    # collide with it.
    return f"pwm{nonce}{key.replace('_', '')}x"


def local_start(webinar: WebinarPage) -> str:
    """The start in the webinar's timezone, formatted for the active language."""
    return local_time(webinar, webinar.starts_at)


def local_time(webinar: WebinarPage, value: dt.datetime) -> str:
    """``value`` in the webinar's timezone, formatted for the active language."""
    local = value.astimezone(webinar.tzinfo)
    return (
        f"{date_format(local, 'DATE_FORMAT')}, {time_format(local, 'H:i')} "
        f"({webinar.timezone})"
    )


def mailing_settings_for(webinar: WebinarPage) -> MailingSettings:
    site = webinar.get_site() or Site.objects.filter(is_default_site=True).first()
    return MailingSettings.for_site(site)


def sender(ms: MailingSettings) -> tuple[str, list[str]]:
    """(From, Reply-To list) from the site setting, falling back to
    DEFAULT_FROM_EMAIL. CR/LF in the name are dropped (header injection)."""
    default_name, default_addr = parseaddr(settings.DEFAULT_FROM_EMAIL)
    name = _NEWLINES_RE.sub(" ", ms.from_name or default_name).strip()
    addr = (ms.from_email or default_addr or "webmaster@localhost").strip()
    reply_to = [ms.reply_to.strip()] if ms.reply_to else []
    return formataddr((name, addr)), reply_to


def _absolutise(html: str, base: str) -> str:
    return _RELATIVE_HREF_RE.sub(lambda m: f'{m.group(1)}{base}{m.group(2)}"', html)


def _merge(text: str, values: dict[str, str]) -> str:
    text = _MERGE_URL_RE.sub(lambda m: values[m.group(1)], text)
    return _MERGE_RE.sub(lambda m: values[m.group(1)], text)


def signature_html(mailing: Mailing, ms: MailingSettings) -> str:
    if mailing.signature is not None:
        return mailing.signature.body
    return ms.signature or ""


def webinar_language(webinar: WebinarPage) -> str:
    """The language of e-mails about ``webinar``: its page's locale when the site
    offers that language, else ``LANGUAGE_CODE``."""
    try:
        code = webinar.locale.language_code
    except Exception:  # no locale row (a page built in memory): the site default
        code = ""
    try:
        return translation.get_supported_language_variant(code)
    except LookupError:
        return settings.LANGUAGE_CODE


def mailing_language(mailing: Mailing) -> str:
    """The language ``mailing`` is written and rendered in: its own choice, else the
    webinar's. Never the language of whoever presses Send or what triggers a
    webhook, so every part of one e-mail speaks one language."""
    if mailing.language:
        try:
            return translation.get_supported_language_variant(mailing.language)
        except LookupError:
            pass
    return webinar_language(mailing.webinar)


def build_template(mailing: Mailing) -> MailingTemplate:
    """Render the non-personal part of ``mailing`` and inline its CSS (premailer,
    once, ``allow_network=False``, ``disable_validation=True``), every built-in
    text in :func:`mailing_language`."""
    language = mailing_language(mailing)
    with translation.override(language):
        return _build_template(mailing, language)


def _build_template(mailing: Mailing, language: str) -> MailingTemplate:
    # Imported here: sending jobs (forked work horses) never need premailer/lxml.
    import premailer

    webinar = mailing.webinar.specific
    ms = mailing_settings_for(webinar)
    base = base_url()
    nonce = secrets.token_hex(6)
    ph = {key: placeholder(nonce, key) for key in ("name", "link", "unsubscribe")}
    starts_at = local_start(webinar)
    # A cancellation carries no way in: no password, and a {{ link }} written
    # into its text stays empty.
    cancelled = mailing.is_cancellation
    password = "" if cancelled else webinar.room_password or ""

    html_values = {
        "name": ph["name"],
        "link": "" if cancelled else ph["link"],
        "password": escape(password),
        "webinar": escape(webinar.title),
        "starts_at": escape(starts_at),
    }
    text_values = {**html_values, "password": password}
    text_values.update(webinar=webinar.title, starts_at=starts_at)

    def rich(value: str) -> str:
        return _absolutise(expand_db_html(value or ""), base)

    body_html = _merge(rich(mailing.body_html), html_values)
    signature = rich(signature_html(mailing, ms))
    footer = rich(ms.footer)
    subject = _NEWLINES_RE.sub(" ", _merge(mailing.subject, text_values)).strip()

    context = {
        "language_code": language,
        "subject": subject,
        "webinar_title": webinar.title,
        "webinar_url": absolute_page_url(webinar),
        "starts_at": starts_at,
        "link": ph["link"],
        "password": password,
        "unsubscribe": ph["unsubscribe"],
        "mailing": mailing,
        "cancelled": mailing.is_cancellation,
    }
    html = render_to_string(
        "wagtail_paidwebinar/mailing/email.html",
        {
            **context,
            "body": mark_safe(body_html),  # noqa: S308 - editor's rich text, expanded
            "signature": mark_safe(signature),  # noqa: S308
            "footer": mark_safe(footer),  # noqa: S308
        },
    )
    html = premailer.transform(
        html,
        allow_network=False,
        disable_validation=True,
        disable_link_rewrites=True,
        cssutils_logging_level=logging.CRITICAL,
    )
    text = render_to_string(
        "wagtail_paidwebinar/mailing/email.txt",
        {
            **context,
            "body": html_to_text(_merge(rich(mailing.body_html), text_values)),
            "signature": html_to_text(signature),
            "footer": html_to_text(footer),
        },
    )
    from_email, reply_to = sender(ms)
    host = ics.host_of(base) or "localhost"
    method = ics.CANCEL if mailing.is_cancellation else ics.PUBLISH
    unsubscribe_label = _("Unsubscribe from these e-mails")
    return MailingTemplate(
        nonce=nonce,
        subject=subject,
        # Both end with one line break, as a MIME text part does once encoded.
        html=html.rstrip("\r\n") + "\n",
        text=text.strip() + "\n",
        ics=ics.build_calendar(
            webinar,
            sequence=mailing.ics_sequence,
            host=host,
            method=method,
            organizer=_organizer(from_email),
        ),
        ics_description=_("Your personal link: %(link)s"),
        from_email=from_email,
        reply_to=reply_to,
        msgid_domain=parseaddr(from_email)[1].rpartition("@")[2] or host,
        list_unsubscribe=mailing.subscriber_list_id is not None,
        unsubscribe_html=(
            f'<br><a href="{ph["unsubscribe"]}" style="color:#52606d">'
            f"{escape(unsubscribe_label)}</a>"
        ),
        unsubscribe_text=f"\n{unsubscribe_label}: {ph['unsubscribe']}\n",
        ics_method=method,
    )


def _organizer(from_email: str) -> tuple[str, str]:
    # formataddr() wrote a non-ASCII name as an RFC 2047 encoded word; the .ics
    # wants the name itself.
    name, address = parseaddr(from_email)
    return str(make_header(decode_header(name))), address


def frozen_template(mailing: Mailing) -> MailingTemplate:
    """The template stored when sending started, else a fresh one."""
    return MailingTemplate.from_dict(mailing.frozen_render) or build_template(mailing)


def personalise(
    template: MailingTemplate,
    *,
    name: str,
    link: str,
    unsubscribe_url: str = "",
) -> RenderedEmail:
    """Substitute one recipient's values (HTML-escaped in the HTML part)."""
    ph_name = template.placeholder("name")
    ph_link = template.placeholder("link")
    ph_unsub = template.placeholder("unsubscribe")
    if unsubscribe_url:
        unsub_html = template.unsubscribe_html.replace(
            ph_unsub, escape(unsubscribe_url)
        )
        unsub_text = template.unsubscribe_text.replace(ph_unsub, unsubscribe_url)
    else:
        unsub_html = unsub_text = ""
    html = (
        template.html.replace(ph_name, escape(name))
        .replace(ph_link, escape(link))
        .replace(ph_unsub, unsub_html)
    )
    text = (
        template.text.replace(ph_name, name)
        .replace(ph_link, link)
        .replace(ph_unsub, unsub_text)
    )
    subject = template.subject.replace(ph_name, name).replace(ph_link, link)
    if template.ics_method == ics.CANCEL:
        # A cancellation admits nobody: the .ics removes the event and carries
        # no personal link (the HTML and text parts show none either).
        calendar = template.ics
    else:
        calendar = ics.personal_ics(
            template.ics,
            link=link,
            description=template.ics_description % {"link": link},
        )
    return RenderedEmail(subject=subject, html=html, text=text, ics=calendar)


def sample_link(webinar: WebinarPage, user=None) -> PersonalLink:
    """An unsaved stand-in for a personal link, for test sends and for previews shown
    to users who may not see personal URLs.

    Never a participant's real link: an editor clicking "Join" in a test e-mail would
    otherwise bind that person's link to the editor's browser (and an editor without
    ``view_personal_link_url`` would receive a working personal URL). Id 0 makes a
    well-formed token the gate always refuses.
    """
    name = ((user.get_full_name() if user is not None else "") or "").strip()
    return PersonalLink(
        pk=0, webinar=webinar, name=name or _("Test participant"), salt="sample"
    )


def render_preview(
    mailing: Mailing,
    recipient_or_link: MailingRecipient | PersonalLink | Subscriber,
    *,
    real_link: bool = True,
) -> RenderedEmail:
    """The e-mail exactly as ``recipient_or_link`` would receive it (subject, HTML with
    inlined styles, text alternative, .ics). Accepts a ledger row, a personal link
    (for a draft) or a subscriber (whose link may not exist yet).

    With ``real_link=False`` every part carries a :func:`sample_link` URL the gate
    refuses instead of the recipient's own: the personal URL is never rendered, so
    no merge field (``{{ link }}`` in the subject, a link target, the .ics) can leak
    it, which masking the output afterwards could not promise.
    """
    template = frozen_template(mailing)
    item = recipient_or_link
    unsub = ""
    link_obj: PersonalLink | None = None
    if isinstance(item, MailingRecipient):
        link_obj = item.link
        if item.subscriber is not None:
            unsub = _safe_unsubscribe_url(item.subscriber)
    elif isinstance(item, PersonalLink):
        link_obj = item
    elif isinstance(item, Subscriber):
        link_obj = (
            PersonalLink.objects.filter(
                webinar_id=mailing.webinar_id, email_normalized=item.email_normalized
            )
            .order_by("-pk")
            .first()
        )
        if mailing.subscriber_list_id is not None:
            unsub = _safe_unsubscribe_url(item)
    if not real_link:
        link = sample_link(mailing.webinar).get_url()
    elif link_obj is not None:
        link = link_obj.get_url()
    else:
        link = _("(personal link, issued on sending)")
    return personalise(template, name=item.name, link=link, unsubscribe_url=unsub)


def _safe_unsubscribe_url(subscriber: Subscriber) -> str:
    try:
        return unsubscribe_url(subscriber)
    except NoReverseMatch:
        # The unsubscribe route is not mounted: no link rather than a crash.
        logger.warning("wagtail_paidwebinar:unsubscribe is not in the URLconf")
        return ""
