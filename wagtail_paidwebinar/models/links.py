"""Personal links and the device slots a claim fills."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import tokens


class LinkStatus(models.TextChoices):
    UNUSED = "unused", _("Unused")
    IN_USE = "in_use", _("In use")
    EXPIRED = "expired", _("Expired")
    REVOKED = "revoked", _("Revoked")


class PersonalLink(models.Model):
    """A link that admits one person (``webinar.max_devices_per_link`` browsers).

    The token is derived from ``salt`` (see tokens.py) and never stored.
    """

    webinar = models.ForeignKey(
        "wagtail_paidwebinar.WebinarPage",
        verbose_name=_("webinar"),
        on_delete=models.CASCADE,
        related_name="personal_links",
    )
    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("e-mail"), max_length=254, blank=True)
    # Lower-cased, NFC-normalised e-mail used for uniqueness ("" when none).
    email_normalized = models.CharField(max_length=254, blank=True, editable=False)
    salt = models.CharField(max_length=64, default=tokens.new_salt, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("first claimed at"), null=True, blank=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)

    class Meta:
        verbose_name = _("personal link")
        verbose_name_plural = _("personal links")
        ordering = ["webinar", "name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["webinar", "email_normalized"],
                condition=~Q(email_normalized=""),
                name="paidwebinar_link_unique_email",
            )
        ]
        indexes = [models.Index(fields=["webinar", "created_at"])]
        permissions = [
            ("view_personal_link_url", _("Can see personal link URLs")),
        ]

    def __str__(self) -> str:
        return self.name

    # --- tokens -------------------------------------------------------------------
    @property
    def token(self) -> str:
        return tokens.make_token(self.pk, self.webinar_id, self.salt)

    def get_url(self) -> str:
        """The absolute personal URL: the webinar page URL plus ``?access=<token>``."""
        from ..conf import get_setting
        from ..utils import absolute_page_url

        param = get_setting("TOKEN_PARAM")
        return f"{absolute_page_url(self.webinar)}?{param}={self.token}"

    # --- state --------------------------------------------------------------------
    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (
            now or timezone.now()
        )

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def status(self, now=None) -> str:
        if self.revoked_at is not None:
            return LinkStatus.REVOKED
        if self.is_expired(now):
            return LinkStatus.EXPIRED
        if self.claimed_at is not None:
            return LinkStatus.IN_USE
        return LinkStatus.UNUSED

    def get_status_display(self) -> str:
        return LinkStatus(self.status()).label


class LinkDevice(models.Model):
    """One browser bound to a personal link. Only a hash of its secret is kept."""

    link = models.ForeignKey(
        PersonalLink,
        verbose_name=_("personal link"),
        on_delete=models.CASCADE,
        related_name="devices",
    )
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(_("first seen"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen"), default=timezone.now)
    user_agent = models.CharField(_("browser"), max_length=255, blank=True)
    ip = models.CharField(_("network (truncated IP)"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("device")
        verbose_name_plural = _("devices")
        constraints = [
            models.UniqueConstraint(
                fields=["secret_hash", "link"], name="paidwebinar_device_unique"
            )
        ]

    def __str__(self) -> str:
        return self.user_agent or str(_("device"))
