from .attendance import AccessEvent, AccessEventKind
from .links import LinkDevice, LinkStatus, PersonalLink
from .mailing import (
    Mailing,
    MailingRecipient,
    MailingStatus,
    RecipientStatus,
    Signature,
    Subscriber,
    SubscriberList,
)
from .pages import WebinarIndexPage, WebinarPage
from .settings import MailingSettings

__all__ = [
    "AccessEvent",
    "AccessEventKind",
    "LinkDevice",
    "LinkStatus",
    "Mailing",
    "MailingRecipient",
    "MailingSettings",
    "MailingStatus",
    "RecipientStatus",
    "Signature",
    "Subscriber",
    "SubscriberList",
    "PersonalLink",
    "WebinarIndexPage",
    "WebinarPage",
]
