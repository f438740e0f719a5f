"""Failure counters for the gate (wrong passwords, bad tokens) in Django's cache.

Three ceilings per scope and window:

* per client (device cookie, session or address + user agent) and page: tight;
* per client network (an IPv4 address, an IPv6 /64): looser, so one office behind
  one NAT address is not locked out by a colleague's typos, while a script rotating
  cookies, or addresses inside the /64 every IPv6 customer is given, still meets it;
* per page, for passwords only: a page whose only secret is its password (link
  sharing on) must not be guessable from many networks at once. Reaching the
  ceiling locks password attempts on that page, from anyone, for a short while
  (``THROTTLE_PAGE_LOCK``), then counting starts again. A personal link is 128 bits
  and needs no such ceiling, and locking it would let anyone lock holders out.

Fixed windows keep it to one cache read per check and an increment per counter per
failure. The counters live in the cache named by ``THROTTLE_CACHE``; every process
of the site must share it (Redis, Memcached, database): with a per-process cache
(locmem, Django's default) each process counts alone. ``check --deploy`` warns
(``wagtail_paidwebinar.W002``).
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from django.core.cache import BaseCache, caches

from . import conf, tokens

_PREFIX = "paidwebinar:throttle"
# Scopes with a per-page ceiling: the low-entropy secret only.
PAGE_CEILING_SCOPES = frozenset({"password"})


@dataclass(frozen=True)
class ThrottleState:
    """Whether a client may try again, and in how many seconds if not."""

    blocked: bool
    retry_after: int = 0


def throttle_cache() -> BaseCache:
    """The cache holding the counters (``THROTTLE_CACHE``, an alias of CACHES)."""
    return caches[conf.get_setting("THROTTLE_CACHE")]


def client_network(ip: str) -> str:
    """What the per-address ceiling counts: the IPv4 address itself, the /64 of an
    IPv6 address (``THROTTLE_IPV6_PREFIX``), an IPv4-mapped IPv6 address as its IPv4
    address; anything unparsable as given."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        prefix = int(conf.get_setting("THROTTLE_IPV6_PREFIX"))
        return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
    return str(address)


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
        f"{_PREFIX}:{scope}:ip:{client_network(ip)}:{number}",
    )


def _page_keys(scope: str, page_id: int) -> tuple[str, str]:
    """(failure counter of the window, lock) of the page."""
    number, _ = _window()
    return (
        f"{_PREFIX}:{scope}:{page_id}:page:{number}",
        f"{_PREFIX}:{scope}:{page_id}:lock",
    )


def _page_ceiling(scope: str) -> int:
    """The page's ceiling for ``scope``; 0 = none."""
    if scope not in PAGE_CEILING_SCOPES:
        return 0
    return max(0, int(conf.get_setting("THROTTLE_PAGE_FAILURES")))


def check(scope: str, page_id: int, client: str, ip: str) -> ThrottleState:
    """Is this client, its network or the page over its failure ceiling for
    ``scope``? One cache read."""
    client_key, ip_key = _keys(scope, page_id, client, ip)
    wanted = [client_key, ip_key]
    lock_key = None
    if _page_ceiling(scope):
        lock_key = _page_keys(scope, page_id)[1]
        wanted.append(lock_key)
    counts = throttle_cache().get_many(wanted)
    if lock_key is not None and lock_key in counts:
        # The lock holds the time it ends, so Retry-After is what is left of it.
        left = int(counts[lock_key] - time.time() + 0.999)
        return ThrottleState(True, max(1, left))
    over = counts.get(client_key, 0) >= int(
        conf.get_setting("THROTTLE_FAILURES")
    ) or counts.get(ip_key, 0) >= int(conf.get_setting("THROTTLE_IP_FAILURES"))
    if not over:
        return ThrottleState(False)
    return ThrottleState(True, _window()[1])


def _increment(cache: BaseCache, key: str, timeout: int) -> int:
    # add() is a no-op when the key exists; incr() is atomic on shared caches.
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:
        # Expired between add() and incr(): start again.
        cache.set(key, 1, timeout=timeout)
        return 1


def record_failure(scope: str, page_id: int, client: str, ip: str) -> None:
    """Count one failure against the client, its network and (passwords) the page;
    lock the page when it reaches its ceiling."""
    cache = throttle_cache()
    _, remaining = _window()
    for key in _keys(scope, page_id, client, ip):
        _increment(cache, key, remaining + 1)
    ceiling = _page_ceiling(scope)
    if not ceiling:
        return
    counter_key, lock_key = _page_keys(scope, page_id)
    if _increment(cache, counter_key, remaining + 1) >= ceiling:
        lock = max(1, int(conf.get_setting("THROTTLE_PAGE_LOCK")))
        cache.set(lock_key, time.time() + lock, timeout=lock)
        # Start counting again after the lock, rather than staying locked until
        # the (longer) window ends.
        cache.delete(counter_key)


def count_request(scope: str, limits: dict[str, int], window: int) -> ThrottleState:
    """Count one request against each identity of ``limits`` (identity -> at most
    this many requests per ``window`` seconds); blocked when any is over.

    For forms that cost the site something on every use (an e-mail sent), where
    the gate's counters count failures only. Identities are hashed before they go
    into the cache (an e-mail address or a cookie must not sit there).
    """
    cache = throttle_cache()
    length = max(1, int(window))
    now = time.time()
    number = int(now // length)
    remaining = max(1, int((number + 1) * length - now + 0.999))
    blocked = False
    for identity, limit in limits.items():
        key = f"{_PREFIX}:{scope}:{tokens.hash_secret(identity)[:32]}:{number}"
        # Every identity is counted, even past a blocked one: a client blocked on
        # one address still uses up its own allowance.
        if _increment(cache, key, remaining + 1) > int(limit):
            blocked = True
    return ThrottleState(blocked, remaining if blocked else 0)
