"""Opaque unsubscribe tokens and URLs (RFC 8058 one-click).

A token is ``<subscriber id>.<mac>``, the mac an HMAC-SHA256 (``salted_hmac``) over
the id and the subscriber's random ``unsubscribe_salt``, keyed by SECRET_KEY (its
fallbacks verify too). It reveals no address, and nobody can unsubscribe someone else
by guessing ids.
"""

from __future__ import annotations

import base64
import hmac
import logging

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from ..models import Subscriber
from ..utils import absolute_url

logger = logging.getLogger(__name__)

KEY_SALT = "wagtail_paidwebinar.mailing.unsubscribe"
MAC_BYTES = 16


def _mac(subscriber_id: int, salt: str, secret: str | bytes) -> str:
    digest = salted_hmac(
        KEY_SALT, f"{subscriber_id}:{salt}", secret=secret, algorithm="sha256"
    ).digest()
    return base64.urlsafe_b64encode(digest[:MAC_BYTES]).rstrip(b"=").decode("ascii")


def unsubscribe_token(subscriber: Subscriber) -> str:
    """``<subscriber id>.<mac>``: opaque, keyed by SECRET_KEY and the subscriber's
    salt; reveals no e-mail address."""
    return token_for(subscriber.pk, subscriber.unsubscribe_salt)


def token_for(subscriber_id: int, salt: str) -> str:
    """The token from a subscriber's id and salt (the send loop has no instance)."""
    return f"{subscriber_id}.{_mac(subscriber_id, salt, settings.SECRET_KEY)}"


def subscriber_for_unsubscribe_token(token: object) -> Subscriber | None:
    """The subscriber a token belongs to; None for anything invalid (never raises)."""
    if not isinstance(token, str) or len(token) > 100:
        return None
    id_part, sep, mac = token.partition(".")
    if not sep or not id_part.isascii() or not id_part.isdigit() or len(id_part) > 19:
        return None
    subscriber = Subscriber.objects.filter(pk=int(id_part)).first()
    if subscriber is None:
        logger.debug("Unsubscribe token for an unknown subscriber")
        return None
    ok = False
    for secret in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
        ok |= hmac.compare_digest(
            _mac(subscriber.pk, subscriber.unsubscribe_salt, secret).encode(),
            mac.encode("utf-8", "replace"),
        )
    if not ok:
        logger.debug("Unsubscribe token with a bad mac")
        return None
    return subscriber


def unsubscribe_url(subscriber: Subscriber) -> str:
    """Absolute URL of "wagtail_paidwebinar:unsubscribe" for this subscriber, built from
    WAGTAIL_PAIDWEBINAR_BASE_URL (or the default Site), never a Host header."""
    return url_for_token(unsubscribe_token(subscriber))


def url_for_token(token: str, base: str | None = None) -> str:
    """Absolute unsubscribe URL for a token (``base`` saves a lookup in loops)."""
    path = reverse("wagtail_paidwebinar:unsubscribe", kwargs={"token": token})
    if base is None:
        return absolute_url(path)
    return base + path


def unsubscribe(subscriber: Subscriber) -> bool:
    """Mark the subscriber unsubscribed; False when they already were.

    A conditional UPDATE, so two simultaneous one-click POSTs record one change."""
    changed = Subscriber.objects.filter(pk=subscriber.pk, subscribed=True).update(
        subscribed=False, unsubscribed_at=timezone.now()
    )
    if changed:
        subscriber.subscribed = False
    return bool(changed)
