"""Settings of wagtail_paidwebinar.

Every setting is ``WAGTAIL_PAIDWEBINAR_<NAME>`` in the Django settings and is read at
call time through :func:`get_setting`, so ``override_settings`` works in tests and
nothing is resolved at import time. Defaults live in :data:`DEFAULTS`, and each one is
documented in README.md.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "WAGTAIL_PAIDWEBINAR_"

DEFAULTS: dict[str, Any] = {
    # Absolute base of every link we send ("https://example.com"). Empty: the Wagtail
    # Site's root URL. Never the request's Host header (a forged Host would otherwise
    # end up in e-mails).
    "BASE_URL": "",
    # Webinar pages per page on a WebinarIndexPage.
    "INDEX_PAGE_SIZE": 12,
    # Timezone offered for new webinars; empty means settings.TIME_ZONE.
    "DEFAULT_TIMEZONE": "",
    # Hosts whose player may be embedded in the room as an iframe.
    "EMBED_HOSTS": [
        "www.youtube-nocookie.com",
        "www.youtube.com",
        "youtube.com",
        "youtu.be",
        "player.vimeo.com",
        "vimeo.com",
        "meet.jit.si",
    ],
    # Name of the query parameter that carries a personal token.
    "TOKEN_PARAM": "access",
    # Bytes of HMAC kept in a token (>= 16, i.e. >= 128 bits).
    "TOKEN_BYTES": 18,
    # Longest name and paste accepted by bulk generation.
    "MAX_NAME_LENGTH": 200,
    "MAX_LINES": 100_000,
    # Largest .txt/.csv list of participants the "Generate links" form accepts (bytes).
    # A paste is limited by Django's DATA_UPLOAD_MAX_MEMORY_SIZE instead.
    "LINKS_MAX_UPLOAD_BYTES": 20 * 1024 * 1024,
    # Device cookie set when a personal link is claimed.
    "DEVICE_COOKIE_NAME": "paidwebinar_device",
    "DEVICE_COOKIE_AGE": 60 * 60 * 24 * 400,
    # Device credential rotation: a granted page view whose device secret is older
    # than DEVICE_ROTATE_AFTER seconds gets a new one (0: never rotate); the secret
    # rotated away still admits for DEVICE_ROTATE_GRACE seconds (tabs, double
    # clicks, a response in flight), after which presenting it is refused and flags
    # the link as used from two browsers.
    "DEVICE_ROTATE_AFTER": 5 * 60,
    "DEVICE_ROTATE_GRACE": 60,
    # Password / token failures allowed per client and page, per window (seconds);
    # the per-IP ceiling is looser so one office behind one address is not locked out.
    "THROTTLE_FAILURES": 5,
    "THROTTLE_IP_FAILURES": 50,
    "THROTTLE_WINDOW": 15 * 60,
    # IPv6 clients are counted per network of this prefix (a customer gets a /64).
    "THROTTLE_IPV6_PREFIX": 64,
    # Wrong passwords per page and window from anyone before password attempts on
    # that page are locked for THROTTLE_PAGE_LOCK seconds (0 = no page ceiling).
    "THROTTLE_PAGE_FAILURES": 200,
    "THROTTLE_PAGE_LOCK": 60,
    # The cache (an alias of CACHES) holding the counters; shared by all processes.
    "THROTTLE_CACHE": "default",
    # The gate: a bound device's visit is recorded as an attendance "entry" (and its
    # last_seen updated) at most once per this many seconds, keeping writes off the
    # hot path; a room password pass (cookie) lasts this many seconds.
    "ENTRY_INTERVAL": 10 * 60,
    "PASSWORD_PASS_AGE": 60 * 60 * 24 * 30,
    # django-rq queue the mailing jobs go to.
    "QUEUE": "default",
    # Recipients per mailing job, pause between messages (seconds) and the age after
    # which a row left 'sending' by a killed worker is resumed.
    "BATCH_SIZE": 500,
    "SEND_DELAY": 0.0,
    "STALE_SENDING_SECONDS": 15 * 60,
    # A queued or sending mailing whose rows have not moved for this many seconds
    # is shown as stalled (no worker, a stopped worker, Redis lost the jobs...).
    "STALL_SECONDS": 120,
    # This site's identity in mailing jobs, checked by the job so a worker of
    # another site sharing the Redis and queue fails loudly instead of sending (or
    # silently skipping) someone else's mailing. Empty: derived from SECRET_KEY and
    # the database name (never the key itself).
    "SITE_ID": "",
    # E-mail connections per worker (threads), each claiming its own ledger rows:
    # against a distant relay a connection waits on round trips, so several send
    # at once. At most one duplicate per connection per crash. 1 = one connection.
    "SMTP_CONNECTIONS": 8,
    # A mailing estimated above this many recipients starts in the background:
    # resolving the audience and writing the ledger run as a job (the editor's
    # request returns at once, the mailing shows "preparing"). None: never.
    "START_IN_BACKGROUND_ABOVE": 2000,
    # "Generate links" with more participant lines than this runs as a job with a
    # progress page (no request near a proxy's timeout). None: never.
    "GENERATE_IN_BACKGROUND_ABOVE": 2000,
    # Transient SMTP failures: retries and their delays (seconds).
    "RETRY_DELAYS": [30, 120, 600],
    # PostgreSQL: every ledger update is durable (the host database's own
    # synchronous_commit) unless the site opts out with False: then the worker's
    # ledger connections commit without waiting for the WAL flush (a worker crash
    # still loses nothing; a database server crash may re-send the last ~0.6 s).
    "LEDGER_SYNCHRONOUS_COMMIT": True,
    # Lost link (lostlink.py): requests per e-mail address and per client (browser,
    # else address + user agent) within LOST_LINK_WINDOW seconds; past either the
    # form answers 429. The same answer whether or not the address has a link.
    "LOST_LINK_PER_ADDRESS": 3,
    "LOST_LINK_PER_CLIENT": 10,
    "LOST_LINK_WINDOW": 24 * 60 * 60,
    # Move to this device (moves.py): a code lives MOVE_CODE_AGE seconds and dies
    # after MOVE_CODE_ATTEMPTS wrong entries; at most MOVE_CODES_PER_LINK codes are
    # e-mailed per link within LOST_LINK_WINDOW. The number of moves per link is
    # the webinar's "moves to another browser per link" field.
    "MOVE_CODE_AGE": 15 * 60,
    "MOVE_CODE_ATTEMPTS": 5,
    "MOVE_CODES_PER_LINK": 5,
    # Payment webhooks (payments.py): the shared secret(s) of the signed purchase
    # webhook and Stripe's endpoint signing secret(s) ("whsec_..."). A string, or a
    # list while rotating; empty switches the endpoint off (404).
    "PURCHASE_WEBHOOK_SECRET": "",
    "STRIPE_WEBHOOK_SECRET": "",
    # The webhook delivery log keeps this many days (older rows are deleted as new
    # ones arrive; 0 keeps everything), and records at most this many deliveries
    # with a bad signature per hour, so an anonymous flood cannot grow the table.
    "WEBHOOK_LOG_DAYS": 180,
    "WEBHOOK_LOG_UNVERIFIED_PER_HOUR": 100,
}


class PaidWebinarImproperlyConfigured(ImproperlyConfigured):
    """A WAGTAIL_PAIDWEBINAR_* setting is wrong; the message names the fix."""


def get_setting(name: str) -> Any:
    """Return ``WAGTAIL_PAIDWEBINAR_<name>`` or its default."""
    if name not in DEFAULTS:
        raise PaidWebinarImproperlyConfigured(
            f"Unknown setting {PREFIX}{name}; known: {', '.join(sorted(DEFAULTS))}."
        )
    return getattr(settings, PREFIX + name, DEFAULTS[name])


def check() -> None:
    """Raise PaidWebinarImproperlyConfigured for settings that cannot work."""
    base_url = get_setting("BASE_URL")
    if base_url and not base_url.startswith(("http://", "https://")):
        raise PaidWebinarImproperlyConfigured(
            f"{PREFIX}BASE_URL must start with http:// or https:// "
            f"(got {base_url!r}), e.g. 'https://example.com'."
        )
    if int(get_setting("TOKEN_BYTES")) < 16:
        raise PaidWebinarImproperlyConfigured(
            f"{PREFIX}TOKEN_BYTES must be at least 16 (128 bits)."
        )
    alias = get_setting("THROTTLE_CACHE")
    if alias not in settings.CACHES:
        raise PaidWebinarImproperlyConfigured(
            f"{PREFIX}THROTTLE_CACHE is {alias!r}, which is not an alias in CACHES "
            f"(known: {', '.join(sorted(settings.CACHES))})."
        )
