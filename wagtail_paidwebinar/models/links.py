"""Personal links and the device slots a claim fills."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

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


def personal_url(page_url: str, token: str) -> str:
    """The one way a personal URL is written: the page URL plus ``?access=<token>``."""
    from ..conf import get_setting

    return f"{page_url}?{get_setting('TOKEN_PARAM')}={token}"


class PersonalLinkQuerySet(models.QuerySet):
    """The one home of "is this link live?" for querysets (see PersonalLink.problem
    for a single row): the gate, the ledger, the admin filter and the export ask it.
    """

    def live(self, now=None):
        """Links that still admit: not revoked and not expired at ``now``."""
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )

    def with_status(self, status: str, now=None):
        """Links in ``status`` (a LinkStatus value), by PersonalLink.status's rules."""
        now = now or timezone.now()
        if status == LinkStatus.REVOKED:
            return self.filter(revoked_at__isnull=False)
        if status == LinkStatus.EXPIRED:
            return self.filter(revoked_at__isnull=True, expires_at__lte=now)
        if status == LinkStatus.IN_USE:
            return self.live(now).filter(claimed_at__isnull=False)
        if status == LinkStatus.UNUSED:
            return self.live(now).filter(claimed_at__isnull=True)
        return self

    def with_urls(self) -> Iterator[tuple[PersonalLink, str]]:
        return with_urls(self)


def with_urls(links: Iterable[PersonalLink]) -> Iterator[tuple[PersonalLink, str]]:
    """``(link, absolute personal URL)`` pairs; each webinar's page URL is resolved
    once, not once per link (an export may list 10,000 links)."""
    from ..utils import absolute_page_url

    page_urls: dict[int, str] = {}
    for link in links:
        base = page_urls.get(link.webinar_id)
        if base is None:
            base = page_urls[link.webinar_id] = absolute_page_url(link.webinar)
        yield link, personal_url(base, link.token)


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

    objects = PersonalLinkQuerySet.as_manager()

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
        from ..utils import absolute_page_url

        return personal_url(absolute_page_url(self.webinar), self.token)

    # --- state --------------------------------------------------------------------
    def problem(self, now=None) -> str | None:
        """Why the link no longer admits (``LinkStatus.REVOKED``/``EXPIRED``), or
        ``None`` while it is live; the row-level twin of ``objects.live()``."""
        if self.revoked_at is not None:
            return LinkStatus.REVOKED
        if self.expires_at is not None and self.expires_at <= (now or timezone.now()):
            return LinkStatus.EXPIRED
        return None

    def is_live(self, now=None) -> bool:
        return self.problem(now) is None

    def status(self, now=None) -> str:
        problem = self.problem(now)
        if problem is not None:
            return problem
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
