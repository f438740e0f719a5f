"""Failure counters for the gate (wrong passwords, bad tokens) in Django's cache.

Two ceilings per scope: a tight one per client (device cookie, session or address)
and page, and a looser one per address, so one office behind one NAT address is not
locked out by a single colleague's typos while a script rotating cookies still hits
the address ceiling. Fixed windows keep it to one cache read per check and one
increment per failure.

The counters live in the default cache. The locmem default is per process: a
deployment with several processes needs a shared cache (Redis, Memcached, database).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache

from . import conf, tokens

_PREFIX = "paidwebinar:throttle"


@dataclass(frozen=True)
class ThrottleState:
    """Whether a client may try again, and in how many seconds if not."""

    blocked: bool
    retry_after: int = 0


def _window() -> tuple[int, int]:
    """(window number, seconds until it ends)."""
    length = max(1, int(conf.get_setting("THROTTLE_WINDOW")))
    now = time.time()
    number = int(now // length)
    return number, max(1, int((number + 1) * length - now + 0.999))


def _keys(scope: str, page_id: int, client: str, ip: str) -> tuple[str, str]:
    number, _ = _window()
    # Hash the client id: it may be a cookie value, which must not sit in a cache.
    client_hash = tokens.hash_secret(client)[:32]
    return (
        f"{_PREFIX}:{scope}:{page_id}:c:{client_hash}:{number}",
        f"{_PREFIX}:{scope}:ip:{ip}:{number}",
    )


def check(scope: str, page_id: int, client: str, ip: str) -> ThrottleState:
    """Is this client (or its address) over its failure ceiling for ``scope``?"""
    client_key, ip_key = _keys(scope, page_id, client, ip)
    counts = cache.get_many([client_key, ip_key])
    over = counts.get(client_key, 0) >= int(
        conf.get_setting("THROTTLE_FAILURES")
    ) or counts.get(ip_key, 0) >= int(conf.get_setting("THROTTLE_IP_FAILURES"))
    if not over:
        return ThrottleState(False)
    return ThrottleState(True, _window()[1])


def record_failure(scope: str, page_id: int, client: str, ip: str) -> None:
    """Count one failure against the client and its address."""
    _, remaining = _window()
    for key in _keys(scope, page_id, client, ip):
        # add() is a no-op when the key exists; incr() is atomic on shared caches.
        cache.add(key, 0, timeout=remaining + 1)
        try:
            cache.incr(key)
        except ValueError:
            # Expired between add() and incr(): start again.
            cache.set(key, 1, timeout=remaining + 1)
