"""What the payment webhooks remember: every delivery (for editors) and refunds
that arrived before their purchase. The logic lives in ``payments.py``."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class PaymentSource(models.TextChoices):
    PURCHASE = "purchase", _("Shop (signed webhook)")
    STRIPE = "stripe", _("Stripe")


class DeliveryOutcome(models.TextChoices):
    CREATED = "created", _("Link created")
    EXISTING = "existing", _("Repeat: same link")
    REFUSED = "refused", _("Refunded earlier: no link")
    REVOKED = "revoked", _("Link revoked")
    REFUND_REMEMBERED = "refund_remembered", _("Refund remembered (no link yet)")
    IGNORED = "ignored", _("Ignored")
    BAD_SIGNATURE = "bad_signature", _("Bad signature")
    BAD_REQUEST = "bad_request", _("Bad request")


class LinkPayment(models.Model):
    """The sale a personal link was issued for: the shop's order id (or Stripe
    Checkout Session id), unique per webinar, which makes purchases idempotent, and
    the Stripe payment intent a refund names. Kept beside the link rather than on
    it so the gate's and bulk generation's table stays as narrow as it was."""

    link = models.OneToOneField(
        "wagtail_paidwebinar.PersonalLink",
        verbose_name=_("personal link"),
        on_delete=models.CASCADE,
        related_name="payment",
    )
    # The link's webinar, repeated here for the per-webinar unique reference.
    webinar = models.ForeignKey(
        "wagtail_paidwebinar.WebinarPage",
        verbose_name=_("webinar"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    source = models.CharField(_("source"), max_length=16, choices=PaymentSource)
    reference = models.CharField(_("payment reference"), max_length=255)
    payment_intent = models.CharField(
        _("payment intent"), max_length=255, blank=True, db_index=True
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("link payment")
        verbose_name_plural = _("link payments")
        constraints = [
            models.UniqueConstraint(
                fields=["webinar", "reference"],
                name="paidwebinar_payment_unique_reference",
            )
        ]

    def __str__(self) -> str:
        return self.reference


class WebhookDelivery(models.Model):
    """One delivery to a payment webhook: when, from where, what it said and what
    came of it. Never the body, the signature or a token."""

    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    source = models.CharField(_("source"), max_length=16, choices=PaymentSource)
    event = models.CharField(_("event"), max_length=64, blank=True)
    reference = models.CharField(_("reference"), max_length=255, blank=True)
    webinar = models.ForeignKey(
        "wagtail_paidwebinar.WebinarPage",
        verbose_name=_("webinar"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    link = models.ForeignKey(
        "wagtail_paidwebinar.PersonalLink",
        verbose_name=_("personal link"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    status_code = models.PositiveSmallIntegerField(_("HTTP status"))
    outcome = models.CharField(_("outcome"), max_length=32, choices=DeliveryOutcome)
    invitation = models.CharField(_("invitation"), max_length=16, blank=True)
    detail = models.CharField(_("detail"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-received_at", "-pk"]
        indexes = [
            models.Index(fields=["-received_at"], name="paidwebinar_delivery_at")
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.event} {self.reference}".strip()


class PaymentRefund(models.Model):
    """A refund whose purchase has not arrived (webhooks may come out of order):
    the later purchase then issues nothing."""

    webinar = models.ForeignKey(
        "wagtail_paidwebinar.WebinarPage",
        verbose_name=_("webinar"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    source = models.CharField(_("source"), max_length=16, choices=PaymentSource)
    reference = models.CharField(_("reference"), max_length=255, blank=True)
    payment_intent = models.CharField(_("payment intent"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("early refund")
        verbose_name_plural = _("early refunds")
        constraints = [
            models.UniqueConstraint(
                fields=["webinar", "reference"],
                condition=~Q(reference=""),
                name="paidwebinar_refund_unique_reference",
            ),
            models.UniqueConstraint(
                fields=["payment_intent"],
                condition=~Q(payment_intent=""),
                name="paidwebinar_refund_unique_intent",
            ),
        ]

    def __str__(self) -> str:
        return self.reference or self.payment_intent
