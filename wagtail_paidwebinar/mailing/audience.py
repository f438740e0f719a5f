"""Who a mailing goes to: link holders and/or the subscribed members of a list.

The one home of these rules, for sending (:func:`member_rows`,
``ledger.insert_link_holders``) and for the admin's preview, confirm, export and
"copy message" pages (:func:`planned_audience` and the lookups after it).

- Link holders: the webinar's live links with an e-mail (:func:`valid_links`).
- A one-recipient invitation: its link alone (:func:`invitation_rows`).
- Members: the list's subscribed subscribers (:func:`subscribed_members`); one
  without a personal link gets one at start, one whose link is revoked or expired
  gets a failed row saying why.
- One recipient per address (compared case-insensitively): a link holder who is
  also a member keeps the link holder's row.
- Once a mailing has started, its ledger rows are the audience
  (:func:`is_resolved`, :func:`ledger_rows`).

Rows are produced lazily in chunks so that 100,000 recipients never sit in memory
at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from ..actions import generate_links
from ..models import (
    Mailing,
    MailingRecipient,
    PersonalLink,
    RecipientStatus,
    Subscriber,
)
from ..parsing import normalize_email

CHUNK = 2000


class Planned(NamedTuple):
    """One address of a mailing not started yet: a link holder (``subscriber``
    None) or a member with their live link, if they have one. ``skipped`` says why
    start will fail the row instead of sending (empty: it will be sent)."""

    link: PersonalLink | None
    subscriber: Subscriber | None = None
    skipped: str = ""


def dead_link_reason() -> str:
    """Why a member whose link is revoked or expired gets no e-mail (the failed
    row's error and the admin's "skipped" list say the same)."""
    return _("The personal link is revoked or expired.")


def valid_links(webinar_id: int, now) -> QuerySet[PersonalLink]:
    """The webinar's links with an e-mail, neither revoked nor expired: the
    audience "link holders" (ledger.insert_link_holders turns them into rows)."""
    return (
        PersonalLink.objects.live(now)
        .filter(webinar_id=webinar_id)
        .exclude(email_normalized="")
    )


def subscribed_members(mailing: Mailing) -> QuerySet[Subscriber]:
    """The subscribed members of the mailing's list (none without a list)."""
    if mailing.subscriber_list_id is None:
        return Subscriber.objects.none()
    return Subscriber.objects.filter(
        lists__pk=mailing.subscriber_list_id, subscribed=True
    )


def estimated_count(mailing: Mailing) -> int:
    """About how many recipients :func:`~.api.start_mailing` would queue: the
    link holders plus the list's subscribed members (two COUNT queries; an
    address that is both is counted twice). Decides whether the start runs in
    the background (START_IN_BACKGROUND_ABOVE)."""
    count = 0
    if mailing.include_link_holders:
        count += valid_links(mailing.webinar_id, timezone.now()).count()
    return count + subscribed_members(mailing).count()


def unsubscribed_member_count(mailing: Mailing) -> int:
    """How many members of the mailing's list have unsubscribed (not sent to)."""
    if mailing.subscriber_list_id is None:
        return 0
    return Subscriber.objects.filter(
        lists__pk=mailing.subscriber_list_id, subscribed=False
    ).count()


def is_resolved(mailing: Mailing) -> bool:
    """True once the mailing has ledger rows: from then on they are its audience."""
    return mailing.recipients.exists()


def ledger_rows(mailing: Mailing) -> QuerySet[MailingRecipient]:
    """The mailing's ledger rows with their link and subscriber, in a stable order."""
    return mailing.recipients.select_related("link", "subscriber").order_by("pk")


def planned_audience(mailing: Mailing) -> Iterator[Planned]:
    """Who :func:`~.api.start_mailing` would send to, worked out without writing:
    the link holders (by name), then the members (by address) not already listed,
    each with their live link (None when start would issue one or fail the row)."""
    # Memory stays flat for 100,000 recipients: rows stream in chunks and only the
    # normalised e-mails already listed are remembered.
    now = timezone.now()
    seen: set[str] = set()
    if mailing.include_link_holders:
        holders = valid_links(mailing.webinar_id, now).order_by("name", "pk")
        for link in holders.iterator(chunk_size=CHUNK):
            seen.add(link.email_normalized)
            yield Planned(link)
    batch: list[Subscriber] = []
    members = subscribed_members(mailing).order_by("email_normalized")
    for subscriber in members.iterator(chunk_size=CHUNK):
        if subscriber.email_normalized in seen:
            continue
        seen.add(subscriber.email_normalized)
        batch.append(subscriber)
        if len(batch) >= CHUNK:
            yield from _with_live_links(mailing, batch, now)
            batch = []
    yield from _with_live_links(mailing, batch, now)


