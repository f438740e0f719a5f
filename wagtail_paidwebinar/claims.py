"""Every row the gate writes: the atomic claim of a device slot, attendance events,
entries with their last-seen stamps, and a browser's bindings carried over to a new
device secret.

Plain functions taking ids and values, never a request: gate.py reads the request
and calls them.
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets
import string

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import conf, tokens
from .models import AccessEvent, AccessEventKind, LinkDevice, PersonalLink, WebinarPage
from .models.attendance import truncate_ip


def new_device_secret() -> str:
    """A random device secret for the device cookie (256 bits)."""
    return secrets.token_urlsafe(32)


# How long a repeated POST of one confirm form still counts as the same browser.
CLAIM_RETRY_WINDOW = dt.timedelta(minutes=10)
_NONCE_CHARS = frozenset(string.ascii_letters + string.digits + "-_")


def new_claim_nonce() -> str:
    """A random nonce for one rendering of the confirm form."""
    return secrets.token_urlsafe(24)


def device_secret_for_claim(link_id: int, nonce: str | None) -> str:
    """The device secret a confirm form's POST binds.

    Derived from the form's nonce, so a double click (two POSTs of the same form,
    the first response and its cookie often discarded by the browser) binds one
    device and both responses set the same cookie: the honest buyer is not locked
    out by their own browser. Without a well-formed nonce, a random secret.
    """
    if not nonce or not 20 <= len(nonce) <= 64 or not set(nonce) <= _NONCE_CHARS:
        return new_device_secret()
    return tokens.claim_secret(link_id, nonce)


class ClaimOutcome(enum.Enum):
    CLAIMED = "claimed"  # a new device slot was taken
    ALREADY_BOUND = "already_bound"  # this browser already holds a slot
    IN_USE = "in_use"  # every slot is taken by other browsers
    INVALID = "invalid"  # no such link, revoked or expired


def claim_link(
    link_id: int, device_secret: str, *, user_agent: str = "", ip: str = ""
) -> ClaimOutcome:
    """Take one of the link's device slots for the browser holding ``device_secret``.

    The link row is locked (``SELECT ... FOR UPDATE``) while the slots are counted and
    the new device is inserted, so of N simultaneous claims for the last slot exactly
    one wins on PostgreSQL; the others see the full count once the winner commits.
    (SQLite has no row locks but serialises writers on the whole database.)
    """
    secret_hash = tokens.hash_secret(device_secret)
    now = timezone.now()
    with transaction.atomic():
        link = (
            PersonalLink.objects.select_for_update()
            .filter(pk=link_id)
            .only("pk", "webinar_id", "name", "revoked_at", "expires_at", "claimed_at")
            .first()
        )
        if link is None or not link.is_live(now):
            return ClaimOutcome.INVALID
        devices = dict(
            LinkDevice.objects.filter(link_id=link.pk).values_list(
                "secret_hash", "created_at"
            )
        )
        if secret_hash in devices:
            # The same confirm form posted again: the same browser, if it is soon.
            if now - devices[secret_hash] <= CLAIM_RETRY_WINDOW:
                return ClaimOutcome.ALREADY_BOUND
            return ClaimOutcome.IN_USE
        max_devices = (
            WebinarPage.objects.filter(pk=link.webinar_id)
            .values_list("max_devices_per_link", flat=True)
            .first()
        ) or 1
        if len(devices) >= max_devices:
            return ClaimOutcome.IN_USE
        try:
            with transaction.atomic():
                LinkDevice.objects.create(
                    link=link,
                    secret_hash=secret_hash,
                    created_at=now,
                    last_seen_at=now,
                    user_agent=(user_agent or "")[:255],
                    ip=truncate_ip(ip),
                )
        except IntegrityError:
            # The same browser double-posted and its first request won.
            return ClaimOutcome.ALREADY_BOUND
        fields = ["last_seen_at"]
        link.last_seen_at = now
        if link.claimed_at is None:
            link.claimed_at = now
            fields.append("claimed_at")
        link.save(update_fields=fields)
        AccessEvent.objects.create(
            webinar_id=link.webinar_id,
            link=link,
            time=now,
            kind=AccessEventKind.CLAIM,
            ip=truncate_ip(ip),
            user_agent=(user_agent or "")[:255],
        )
    return ClaimOutcome.CLAIMED


def record_event(
    webinar_id: int,
    kind: AccessEventKind,
    link_id: int | None,
    *,
    ip: str,
    user_agent: str,
) -> None:
    """One attendance record (``ip`` is stored truncated, see ``truncate_ip``)."""
    # A forged or malformed token names no link we trust: never pin it on one.
    if kind is AccessEventKind.REFUSED_INVALID:
        link_id = None
    AccessEvent.objects.create(
        webinar_id=webinar_id,
        link_id=link_id,
        kind=kind,
        ip=truncate_ip(ip),
        user_agent=(user_agent or "")[:255],
    )


def record_entry(
    webinar_id: int,
    device_id: int,
    link_id: int,
    last_seen_at: dt.datetime | None,
    now: dt.datetime,
    *,
    ip: str,
    user_agent: str,
) -> bool:
    """An "entry" of a bound device, at most once per ENTRY_INTERVAL.

    ``last_seen_at`` is the device's stamp as the gate read it. Most granted views
    fall inside the interval and write nothing; the others stamp the device and its
    link and record an entry. Returns whether anything was written.
    """
    interval = dt.timedelta(seconds=int(conf.get_setting("ENTRY_INTERVAL")))
    if last_seen_at and now - last_seen_at < interval:
        return False
    LinkDevice.objects.filter(pk=device_id).update(last_seen_at=now)
    PersonalLink.objects.filter(pk=link_id).update(last_seen_at=now)
    record_event(
        webinar_id, AccessEventKind.ENTRY, link_id, ip=ip, user_agent=user_agent
    )
    return True


def carry_bindings(old_secret: str, new_secret: str, *, except_link_id: int) -> int:
    """Move a browser's bindings to other links from ``old_secret`` to ``new_secret``.

    After a claim the browser holds a new device secret; without this the links it
    had claimed before would no longer recognise it. Returns how many moved.
    """
    return (
        LinkDevice.objects.filter(secret_hash=tokens.hash_secret(old_secret))
        .exclude(link_id=except_link_id)
        .update(secret_hash=tokens.hash_secret(new_secret))
    )
