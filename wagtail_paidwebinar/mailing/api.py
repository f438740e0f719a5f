"""Create, start, pause, resume, cancel and retry mailings."""

from __future__ import annotations

from typing import Literal

from ..models import (
    Mailing,
    MailingRecipient,
    PersonalLink,
    Signature,
    SubscriberList,
    WebinarPage,
)

Audience = Literal["link_holders"] | SubscriberList


def create_mailing(
    webinar: WebinarPage,
    *,
    subject: str,
    body_html: str,
    audience: Audience | list[Audience] | tuple[Audience, ...] = "link_holders",
    signature: Signature | None = None,
    user=None,
) -> Mailing:
    """Create a draft mailing (nothing is sent until :func:`start_mailing`).

    ``audience`` is ``"link_holders"`` (the webinar's links with an e-mail, neither
    revoked nor expired), a :class:`SubscriberList`, or a list of both. ``signature``
    None means the site's "Webinar mailing" signature.
    """
    raise NotImplementedError


def start_mailing(mailing: Mailing) -> int:
    """Resolve the audience into ledger rows and queue sending jobs.

    Idempotent: returns the number of recipients newly queued; a second call (double
    click) returns 0 and queues nothing. Subscribers without a personal link get one.
    """
    raise NotImplementedError


def resume_mailing(mailing: Mailing) -> int:
    """Queue again the pending rows of a paused or interrupted mailing, plus rows left
    'sending' longer than STALE_SENDING_SECONDS (a killed worker). Returns the number
    of rows queued."""
    raise NotImplementedError


def pause_mailing(mailing: Mailing) -> bool:
    """Stop sending after the message in flight; :func:`resume_mailing` continues.
    Returns False when the mailing was not sending."""
    raise NotImplementedError


def cancel_mailing(mailing: Mailing) -> bool:
    """Stop for good; rows not yet sent stay pending. Returns False when the mailing
    had already finished or was cancelled."""
    raise NotImplementedError


def retry_failed(mailing: Mailing) -> int:
    """Put failed rows back to pending and queue them; returns how many."""
    raise NotImplementedError


def send_test(mailing: Mailing, to_email: str, *, user=None) -> str:
    """Send the mailing, rendered for a sample recipient (the editor), to ``to_email``
    synchronously; returns its Message-ID. Writes no ledger row."""
    raise NotImplementedError


__all__ = [
    "cancel_mailing",
    "create_mailing",
    "pause_mailing",
    "resume_mailing",
    "retry_failed",
    "send_test",
    "start_mailing",
]
_unused = (MailingRecipient, PersonalLink)
