"""Attendance: what the gate saw (claims, entries, refusals) for the attendance view."""

from __future__ import annotations

import ipaddress

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AccessEventKind(models.TextChoices):
    CLAIM = "claim", _("Joined (link claimed)")
    ENTRY = "entry", _("Entered the room")
    PASSWORD_OK = "password_ok", _("Room password accepted")
    REFUSED_IN_USE = "refused_in_use", _("Refused: link in use on another device")
    REFUSED_INVALID = "refused_invalid", _("Refused: invalid link")
    REFUSED_REVOKED = "refused_revoked", _("Refused: revoked link")
    REFUSED_EXPIRED = "refused_expired", _("Refused: expired link")
    PASSWORD_FAILED = "password_failed", _("Wrong room password")
    REUSE_DETECTED = "reuse_detected", _("Refused: used from two browsers")
    MOVE_CODE_SENT = "move_code_sent", _("Code to move to a new browser sent")
    DEVICE_MOVED = "device_moved", _("Moved to a new browser")


def truncate_ip(value: str | None) -> str:
    """The network of an address: IPv4 /24, IPv6 /48 ("" when unparsable).

    Enough to tell one office from another when looking for shared links, not enough
    to identify a person.
    """
    try:
        address = ipaddress.ip_address((value or "").strip())
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


class AccessEvent(models.Model):
    """One thing the gate did for one browser.

    Granted page views are not all recorded (that would be a write on the hot path):
    an "entry" is written when a bound device comes back after
    WAGTAIL_PAIDWEBINAR_ENTRY_INTERVAL seconds without being seen.
    """

    webinar = models.ForeignKey(
        "wagtail_paidwebinar.WebinarPage",
        verbose_name=_("webinar"),
        on_delete=models.CASCADE,
        related_name="access_events",
    )
    # Null for refusals that cannot be pinned on a link (a forged token must not be
    # able to make a real link look shared) and when a link is deleted.
    link = models.ForeignKey(
        "wagtail_paidwebinar.PersonalLink",
        verbose_name=_("personal link"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="access_events",
    )
    time = models.DateTimeField(_("time"), default=timezone.now)
    kind = models.CharField(_("event"), max_length=32, choices=AccessEventKind.choices)
    ip = models.CharField(_("network (truncated IP)"), max_length=64, blank=True)
    user_agent = models.CharField(_("browser"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("access event")
        verbose_name_plural = _("access events")
        ordering = ["-time", "-pk"]
        indexes = [
            models.Index(fields=["webinar", "time"], name="paidwebinar_event_time"),
            models.Index(fields=["link", "kind"], name="paidwebinar_event_link_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} @ {self.time:%Y-%m-%d %H:%M}"
