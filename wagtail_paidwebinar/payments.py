"""Payments → personal links: the purchase webhook's contract, Stripe, refunds.

A shop (or Stripe) tells us about a sale; the buyer gets a personal link and an
invitation without the organiser touching anything. The HTTP views
(``views/webhooks.py``) only hand the raw body and the signature header to
:func:`handle_purchase_webhook` / :func:`handle_stripe_webhook`.

- **Signature** (:func:`sign`, :func:`verify_signature`):
  ``Paidwebinar-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." +
  raw body)>``, Stripe's scheme, so a shop that already verifies Stripe's webhooks
  signs ours with the same code. Several secrets are accepted while rotating; a
  timestamp more than :data:`TOLERANCE_SECONDS` away refuses a replay captured
  earlier. Within the tolerance a replay is harmless: every event is idempotent.
- **Purchase** (:func:`record_purchase`) is idempotent by the shop's reference,
  unique per webinar (:class:`~.models.LinkPayment`). Purchases and refunds
  of one webinar are serialised by a row lock on the webinar, so a refund racing
  its purchase cannot slip between the purchase's "refunded already?" check and
  its insert.
- **Refund** (:func:`record_refund`) revokes the link; one whose purchase has not
  arrived yet is remembered (:class:`~.models.PaymentRefund`) and the purchase
  then issues nothing.
- Every delivery is recorded (:class:`~.models.WebhookDelivery`): never the body,
  the signature, a secret or a token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from wagtail.log_actions import log

from . import actions, tokens
from .conf import PREFIX, get_setting
from .mailing.invitations import InvitationStatus, send_invitation
from .models import (
    DeliveryOutcome,
    LinkDevice,
    LinkPayment,
    PaymentRefund,
    PaymentSource,
    PersonalLink,
    WebhookDelivery,
    WebinarPage,
)
from .parsing import LineIssue, normalize_email, validate_entry

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Paidwebinar-Signature"
TOLERANCE_SECONDS = 300
MAX_REFERENCE_LENGTH = 255
# Stored in every audit log entry: never renamed after a release.
ACTION_PURCHASE = "wagtail_paidwebinar.link.purchase"


# --- signatures ------------------------------------------------------------------


def configured_secrets(name: str) -> list[str]:
    """``WAGTAIL_PAIDWEBINAR_<name>`` as a list of non-empty secrets (a string or a
    list of strings while rotating); empty when the webhook is switched off."""
    value = get_setting(name)
    values = [value] if isinstance(value, str) else list(value or [])
    return [v for v in values if isinstance(v, str) and v.strip()]


def purchase_secrets() -> list[str]:
    return configured_secrets("PURCHASE_WEBHOOK_SECRET")


def stripe_secrets() -> list[str]:
    return configured_secrets("STRIPE_WEBHOOK_SECRET")


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Paidwebinar-Signature`` header value for ``body`` (what a shop sends)."""
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify_signature(
    body: bytes,
    header: str | None,
    secrets: list[str],
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """True when ``header`` signs ``body`` with one of ``secrets`` and its timestamp
    is within ``tolerance`` seconds of ``now`` (either side). Constant-time
    comparisons; a malformed header is simply False."""
    if not header or not secrets:
        return False
    timestamp = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _sep, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit() and len(value) < 12:
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    expected = [_mac(secret, timestamp, body) for secret in secrets]
    return any(
        hmac.compare_digest(mac.encode(), sig.encode("utf-8", "replace"))
        for mac in expected
        for sig in signatures
    )


# --- the domain: purchase and refund ---------------------------------------------


@dataclass(frozen=True)
class PurchaseResult:
    """What a purchase did: the buyer's link (None when an earlier refund refused
    it), whether this call created it, and the invitation's fate."""

    link: PersonalLink | None
    created: bool
    invitation: str
    outcome: str


@dataclass(frozen=True)
class RefundResult:
    """What a refund did: the links it revoked (empty when none was live), and
    whether it was remembered for a purchase still to come."""

    revoked: list[PersonalLink] = field(default_factory=list)
    found: list[PersonalLink] = field(default_factory=list)
    remembered: bool = False

    @property
    def outcome(self) -> str:
        if self.remembered:
            return DeliveryOutcome.REFUND_REMEMBERED
        return DeliveryOutcome.REVOKED if self.revoked else DeliveryOutcome.EXISTING


def find_webinar(value: Any) -> WebinarPage | None:
    """The webinar a payload names: a page id (number or digits) or a unique slug."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (
        isinstance(value, str) and value.isascii() and value.isdigit()
    ):
        if len(str(value)) > 18:
            return None
        return WebinarPage.objects.filter(pk=int(value)).first()
    if isinstance(value, str) and value.strip() and len(value) <= 255:
        matches = list(WebinarPage.objects.filter(slug=value.strip())[:2])
        return matches[0] if len(matches) == 1 else None
    return None


def _lock_webinar(webinar: WebinarPage) -> None:
    # Only the plugin's own table row ("self"), not Wagtail's page row: editors
    # keep working, and purchases and refunds of one webinar take turns.
    list(
        WebinarPage.objects.select_for_update(of=("self",))
        .filter(pk=webinar.pk)
        .values_list("pk", flat=True)
    )


def _refunded_before(webinar: WebinarPage, reference: str, payment_intent: str) -> bool:
    refunds = PaymentRefund.objects.filter(webinar=webinar, reference=reference)
    if payment_intent:
        refunds = refunds | PaymentRefund.objects.filter(payment_intent=payment_intent)
    return refunds.exists()


def record_purchase(
    webinar: WebinarPage,
    *,
    name: str,
    email: str,
    reference: str,
    payment_intent: str = "",
    invite: bool = True,
    source: str = PaymentSource.PURCHASE,
) -> PurchaseResult:
    """Issue the buyer's link for order ``reference`` and queue their invitation.

    Idempotent by ``reference`` (per webinar): a repeat returns the same link,
    ``created`` False, and sends nothing. A buyer whose e-mail already has a link
    on this webinar gets that link (the new reference stored on it; a revoked one
    comes back with a new URL). An order refunded before it arrived issues
    nothing. ``name`` and ``email`` must be valid (:func:`validate_buyer`).
    """
    for attempt in range(2):
        try:
            with transaction.atomic():
                return _purchase(
                    webinar, name, email, reference, payment_intent, invite, source
                )
        except IntegrityError:
            # A link with this reference or e-mail was inserted meanwhile (by a
            # "Generate links" batch, or a database without row locks): the
            # second try finds it.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _purchase(webinar, name, email, reference, payment_intent, invite, source):
    _lock_webinar(webinar)
    payment = (
        LinkPayment.objects.select_related("link", "link__webinar")
        .filter(webinar=webinar, reference=reference)
        .first()
    )
    if payment is not None:
        link = payment.link
        return PurchaseResult(
            link, False, _invite(link, invite), DeliveryOutcome.EXISTING
        )
    if _refunded_before(webinar, reference, payment_intent):
        return PurchaseResult(
            None, False, InvitationStatus.SKIPPED, DeliveryOutcome.REFUSED
        )
    email_normalized = normalize_email(email)
    link = (
        PersonalLink.objects.select_for_update()
        .filter(webinar=webinar, email_normalized=email_normalized)
        .first()
    )
    data = {"webinar_id": webinar.pk, "source": str(source)}
    if link is not None:
        # The same buyer bought again (or was on a pasted list): their link now
        # belongs to this order, so a refund of an older one no longer revokes it.
        restored = link.revoked_at is not None
        if restored:
            LinkDevice.objects.filter(link=link).delete()
            link.revoked_at = None
            link.claimed_at = None
            link.salt = tokens.new_salt()
            link.save(update_fields=["revoked_at", "claimed_at", "salt"])
        LinkPayment.objects.update_or_create(
            link=link,
            defaults={
                "webinar": webinar,
                "reference": reference,
                "payment_intent": payment_intent,
                "source": source,
                "created_at": timezone.now(),
            },
        )
        log(
            link,
            ACTION_PURCHASE,
            data={**data, "name": link.name, "restored": restored},
        )
        invitation = _invite(link, invite, resend=restored)
        return PurchaseResult(link, False, invitation, DeliveryOutcome.EXISTING)
    with transaction.atomic():
        link = PersonalLink.objects.create(
            webinar=webinar,
            name=name,
            email=email,
            email_normalized=email_normalized,
        )
        LinkPayment.objects.create(
            link=link,
            webinar=webinar,
            reference=reference,
            payment_intent=payment_intent,
            source=source,
        )
    log(link, ACTION_PURCHASE, data={**data, "name": link.name, "restored": False})
    return PurchaseResult(link, True, _invite(link, invite), DeliveryOutcome.CREATED)


def _invite(link: PersonalLink, invite: bool, *, resend: bool = False) -> str:
    if not invite:
        return InvitationStatus.SKIPPED
    return send_invitation(link, resend=resend)


def record_refund(
    *,
    webinar: WebinarPage | None = None,
    reference: str = "",
    payment_intent: str = "",
    source: str = PaymentSource.PURCHASE,
) -> RefundResult:
    """Revoke the links of order ``reference`` on ``webinar`` (or of Stripe's
    ``payment_intent`` on any webinar). When there is none yet the refund is
    remembered, and the purchase arriving later issues nothing."""
    with transaction.atomic():
        if webinar is not None:
            _lock_webinar(webinar)
            links = PersonalLink.objects.filter(
                payment__webinar=webinar, payment__reference=reference
            )
        else:
            links = PersonalLink.objects.filter(payment__payment_intent=payment_intent)
        found = list(links.select_related("webinar").order_by("pk"))
        if not found:
            PaymentRefund.objects.bulk_create(
                [
                    PaymentRefund(
                        webinar=webinar,
                        reference=reference,
                        payment_intent=payment_intent,
                        source=source,
                    )
                ],
                ignore_conflicts=True,
            )
            return RefundResult(remembered=True)
        revoked = [link for link in found if actions.revoke_link(link)]
    return RefundResult(revoked=revoked, found=found)


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
        try:
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


def register_log_actions(log_actions) -> None:
    """Label of the purchase audit log action (``register_log_actions`` hook)."""
    log_actions.register_action(
        ACTION_PURCHASE,
        gettext_lazy("Issue personal link for a payment"),
        gettext_lazy("Personal link issued for a payment"),
    )
