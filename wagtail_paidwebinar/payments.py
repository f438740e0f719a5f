"""Payments → personal links: the purchase webhook's contract, Stripe, refunds.

A shop (or Stripe) tells us about a sale; the buyer gets a personal link and an
invitation without the organiser touching anything. The HTTP views
(``views/webhooks.py``) hand the raw body and the signature header to
``webhooks.py``, which verifies and parses deliveries and calls this module.

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
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy
from wagtail.log_actions import log

from . import actions, tokens
from .conf import get_setting
from .mailing.invitations import InvitationStatus, send_invitation
from .models import (
    DeliveryOutcome,
    LinkDevice,
    LinkPayment,
    PaymentRefund,
    PaymentSource,
    PersonalLink,
    WebinarPage,
)
from .parsing import normalize_email

SIGNATURE_HEADER = "Paidwebinar-Signature"
TOLERANCE_SECONDS = 300
MAX_REFERENCE_LENGTH = 255
# First key of the plugin's PostgreSQL advisory locks (the second is a hash).
ADVISORY_LOCK_CLASS = 0x5057  # "PW"
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


def _lock_payment_intent(payment_intent: str) -> None:
    # A Stripe refund names no webinar, only the payment intent, so the intent is
    # the key a refund and its Checkout event take turns on: a transaction-scoped
    # advisory lock on PostgreSQL. Other databases serialise writers anyway.
    if payment_intent and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                [ADVISORY_LOCK_CLASS, payment_intent],
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
    _lock_payment_intent(payment_intent)
    payment = (
        LinkPayment.objects.select_related("link", "link__webinar")
        .filter(webinar=webinar, reference=reference)
        .first()
    )
    if payment is not None:
        return PurchaseResult(
            payment.link,
            False,
            _invite(payment.link, invite),
            DeliveryOutcome.EXISTING,
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
    remembered, and the purchase arriving later issues nothing. A Stripe refund
    names no webinar: it takes turns with its Checkout event on the payment
    intent instead."""
    with transaction.atomic():
        if webinar is not None:
            _lock_webinar(webinar)
        _lock_payment_intent(payment_intent)  # after the webinar's, as purchases do
        if webinar is not None:
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


def register_log_actions(log_actions) -> None:
    """Label of the purchase audit log action (``register_log_actions`` hook)."""
    log_actions.register_action(
        ACTION_PURCHASE,
        gettext_lazy("Issue personal link for a payment"),
        gettext_lazy("Personal link issued for a payment"),
    )
