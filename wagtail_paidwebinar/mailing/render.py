"""Rendering: the non-personal part once per mailing, personal values substituted."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Mailing, MailingRecipient, PersonalLink


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


def render_preview(
    mailing: Mailing, recipient_or_link: MailingRecipient | PersonalLink
) -> RenderedEmail:
    """The e-mail exactly as ``recipient_or_link`` would receive it (subject, HTML with
    inlined styles, text alternative)."""
    raise NotImplementedError