def _with_live_links(
    mailing: Mailing, subscribers: list[Subscriber], now
) -> Iterator[Planned]:
    if not subscribers:
        return
    live = valid_links(mailing.webinar_id, now).filter(
        email_normalized__in=[s.email_normalized for s in subscribers]
    )
    links = {link.email_normalized: link for link in live.order_by("name", "pk")}
    # A member whose link exists but is not live gets a failed row at start.
    dead = set(
        PersonalLink.objects.filter(
            webinar_id=mailing.webinar_id,
            email_normalized__in=[s.email_normalized for s in subscribers],
        )
        .exclude(email_normalized__in=list(links))
        .values_list("email_normalized", flat=True)
    )
    for subscriber in subscribers:
        if subscriber.email_normalized in dead:
            yield Planned(None, subscriber, dead_link_reason())
        else:
            yield Planned(links.get(subscriber.email_normalized), subscriber)


def planned_link_holder(mailing: Mailing, link_id: int) -> PersonalLink | None:
    """The link ``link_id`` when it is a link holder of the planned audience."""
    return valid_links(mailing.webinar_id, timezone.now()).filter(pk=link_id).first()


def planned_member(mailing: Mailing, subscriber_id: int) -> Planned | None:
    """The subscriber ``subscriber_id`` with their live link, when they are a
    subscribed member of the mailing's list."""
    subscriber = subscribed_members(mailing).filter(pk=subscriber_id).first()
    if subscriber is None:
        return None
    link = (
        valid_links(mailing.webinar_id, timezone.now())
        .filter(email_normalized=subscriber.email_normalized)
        .order_by("name", "pk")
        .first()
    )
    return Planned(link, subscriber)


def member_rows(mailing: Mailing, *, user=None) -> Iterator[MailingRecipient]:
    """Ledger rows for the subscribed members of the mailing's list, each with a
    personal link (issued now when missing: this writes). A member whose existing
    link is revoked or expired, or for whom no link can be issued, gets a failed
    row saying why."""
    if mailing.subscriber_list_id is None:
        return
    webinar = mailing.webinar.specific
    members = (
        subscribed_members(mailing)
        .order_by("pk")
        .values_list("pk", "name", "email", "email_normalized")
    )
    chunk: list[tuple] = []
    for member in members.iterator(chunk_size=CHUNK):
        chunk.append(member)
        if len(chunk) >= CHUNK:
            yield from _chunk_rows(mailing, webinar, chunk, user)
            chunk = []
    if chunk:
        yield from _chunk_rows(mailing, webinar, chunk, user)


def invitation_rows(mailing: Mailing) -> Iterator[MailingRecipient]:
    """The one ledger row of a one-recipient invitation: its link, when the link
    is live and has an e-mail (otherwise nothing is sent)."""
    if mailing.invitation_link_id is None:
        return
    link = (
        PersonalLink.objects.live(timezone.now())
        .filter(pk=mailing.invitation_link_id)
        .exclude(email_normalized="")
        .first()
    )
    if link is not None:
        yield MailingRecipient(
            mailing=mailing,
            email=link.email,
            email_normalized=link.email_normalized,
            name=link.name,
            link=link,
        )


def _links_by_email(webinar_id: int, emails: list[str]) -> dict[str, PersonalLink]:
    found: dict[str, PersonalLink] = {}
    for link in PersonalLink.objects.filter(
        webinar_id=webinar_id, email_normalized__in=emails
    ).only("pk", "name", "email_normalized", "revoked_at", "expires_at"):
        found[link.email_normalized] = link
    return found


def _chunk_rows(mailing, webinar, chunk, user):
    now = timezone.now()
    emails = [row[3] for row in chunk]
    links = _links_by_email(webinar.pk, emails)
    missing = [
        (name or email, email) for _pk, name, email, key in chunk if key not in links
    ]
    errors: dict[str, str] = {}
    if missing:
        result = generate_links(webinar, missing, user=user)
        for issue in result.errors:
            message = getattr(issue, "message", "") or str(issue)
            # Map the rejected line back to its e-mail (line numbers are 1-based).
            index = getattr(issue, "line", 0) - 1
            if 0 <= index < len(missing):
                errors[normalize_email(missing[index][1])] = message
        links = _links_by_email(webinar.pk, emails)
    for sub_pk, name, email, key in chunk:
        link = links.get(key)
        row = MailingRecipient(
            mailing_id=mailing.pk,
            email=email,
            email_normalized=key,
            # A subscriber without a name is greeted with their link's name.
            name=name or (link.name if link is not None else ""),
            subscriber_id=sub_pk,
        )
        if link is None:
            row.status = RecipientStatus.FAILED
            row.last_error = _("No personal link could be issued: %(reason)s") % {
                "reason": errors.get(key, _("unknown reason"))
            }
        elif not link.is_live(now):
            row.link_id = link.pk
            row.status = RecipientStatus.FAILED
            row.last_error = dead_link_reason()
        else:
            row.link_id = link.pk
        yield row
