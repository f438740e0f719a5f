"""The payment webhooks' deliveries: verify, parse, apply, answer, record.

:func:`handle_purchase_webhook` (the shop's signed JSON) and
:func:`handle_stripe_webhook` (Stripe events, verified offline with the ``stripe``
package) turn one delivery into a :class:`WebhookResponse` and never raise for bad
input: a bad signature is 401 and changes nothing, a bad payload is 400 naming the
field, written in nothing. The domain rules (idempotency, refunds) are in
:mod:`.payments`. Every delivery is recorded (:class:`~.models.WebhookDelivery`):
never the body, the signature, a secret or a token. Anyone can post a bad
signature, so those are recorded only up to an hourly ceiling, and the log keeps
``WEBHOOK_LOG_DAYS`` days.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from . import conf
from .conf import PREFIX
from .models import (
    DeliveryOutcome,
    PaymentSource,
    PersonalLink,
    WebhookDelivery,
    WebinarPage,
)
from .parsing import LineIssue, validate_entry
from .payments import (
    MAX_REFERENCE_LENGTH,
    PurchaseResult,
    find_webinar,
    purchase_secrets,
    record_purchase,
    record_refund,
    stripe_secrets,
    verify_signature,
)
from .throttle import throttle_cache

logger = logging.getLogger(__name__)


# --- the purchase webhook ------------------------------------------------------------


@dataclass(frozen=True)
class WebhookResponse:
    """What the view answers: an HTTP status and a JSON object."""

    status: int
    data: dict


@dataclass
class _Delivery:
    source: str
    event: str = ""
    reference: str = ""
    webinar: WebinarPage | None = None
    link: PersonalLink | None = None
    invitation: str = ""

    def answer(self, status: int, outcome: str, data: dict, detail: str = ""):
        if outcome == DeliveryOutcome.BAD_SIGNATURE and not _may_record_unverified():
            return WebhookResponse(status, data)
        try:
            _prune_log()
            WebhookDelivery.objects.create(
                source=self.source,
                event=self.event[:64],
                reference=self.reference[:MAX_REFERENCE_LENGTH],
                webinar=self.webinar,
                link=self.link,
                status_code=status,
                outcome=outcome,
                invitation=str(self.invitation or ""),
                detail=detail[:255],
            )
        except Exception:  # the answer matters more than its log row
            logger.exception("Could not record a webhook delivery")
        return WebhookResponse(status, data)

    def bad_request(self, field_name: str, message: str) -> WebhookResponse:
        return self.answer(
            400,
            DeliveryOutcome.BAD_REQUEST,
            {"error": message, "field": field_name},
            detail=f"{field_name}: {message}",
        )


def _may_record_unverified() -> bool:
    """Whether one more bad-signature delivery may be written this hour. The count
    is kept in the shared throttle cache; past the ceiling a warning is logged once
    and the rest of the hour's bad signatures are answered without a row."""
    ceiling = conf.get_setting("WEBHOOK_LOG_UNVERIFIED_PER_HOUR")
    key = f"paidwebinar:webhook-unverified:{int(time.time()) // 3600}"
    cache = throttle_cache()
    try:
        cache.add(key, 0, 3600)
        count = cache.incr(key)
    except Exception:  # a cache outage must not refuse the answer
        logger.exception("Could not count unverified webhook deliveries")
        return False
    if count == ceiling + 1:
        logger.warning(
            "%d webhook deliveries with a bad signature this hour; the rest of the "
            "hour's are not recorded",
            ceiling,
        )
    return count <= ceiling


def _prune_log() -> None:
    days = conf.get_setting("WEBHOOK_LOG_DAYS")
    if days:
        cutoff = timezone.now() - dt.timedelta(days=days)
        WebhookDelivery.objects.filter(received_at__lt=cutoff).delete()


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) else None


def _bad_reference(reference: str | None) -> str | None:
    if not reference:
        return _("The order reference is missing.")
    if len(reference) > MAX_REFERENCE_LENGTH:
        return _("The order reference is longer than %(limit)s characters.") % {
            "limit": MAX_REFERENCE_LENGTH
        }
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in reference):
        return _("The order reference contains a control character.")
    return None


@dataclass(frozen=True)
class Buyer:
    name: str
    email: str


