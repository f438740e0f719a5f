"""Opaque unsubscribe tokens and URLs (RFC 8058 one-click).

A token is ``<subscriber id>.<signature>``, the signature Django's
:class:`~django.core.signing.Signer` over ``"<id>:<unsubscribe_salt>"`` (the
subscriber's random salt), so it is keyed by SECRET_KEY and verified against
SECRET_KEY_FALLBACKS by Django itself. The salt is not in the token: it reveals no
address and nothing to build another subscriber's token from, and nobody can
unsubscribe someone else by guessing ids.
"""

from __future__ import annotations

import logging

from django.core import signing
from django.urls import reverse
from django.utils import timezone

from ..models import Subscriber
from ..utils import absolute_url

logger = logging.getLogger(__name__)

KEY_SALT = "wagtail_paidwebinar.mailing.unsubscribe"


def _signed_value(subscriber_id: int, salt: str) -> str:
    return f"{subscriber_id}:{salt}"


def unsubscribe_token(subscriber: Subscriber) -> str:
    """``<subscriber id>.<signature>``: opaque, keyed by SECRET_KEY and the
    subscriber's salt; reveals no e-mail address."""
    return token_for(subscriber.pk, subscriber.unsubscribe_salt)


def token_for(subscriber_id: int, salt: str) -> str:
    """The token from a subscriber's id and salt (the send loop has no instance)."""
    signer = signing.Signer(salt=KEY_SALT)
    signed = signer.sign(_signed_value(subscriber_id, salt))
    # Only the signature travels; the value it signs is rebuilt from the database.
    return f"{subscriber_id}.{signed.rpartition(signer.sep)[2]}"


def subscriber_for_unsubscribe_token(token: object) -> Subscriber | None:
    """The subscriber a token belongs to; None for anything invalid (never raises,
    logs at debug level without the token)."""
    if not isinstance(token, str) or len(token) > 100:
        return None
    id_part, sep, signature = token.partition(".")
    if not sep or not id_part.isascii() or not id_part.isdigit() or len(id_part) > 19:
        return None
    subscriber = Subscriber.objects.filter(pk=int(id_part)).first()
    if subscriber is None:
        logger.debug("Unsubscribe token for an unknown subscriber")
        return None
    signer = signing.Signer(salt=KEY_SALT)
    value = _signed_value(subscriber.pk, subscriber.unsubscribe_salt)
    try:
        signer.unsign(f"{value}{signer.sep}{signature}")
    except signing.BadSignature:
        logger.debug("Unsubscribe token with a bad signature")
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
