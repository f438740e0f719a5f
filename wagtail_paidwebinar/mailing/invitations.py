"""One-recipient invitations: one link holder gets their personal link by e-mail.

Used by the purchase webhooks, "re-issue" and "e-mail the new link". Each
invitation is a :class:`~..models.Mailing` of its own whose audience is the one link
(``Mailing.invitation_link``), created with :func:`.api.create_mailing` and started
with :func:`.api.start_mailing`: the same engine, ledger row, jobs, retries,
resume and progress page as any mailing, and nothing new to get wrong. Why one
mailing per invitation rather than one long-lived mailing per webinar that rows
are added to: the ledger's unit of state is the mailing (its status, its frozen
render, one row per address), so a long-lived one would have to be re-opened
while a worker may be closing it, could not hold a second row for the same
address (a re-send), and would keep sending the text and start time frozen when
it first started.

"Never twice for the same link" is a unique constraint on the invitation
mailings of a link that are not re-sends: of two simultaneous calls exactly one
creates its mailing, and a crash before the commit leaves nothing. After the
commit the ledger row is sent at least once by the worker, like every
mailing's.
"""

from __future__ import annotations

import enum
import logging

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from wagtail.log_actions import log

from ..models import (
    Mailing,
    MailingRecipient,
    PersonalLink,
    RecipientStatus,
    WebinarPage,
)
from .api import create_mailing, start_mailing
from .render import mailing_settings_for, webinar_language

logger = logging.getLogger(__name__)

# Stored in every audit log entry: never renamed after a release.
ACTION_INVITE = "wagtail_paidwebinar.link.invite"


class InvitationStatus(enum.StrEnum):
    """What :func:`send_invitation` did (a string: it goes into JSON as is)."""

    QUEUED = "queued"
    ALREADY_SENT = "already_sent"
    SKIPPED = "skipped"
    # The webinar is cancelled: the link stands, but no invitation to a room
    # that will not open (the cancellation e-mail said so).
    CANCELLED = "cancelled"


def _real_user(user):
    return user if user is not None and getattr(user, "pk", None) else None


def invitation_text(webinar: WebinarPage, language: str) -> tuple[str, str]:
    """The invitation's subject and body (rich text with merge fields): the
    webinar's own, else the "Webinar mailing" setting's, else built-in texts in
    ``language``."""
    ms = mailing_settings_for(webinar)
    subject = webinar.invitation_subject or ms.invitation_subject
    body = webinar.invitation_body or ms.invitation_body
    with translation.override(language):
        if not subject:
            subject = gettext("Your personal link to {{ webinar }}")
        if not body:
            greeting = gettext("Hello {{ name }},")
            text = gettext(
                "thank you for registering for {{ webinar }} ({{ starts_at }}). "
                "Your personal link and how to join are below. The link admits "
                "one person: please do not share it."
            )
            body = f"<p>{greeting}</p><p>{text}</p>"
    return subject, body


def send_invitation(
    link: PersonalLink, *, user=None, resend: bool = False
) -> InvitationStatus:
    """E-mail ``link``'s holder their invitation (personal link, room password,
    .ics) in the webinar's language, through the mailing engine and its ledger.

    Never twice for the same link unless ``resend``: returns ``ALREADY_SENT`` when
    an earlier call queued it, ``SKIPPED`` (nothing sent) when the link has no
    e-mail or is revoked or expired, ``CANCELLED`` (nothing sent) when the
    webinar is cancelled, else ``QUEUED`` (a worker sends it once the caller's
    transaction commits). Records an audit log entry on the link.
    """
    with transaction.atomic():
        fresh = (
            PersonalLink.objects.select_related("webinar").filter(pk=link.pk).first()
        )
        if fresh is None or not fresh.email_normalized or not fresh.is_live():
            return InvitationStatus.SKIPPED
        if not resend and Mailing.objects.filter(invitation_link=fresh).exists():
            return InvitationStatus.ALREADY_SENT
        webinar = fresh.webinar.specific
        if webinar.is_cancelled:
            return InvitationStatus.CANCELLED
        language = webinar_language(webinar)
        subject, body = invitation_text(webinar, language)
        try:
            with transaction.atomic():
                mailing = create_mailing(
                    webinar,
                    subject=subject,
                    body_html=body,
                    audience=fresh,
                    user=user,
                    language=language,
                    resend=resend,
                )
        except IntegrityError:
            # A simultaneous call created the link's first invitation.
            return InvitationStatus.ALREADY_SENT
        start_mailing(mailing, user=user)
        log(
            fresh,
            ACTION_INVITE,
            user=_real_user(user),
            data={
                "webinar_id": webinar.pk,
                "name": fresh.name,
                "mailing_id": mailing.pk,
                "resend": resend,
            },
        )
    # Ids only: the address and the link stay out of the log.
    logger.info("Invitation for link %s queued (mailing %s)", fresh.pk, mailing.pk)
    return InvitationStatus.QUEUED


def with_invitation_sent_at(queryset: QuerySet[PersonalLink]) -> QuerySet:
    """``queryset`` annotated with ``invitation_sent_at``: when the ledger last
    recorded an e-mail to the link as sent (any mailing), None when never."""
    sent = (
        MailingRecipient.objects.filter(
            link=OuterRef("pk"), status=RecipientStatus.SENT
        )
        .order_by("-sent_at")
        .values("sent_at")[:1]
    )
    return queryset.annotate(invitation_sent_at=Subquery(sent))


def register_log_actions(actions) -> None:
    """Label of the invitation audit log action (``register_log_actions`` hook)."""
    actions.register_action(
        ACTION_INVITE, _("E-mail personal link"), _("Invitation e-mail queued")
    )


__all__ = [
    "ACTION_INVITE",
    "InvitationStatus",
    "invitation_text",
    "register_log_actions",
    "send_invitation",
    "with_invitation_sent_at",
]