@dataclass(frozen=True)
class PayloadError:
    """A bad field of a payload: its name and what is wrong (the 400 answer)."""

    field: str
    message: str


def validate_buyer(name: Any, email: Any) -> Buyer | PayloadError:
    """The buyer's name and e-mail normalised by the rules of a pasted participant
    line, the e-mail required (an empty name becomes the address)."""
    if name is not None and not isinstance(name, str):
        return PayloadError("name", _("The name must be a string."))
    if not isinstance(email, str) or not email.strip():
        return PayloadError("email", _("The e-mail address is missing."))
    entry = validate_entry(0, "", name or "", email)
    if isinstance(entry, LineIssue):
        email_alone = validate_entry(0, "", "x", email)
        return PayloadError(
            "email" if isinstance(email_alone, LineIssue) else "name", entry.message
        )
    return Buyer(entry.name, entry.email)


def _purchase_answer(delivery: _Delivery, result: PurchaseResult) -> WebhookResponse:
    delivery.link = result.link
    delivery.invitation = result.invitation
    return delivery.answer(
        200,
        result.outcome,
        {
            # The link's id, never its token or URL.
            "link": str(result.link.pk) if result.link else None,
            "created": result.created,
            "invitation": str(result.invitation),
            # Paid for a cancelled webinar: the link and the payment are recorded
            # (a reopened webinar admits the buyer) but no invitation is sent
            # ("invitation": "cancelled"); the shop may refund or tell the buyer.
            "webinar_cancelled": bool(
                delivery.webinar and delivery.webinar.is_cancelled
            ),
        },
    )


def handle_purchase_webhook(body: bytes, signature: str | None) -> WebhookResponse:
    """Verify, parse and apply one delivery to the purchase webhook (the caller
    has checked that a secret is configured). Never raises for bad input."""
    delivery = _Delivery(source=PaymentSource.PURCHASE)
    if not verify_signature(body, signature, purchase_secrets()):
        return delivery.answer(
            401,
            DeliveryOutcome.BAD_SIGNATURE,
            {"error": _("Missing, invalid or expired signature.")},
        )
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return delivery.bad_request("body", _("The body is not valid JSON."))
    if not isinstance(payload, dict):
        return delivery.bad_request("body", _("The body must be a JSON object."))
    event = payload.get("event")
    delivery.event = event if isinstance(event, str) else ""
    reference = _text(payload.get("reference"))
    delivery.reference = (reference or "")[:MAX_REFERENCE_LENGTH]
    if event not in ("purchase", "refund"):
        return delivery.bad_request(
            "event", _('The event must be "purchase" or "refund".')
        )
    webinar = find_webinar(payload.get("webinar"))
    if webinar is None:
        return delivery.bad_request(
            "webinar", _("No webinar has this id or slug (or the slug is not unique).")
        )
    delivery.webinar = webinar
    problem = _bad_reference(reference)
    if problem:
        return delivery.bad_request("reference", problem)
    if event == "refund":
        result = record_refund(webinar=webinar, reference=reference)
        delivery.link = (result.revoked or result.found or [None])[0]
        return delivery.answer(
            200,
            result.outcome,
            {"revoked": bool(result.revoked), "remembered": result.remembered},
        )
    buyer = validate_buyer(payload.get("name"), payload.get("email"))
    if isinstance(buyer, PayloadError):
        return delivery.bad_request(buyer.field, buyer.message)
    invite = payload.get("send_invitation", True)
    if not isinstance(invite, bool):
        return delivery.bad_request(
            "send_invitation", _("send_invitation must be true or false.")
        )
    result = record_purchase(
        webinar,
        name=buyer.name,
        email=buyer.email,
        reference=reference,
        invite=invite,
    )
    return _purchase_answer(delivery, result)


# --- Stripe ------------------------------------------------------------------------

STRIPE_PAID = ("paid", "no_payment_required")
STRIPE_PURCHASE_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
)


def _stripe_verified(body: bytes, signature: str | None) -> bool | None:
    """True/False: verified with ``stripe.Webhook.construct_event`` against one of
    the secrets; None when the ``stripe`` package is missing."""
    try:
        import stripe
    except ImportError:
        return None
    for secret in stripe_secrets():
        try:
            stripe.Webhook.construct_event(body, signature, secret)
        except stripe.SignatureVerificationError:
            continue
        except ValueError:
            # The signature matched but the body is not JSON: verified; the
            # parser below answers 400.
            return True
        return True
    return False


