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


# How long a repeated POST of one confirm form still counts as the same browser:
# what a double click (or a reload of the POST) needs, not more.
CLAIM_RETRY_WINDOW = dt.timedelta(seconds=60)
# How long a rendered confirm form's nonce is honoured. An older form still claims
# a free slot (as a fresh device); it only loses the double-click idempotence.
CLAIM_NONCE_AGE = 15 * 60
_KEY_CHARS = frozenset(string.ascii_letters + string.digits + "-_")


def valid_browser_key(value: str | None) -> bool:
    """Is ``value`` a claim key this module could have issued (the claim cookie)?"""
    return value is not None and len(value) == 43 and set(value) <= _KEY_CHARS


def new_browser_key() -> str:
    """A random claim key for the claim cookie (256 bits, 43 characters)."""
    return secrets.token_urlsafe(32)


def new_claim_nonce(link_id: int, browser_key: str) -> str:
    """A server-issued nonce for one rendering of the confirm form, good for this
    link in the browser holding ``browser_key`` for CLAIM_NONCE_AGE seconds."""
    return tokens.make_claim_nonce(link_id, browser_key)


def device_secret_for_claim(
    link_id: int, nonce: str | None, browser_key: str | None
) -> str:
    """The device secret a confirm form's POST binds.

    With a nonce the server issued to this browser (its claim cookie) for this link,
    derived from both: a double click (two POSTs of the same form, the first
    response and its cookies often discarded by the browser) binds one device and
    both responses set the same cookie, so the honest buyer is not locked out by
    their own browser. Another browser posting the same form, or any nonce the
    server did not issue, gets a random secret: a new device, which takes a free
    slot like any first claim and never re-enters an occupied one. (A self-chosen
    nonce used to derive one shared secret: any number of browsers got in.)
    """
    if (
        browser_key is None
        or nonce is None
        or not valid_browser_key(browser_key)
        or not tokens.claim_nonce_issued(link_id, browser_key, nonce, CLAIM_NONCE_AGE)
    ):
        return new_device_secret()
    return tokens.claim_secret(link_id, nonce, browser_key)


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
            # The same confirm form posted again by the same browser (the secret
            # derives from its claim key), if it is soon: a double click.
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
        # An UPDATE, not link.save(): save() sends post_save, on which Wagtail
        # re-reads the link and rewrites its reference index rows (five more
        # statements), all while this transaction holds the row lock that every
        # other claim of the link waits for. The gate load test found it.
        stamps = {"last_seen_at": now}
        if link.claimed_at is None:
            stamps["claimed_at"] = now
        PersonalLink.objects.filter(pk=link.pk).update(**stamps)
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


def rotate_device(
    secret_hash: str, now: dt.datetime, *, ip: str, user_agent: str
) -> str | None:
    """Give the browser holding the secret hashed to ``secret_hash`` a new device
    secret; returns it, or ``None`` when another request rotated it first.

    One UPDATE, over every device row of that browser (one secret serves all the
    links it holds, see carry_bindings): the old hash is kept as the previous one
    for the grace, and the device's browser and network become those of the
    browser now holding the secret, so a later reuse shows both on the attendance
    view. Conditional on the old hash, so of two simultaneous rotations one wins;
    the other's browser holds the previous secret, fine inside the grace.
    """
    secret = new_device_secret()
    updated = LinkDevice.objects.filter(secret_hash=secret_hash).update(
        secret_hash=tokens.hash_secret(secret),
        previous_secret_hash=secret_hash,
        rotated_at=now,
        user_agent=(user_agent or "")[:255],
        ip=truncate_ip(ip),
    )
    return secret if updated else None


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
