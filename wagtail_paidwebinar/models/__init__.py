from .attendance import AccessEvent, AccessEventKind
from .batches import LinkBatch, LinkBatchStatus
from .links import DeviceMove, LinkDevice, LinkStatus, PersonalLink
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
from .payments import (
    DeliveryOutcome,
    LinkPayment,
    PaymentRefund,
    PaymentSource,
    WebhookDelivery,
)
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
    "MailingRecipient",
    "MailingSettings",
    "MailingStatus",
    "PaymentRefund",
    "PaymentSource",
    "RecipientStatus",
    "Signature",
    "Subscriber",
    "SubscriberList",
    "PersonalLink",
    "WebinarIndexPage",
    "WebhookDelivery",
    "WebinarPage",
]