def handle_stripe_webhook(body: bytes, signature: str | None) -> WebhookResponse:
    """Verify and apply one Stripe event: a completed and paid Checkout Session
    whose metadata ``webinar`` names a webinar issues the link; ``charge.refunded``
    (fully refunded) revokes it. Other events are acknowledged and ignored."""
    delivery = _Delivery(source=PaymentSource.STRIPE)
    verified = _stripe_verified(body, signature)
    if verified is None:
        logger.error("%sSTRIPE_WEBHOOK_SECRET is set but stripe is missing", PREFIX)
        return delivery.answer(
            503,
            DeliveryOutcome.BAD_REQUEST,
            {"error": _("The stripe package is not installed on the server.")},
        )
    if not verified:
        return delivery.answer(
            401,
            DeliveryOutcome.BAD_SIGNATURE,
            {"error": _("Missing, invalid or expired signature.")},
        )
    try:
        event = json.loads(body)
        obj = event["data"]["object"]
        event_type = str(event.get("type", ""))
        if not isinstance(obj, dict):
            raise TypeError
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        return delivery.bad_request("body", _("Not a Stripe event."))
    delivery.event = event_type
    if event_type in STRIPE_PURCHASE_EVENTS:
        return _stripe_purchase(delivery, obj)
    if event_type == "charge.refunded":
        return _stripe_refund(delivery, obj)
    return delivery.answer(200, DeliveryOutcome.IGNORED, {"ignored": True})


def _stripe_purchase(delivery: _Delivery, session: dict) -> WebhookResponse:
    delivery.reference = str(session.get("id") or "")[:MAX_REFERENCE_LENGTH]
    metadata = session.get("metadata") or {}
    named = metadata.get("webinar") if isinstance(metadata, dict) else None
    if not named:
        # Another product sold through the same Stripe account.
        return delivery.answer(
            200, DeliveryOutcome.IGNORED, {"ignored": True}, "no metadata webinar"
        )
    if session.get("payment_status") not in STRIPE_PAID:
        # Delayed payment methods: checkout.session.async_payment_succeeded follows.
        return delivery.answer(
            200, DeliveryOutcome.IGNORED, {"ignored": True}, "not paid yet"
        )
    webinar = find_webinar(named)
    if webinar is None:
        # 400 so Stripe shows the failure and retries once the slug is fixed.
        return delivery.bad_request(
            "metadata.webinar",
            _("No webinar has this id or slug (or the slug is not unique)."),
        )
    delivery.webinar = webinar
    problem = _bad_reference(_text(session.get("id")))
    if problem:
        return delivery.bad_request("id", problem)
    details = session.get("customer_details") or {}
    if not isinstance(details, dict):
        details = {}
    buyer = validate_buyer(details.get("name"), details.get("email"))
    if isinstance(buyer, PayloadError):
        return delivery.bad_request(f"customer_details.{buyer.field}", buyer.message)
    intent = session.get("payment_intent")
    result = record_purchase(
        webinar,
        name=buyer.name,
        email=buyer.email,
        reference=session["id"].strip(),
        payment_intent=intent if isinstance(intent, str) else "",
        source=PaymentSource.STRIPE,
    )
    return _purchase_answer(delivery, result)


def _stripe_refund(delivery: _Delivery, charge: dict) -> WebhookResponse:
    intent = charge.get("payment_intent")
    delivery.reference = intent if isinstance(intent, str) else ""
    if not delivery.reference or len(delivery.reference) > MAX_REFERENCE_LENGTH:
        return delivery.answer(
            200, DeliveryOutcome.IGNORED, {"ignored": True}, "no payment intent"
        )
    if charge.get("refunded") is False:
        # A partial refund keeps access; the full refund that may follow revokes.
        return delivery.answer(
            200, DeliveryOutcome.IGNORED, {"ignored": True}, "partial refund"
        )
    result = record_refund(
        payment_intent=delivery.reference, source=PaymentSource.STRIPE
    )
    delivery.link = (result.revoked or result.found or [None])[0]
    delivery.webinar = delivery.link.webinar if delivery.link else None
    return delivery.answer(
        200,
        result.outcome,
        {"revoked": bool(result.revoked), "remembered": result.remembered},
    )
