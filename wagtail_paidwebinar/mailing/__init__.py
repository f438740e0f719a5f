"""Invitations by e-mail: the Python API a view, a payment webhook or a site's own
code calls. Rendering, the ledger and the django-rq jobs live in the submodules."""

from .api import (
    cancel_mailing,
    create_mailing,
    pause_mailing,
    resume_mailing,
    retry_failed,
    send_now,
    send_test,
    start_mailing,
)
from .invitations import InvitationStatus, send_invitation
from .message import MailingError
from .render import RenderedEmail, render_preview
from .unsubscribe import (
    subscriber_for_unsubscribe_token,
    unsubscribe,
    unsubscribe_token,
    unsubscribe_url,
)

__all__ = [
    "InvitationStatus",
    "MailingError",
    "RenderedEmail",
    "cancel_mailing",
    "create_mailing",
    "pause_mailing",
    "render_preview",
    "resume_mailing",
    "retry_failed",
    "send_invitation",
    "send_now",
    "send_test",
    "start_mailing",
    "subscriber_for_unsubscribe_token",
    "unsubscribe",
    "unsubscribe_token",
    "unsubscribe_url",
]
