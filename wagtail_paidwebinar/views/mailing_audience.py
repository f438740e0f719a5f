"""Who a mailing goes to, read-only, for the admin's preview, confirm, export and
"copy message" pages.

Once a mailing has started, its ledger (MailingRecipient rows) is the truth. Before
that the audience is worked out the way ``start_mailing`` will: the webinar's link
holders with an e-mail (neither revoked nor expired), then the list's subscribed
members, one entry per address (compared case-insensitively). Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from django.db.models import QuerySet
from django.utils import timezone

from ..mailing import audience
from ..models import Mailing, MailingRecipient, PersonalLink, Subscriber
from ..models.links import personal_url
from ..utils import absolute_page_url

CHUNK = 1000


@dataclass(frozen=True)
class AudienceEntry:
    """One address of a mailing's audience; ``key`` identifies it in a URL."""

    key: str
    name: str
    email: str
    link: PersonalLink | None = None
    subscriber: Subscriber | None = None
    recipient: MailingRecipient | None = None


@dataclass(frozen=True)
class AudienceSummary:
    link_holders: int
    subscribers: int
    unsubscribed: int
    total: int
    without_link: int


def has_ledger(mailing: Mailing) -> bool:
    return mailing.recipients.exists()


def valid_links(mailing: Mailing) -> QuerySet[PersonalLink]:
    """The webinar's links with an e-mail that are neither revoked nor expired."""
    return audience.valid_links(mailing.webinar_id, timezone.now()).order_by(
        "name", "pk"
    )


def list_members(mailing: Mailing) -> QuerySet[Subscriber]:
    if not mailing.subscriber_list_id:
        return Subscriber.objects.none()
    return Subscriber.objects.filter(
        lists__pk=mailing.subscriber_list_id, subscribed=True
    ).order_by("email_normalized")


def iter_audience(mailing: Mailing) -> Iterator[AudienceEntry]:
    """Every address the mailing goes (or went) to, in a stable order."""
    if has_ledger(mailing):
        rows = mailing.recipients.select_related("link", "subscriber").order_by("pk")
        for row in rows.iterator(chunk_size=CHUNK):
            yield AudienceEntry(
                key=f"r{row.pk}",
                name=row.name,
                email=row.email,
                link=row.link,
                subscriber=row.subscriber,
                recipient=row,
            )
        return
    # Memory stays flat for 100,000 recipients: rows stream in chunks and only the
    # normalised e-mails already listed are remembered.
    seen: set[str] = set()
    if mailing.include_link_holders:
        for link in valid_links(mailing).iterator(chunk_size=CHUNK):
            seen.add(link.email_normalized)
            yield AudienceEntry(
                key=f"l{link.pk}", name=link.name, email=link.email, link=link
            )
    chunk: list[Subscriber] = []
    for subscriber in list_members(mailing).iterator(chunk_size=CHUNK):
        if subscriber.email_normalized in seen:
            continue
        seen.add(subscriber.email_normalized)
        chunk.append(subscriber)
        if len(chunk) >= CHUNK:
            yield from _subscriber_entries(mailing, chunk)
            chunk = []
    yield from _subscriber_entries(mailing, chunk)


def _subscriber_entries(
    mailing: Mailing, subscribers: list[Subscriber]
) -> Iterator[AudienceEntry]:
    if not subscribers:
        return
    links = {
        link.email_normalized: link
        for link in valid_links(mailing).filter(
            email_normalized__in=[s.email_normalized for s in subscribers]
        )
    }
    for subscriber in subscribers:
        yield AudienceEntry(
            key=f"s{subscriber.pk}",
            name=subscriber.name,
            email=subscriber.email,
            link=links.get(subscriber.email_normalized),
            subscriber=subscriber,
        )


def page_of(
    mailing: Mailing, number: object, per_page: int
) -> tuple[list[AudienceEntry], int, bool]:
    """One page of :func:`iter_audience` without loading the rest:
    ``(entries, page number, has_next)``; a bad page number means page 1."""
    try:
        page = max(1, min(int(str(number)), 10**6))
    except ValueError:
        page = 1
    stream = islice(iter_audience(mailing), (page - 1) * per_page, page * per_page + 1)
    entries = list(stream)
    return entries[:per_page], page, len(entries) > per_page


def summarize(mailing: Mailing) -> AudienceSummary:
    """Counts for the "Send" confirmation page."""
    link_holders = 0
    subscribers = 0
    without_link = 0
    for entry in iter_audience(mailing):
        if entry.subscriber is not None and entry.recipient is None:
            subscribers += 1
        elif entry.recipient is None:
            link_holders += 1
        if entry.link is None:
            without_link += 1
    unsubscribed = 0
    if mailing.subscriber_list_id:
        unsubscribed = Subscriber.objects.filter(
            lists__pk=mailing.subscriber_list_id, subscribed=False
        ).count()
    return AudienceSummary(
        link_holders=link_holders,
        subscribers=subscribers,
        unsubscribed=unsubscribed,
        total=link_holders + subscribers,
        without_link=without_link,
    )


def find_entry(mailing: Mailing, key: str) -> AudienceEntry | None:
    """The audience entry for ``key`` ("r<id>", "l<id>" or "s<id>"), or None."""
    key = key or ""
    kind, raw_id = key[:1], key[1:]
    if not raw_id.isascii() or not raw_id.isdigit() or len(raw_id) > 18:
        return None
    pk = int(raw_id)
    if kind == "r":
        row = (
            mailing.recipients.select_related("link", "subscriber")
            .filter(pk=pk)
            .first()
        )
        if row is None:
            return None
        return AudienceEntry(
            key=key,
            name=row.name,
            email=row.email,
            link=row.link,
            subscriber=row.subscriber,
            recipient=row,
        )
    if kind == "l":
        link = valid_links(mailing).filter(pk=pk).first()
        if link is None:
            return None
        return AudienceEntry(key=key, name=link.name, email=link.email, link=link)
    if kind == "s":
        subscriber = list_members(mailing).filter(pk=pk).first()
        if subscriber is None:
            return None
        link = (
            valid_links(mailing)
            .filter(email_normalized=subscriber.email_normalized)
            .first()
        )
        return AudienceEntry(
            key=key,
            name=subscriber.name,
            email=subscriber.email,
            link=link,
            subscriber=subscriber,
        )
    return None


def preview_target(
    entry: AudienceEntry,
) -> MailingRecipient | PersonalLink | Subscriber:
    """What :func:`wagtail_paidwebinar.mailing.render_preview` takes for ``entry``:
    the ledger row, else the subscriber (it finds or announces their link), else the
    link."""
    if entry.recipient is not None:
        return entry.recipient
    if entry.subscriber is not None:
        return entry.subscriber
    return entry.link


def link_url_builder(mailing: Mailing):
    """A function link -> absolute personal URL that resolves the page URL once (the
    export may list 10,000 links)."""
    base = absolute_page_url(mailing.webinar)

    def build(link: PersonalLink | None) -> str:
        return "" if link is None else personal_url(base, link.token)

    return build
