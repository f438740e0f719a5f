"""Lost link: a participant asks for their invitation again by entering their e-mail.

The public form (views/lostlink.py) calls :func:`request_resend`. Whether the
address has a live link of the webinar must not show, neither in the answer nor
in its timing (no enumeration of participants). So the request does the same work
whatever was entered: count the throttles and queue one job with the webinar id
and the normalised address. The job (:func:`resend_lost_link`, run by a worker)
does the lookup and, for a known address, re-sends the invitation through
``mailing.send_invitation(link, resend=True)``: the same message, ledger and
audit log entry as the organiser's "re-issue".

With the embedded in-process queue (no Redis: jobs run inline, at commit) the
lookup and the send happen inside the request, so the timing differs; the answer
still does not. A site that cares runs a worker (``REDIS_URL``), as production
sites do anyway.
"""

from __future__ import annotations

import logging
import uuid

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from . import conf, throttle
from .mailing import InvitationStatus, send_invitation
from .mailing.jobs import get_queue
from .mailing.siteid import ForeignJobError, accepted_identities, site_identity
from .models import PersonalLink, WebinarPage
from .parsing import normalize_email
from .utils import MAX_PK

logger = logging.getLogger(__name__)

SCOPE_CLIENT = "lost_link_client"
SCOPE_ADDRESS = "lost_link_address"
# Longest address accepted (RFC 5321's path limit; the model's field too).
MAX_EMAIL_LENGTH = 254


def webinar_for(page_id: int) -> WebinarPage | None:
    """The published webinar ``page_id`` names, or ``None`` (no such page, not a
    webinar, not live, or an id beyond any primary key)."""
    if not 0 < page_id <= MAX_PK:
        return None
    return WebinarPage.objects.live().filter(pk=page_id).first()


def clean_address(value: str) -> str | None:
    """The normalised address (see ``parsing.normalize_email``), or ``None`` when
    ``value`` is not an e-mail address we could ever have stored."""
    address = normalize_email(value)
    if not address or len(address) > MAX_EMAIL_LENGTH or "\x00" in address:
        return None
    try:
        validate_email(address)
    except ValidationError:
        return None
    return address


def client_allowed(client_ip: str) -> throttle.ThrottleState:
    """Count one use of the form by this client network (an IPv4 address, an IPv6
    /64), every POST, bad input included."""
    return throttle.count_request(
        SCOPE_CLIENT,
        {
            throttle.client_network(client_ip): int(
                conf.get_setting("LOST_LINK_PER_CLIENT")
            )
        },
        int(conf.get_setting("LOST_LINK_WINDOW")),
    )


def request_resend(page: WebinarPage, address: str) -> throttle.ThrottleState:
    """Count the request against ``address`` (normalised) and, within its
    allowance, queue the lookup and re-send. The same work for every address."""
    state = throttle.count_request(
        SCOPE_ADDRESS,
        {f"{page.pk}:{address}": int(conf.get_setting("LOST_LINK_PER_ADDRESS"))},
        int(conf.get_setting("LOST_LINK_WINDOW")),
    )
    if state.blocked:
        return state
    queue = get_queue()
    queue.enqueue(
        resend_lost_link,
        page.pk,
        address,
        site_identity(),
        job_id=f"paidwebinar-lostlink-{page.pk}-{uuid.uuid4().hex[:12]}",
        description=f"paidwebinar lost link: webinar {page.pk}",
        job_timeout=120,
        # The result says whether the address was known: keep none.
        result_ttl=0,
        failure_ttl=24 * 3600,
    )
    return state


def resend_lost_link(page_id: int, address: str, site: str | None = None) -> bool:
    """The job: re-send the invitation of the live link of webinar ``page_id``
    whose normalised e-mail is ``address``; returns whether one was queued."""
    if site is not None and site not in accepted_identities():
        raise ForeignJobError("lost-link job of another site")
    link = (
        PersonalLink.objects.live()
        .filter(webinar_id=page_id, email_normalized=address)
        .first()
    )
    if link is None:
        # Ids only: the address stays out of the log.
        logger.info("Lost link for webinar %s: no live link with that address", page_id)
        return False
    status = send_invitation(link, resend=True)
    logger.info("Lost link for webinar %s: link %s %s", page_id, link.pk, status)
    return status == InvitationStatus.QUEUED
