from .attendance import AccessEvent, AccessEventKind
from .batches import LinkBatch, LinkBatchStatus
from .links import DeviceMove, LinkDevice, LinkStatus, PersonalLink
from .mailing import (
    Mailing,
    MailingKind,
    MailingRecipient,
    MailingStatus,
    RecipientStatus,
    Signature,
    Subscriber,
    SubscriberList,
)
from .pages import WebinarIndexPage, WebinarPage
from .payments import (
    DeliveryOutcome,
    LinkPayment,
    PaymentRefund,
    PaymentSource,
    WebhookDelivery,
)
from .reminders import Reminder, ReminderStatus
from .settings import MailingSettings

__all__ = [
    "AccessEvent",
    "AccessEventKind",
    "DeliveryOutcome",
    "DeviceMove",
    "LinkBatch",
    "LinkBatchStatus",
    "LinkDevice",
    "LinkPayment",
    "LinkStatus",
    "Mailing",
    "MailingKind",
    "MailingRecipient",
    "MailingSettings",
    "MailingStatus",
    "PaymentRefund",
    "PaymentSource",
    "RecipientStatus",
    "Reminder",
    "ReminderStatus",
    "Signature",
    "Subscriber",
    "SubscriberList",
    "PersonalLink",
    "WebinarIndexPage",
    "WebhookDelivery",
    "WebinarPage",
]
