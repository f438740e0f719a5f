"""Which site a mailing job belongs to, so a job never runs against another database.

Two sites sharing a Redis and a queue name take each other's jobs. A job names a
mailing by primary key only, so the other site's worker would look up "its own"
mailing 7 — or find none and return "OK" — and nobody would notice. Every job
therefore carries this site's identity, and :func:`check_job` refuses a job whose
identity differs or whose mailing the database does not know, by raising: RQ
records a failed job (FailedJobRegistry) and the worker logs the error.

The identity is an HMAC of the database name, keyed by WAGTAIL_PAIDWEBINAR_SITE_ID
when set, else by SECRET_KEY (SECRET_KEY_FALLBACKS accepted, so a key rotation
does not fail the jobs already queued). It never contains the key.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connections, router
from django.utils.crypto import salted_hmac

from ..conf import get_setting
from ..models import Mailing

logger = logging.getLogger(__name__)

SALT = "wagtail_paidwebinar.mailing.siteid"


class ForeignJobError(RuntimeError):
    """A mailing job that belongs to another site (or to no mailing here)."""


def _database_name() -> str:
    alias = router.db_for_write(Mailing)
    return str(connections[alias].settings_dict.get("NAME") or "")


def site_identity(secret: str | bytes | None = None) -> str:
    """This site's identity as put into mailing jobs (24 hex digits)."""
    key = (
        secret if secret is not None else get_setting("SITE_ID") or settings.SECRET_KEY
    )
    return salted_hmac(
        SALT, _database_name(), secret=key, algorithm="sha256"
    ).hexdigest()[:24]


def accepted_identities() -> set[str]:
    """The identities a job of this site may carry (current and fallback keys)."""
    if get_setting("SITE_ID"):
        return {site_identity()}
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return {site_identity(key) for key in keys}


def _no_retry() -> None:
    # Retrying cannot make a foreign job ours: fail at once rather than after
    # RQ's Retry schedule, so the failure is visible in minutes, not hours.
    from rq import get_current_job

    job = get_current_job()
    if job is not None:
        job.retries_left = 0


def check_job(mailing_id: int, site: str | None) -> None:
    """Raise :class:`ForeignJobError` (and log an error) unless the job for
    ``mailing_id`` was queued by this site for a mailing its database knows.
    ``site`` None (a job queued before identities existed) checks the mailing
    only."""
    if site is not None and site not in accepted_identities():
        _no_retry()
        logger.error(
            "Mailing job for mailing %s was queued by another site (identity %s, "
            "this site %s): two sites share a Redis and the queue %r. Give each "
            "site its own WAGTAIL_PAIDWEBINAR_QUEUE.",
            mailing_id,
            site,
            site_identity(),
            get_setting("QUEUE"),
        )
        raise ForeignJobError(
            f"Job for mailing {mailing_id} belongs to another site (identity {site})."
        )
    if not Mailing.objects.filter(pk=mailing_id).exists():
        _no_retry()
        logger.error(
            "Mailing job for mailing %s: no such mailing in database %r (deleted, "
            "or a job of another site sharing the queue %r).",
            mailing_id,
            _database_name(),
            get_setting("QUEUE"),
        )
        raise ForeignJobError(f"Mailing {mailing_id} does not exist on this site.")
