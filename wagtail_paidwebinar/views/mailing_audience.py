"""A mailing's audience shaped for the admin's preview, confirm, export and "copy
message" pages.

Who is in it is decided by :mod:`wagtail_paidwebinar.mailing.audience` (the ledger
once the mailing has started, before that the audience ``start_mailing`` would
resolve); this module only turns its answers into entries with a URL key and
counts for templates. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice

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
    # Why sending will skip this address (empty: it gets the e-mail).
    skipped: str = ""


# Skipped addresses listed by name on the "Send" confirmation (the rest counted).
SKIPPED_SHOWN = 50


@dataclass(frozen=True)
class AudienceSummary:
    link_holders: int
    subscribers: int
    unsubscribed: int
    total: int
    without_link: int
    skipped_count: int = 0
    skipped: list[AudienceEntry] = field(default_factory=list)


def _row_entry(row: MailingRecipient) -> AudienceEntry:
    return AudienceEntry(
        key=f"r{row.pk}",
        name=row.name,
        email=row.email,
        link=row.link,
        subscriber=row.subscriber,
        recipient=row,
    )


def _planned_entry(planned: audience.Planned) -> AudienceEntry:
    link, subscriber, skipped = planned
    if subscriber is None:
        return AudienceEntry(
            key=f"l{link.pk}", name=link.name, email=link.email, link=link
        )
    return AudienceEntry(
        key=f"s{subscriber.pk}",
        name=subscriber.name,
        email=subscriber.email,
        link=link,
        subscriber=subscriber,
        skipped=skipped,
    )


def iter_audience(mailing: Mailing) -> Iterator[AudienceEntry]:
    """Every address the mailing goes (or went) to, in a stable order."""
    if audience.is_resolved(mailing):
        for row in audience.ledger_rows(mailing).iterator(chunk_size=CHUNK):
            yield _row_entry(row)
        return
    for planned in audience.planned_audience(mailing):
        yield _planned_entry(planned)


def iter_invited(mailing: Mailing) -> Iterator[AudienceEntry]:
    """Who to invite "from your own mailbox" (the export and the copy-message page):
    the addresses the engine sends to (or sent to) whose link still admits, then,
    for a link-holder mailing, the live links without an e-mail, with no address
    (the organiser reaches them another way). Revoked and expired links are never
    handed out, as the engine never sends them."""
    now = timezone.now()
    for entry in iter_audience(mailing):
        if entry.skipped:
            continue
        if entry.link is not None and not entry.link.is_live(now):
            continue
        if entry.recipient is not None and entry.link is None:
            continue  # a failed row: no link could be issued
        yield entry
    if mailing.include_link_holders:
        names_only = (
            PersonalLink.objects.live(now)
            .filter(webinar_id=mailing.webinar_id, email_normalized="")
            .order_by("name", "pk")
        )
        for link in names_only.iterator(chunk_size=CHUNK):
            yield AudienceEntry(key=f"l{link.pk}", name=link.name, email="", link=link)


def page_of(
    mailing: Mailing, number: object, per_page: int
) -> tuple[list[AudienceEntry], int, bool]:
    """One page of :func:`iter_invited` without loading the rest:
    ``(entries, page number, has_next)``; a bad page number means page 1."""
    try:
        page = max(1, min(int(str(number)), 10**6))
    except ValueError:
        page = 1
    stream = islice(iter_invited(mailing), (page - 1) * per_page, page * per_page + 1)
    entries = list(stream)
    return entries[:per_page], page, len(entries) > per_page


def summarize(mailing: Mailing) -> AudienceSummary:
    """Counts for the "Send" confirmation page, by the rules ``start_mailing``
    applies: an address it will fail (a revoked or expired link) is listed as
    skipped with the reason, not counted as a recipient."""
    link_holders = 0
    subscribers = 0
    without_link = 0
    skipped: list[AudienceEntry] = []
    skipped_count = 0
    for entry in iter_audience(mailing):
        if entry.skipped:
            skipped_count += 1
            if len(skipped) < SKIPPED_SHOWN:
                skipped.append(entry)
            continue
        if entry.subscriber is not None and entry.recipient is None:
            subscribers += 1
        elif entry.recipient is None:
            link_holders += 1
        if entry.link is None:
            without_link += 1
    return AudienceSummary(
        link_holders=link_holders,
        subscribers=subscribers,
        unsubscribed=audience.unsubscribed_member_count(mailing),
        total=link_holders + subscribers,
        without_link=without_link,
        skipped_count=skipped_count,
        skipped=skipped,
    )


def find_entry(mailing: Mailing, key: str) -> AudienceEntry | None:
    """The audience entry for ``key`` ("r<id>", "l<id>" or "s<id>"), or None."""
    key = key or ""
    kind, raw_id = key[:1], key[1:]
    if not raw_id.isascii() or not raw_id.isdigit() or len(raw_id) > 18:
        return None
    pk = int(raw_id)
    if kind == "r":
        row = audience.ledger_rows(mailing).filter(pk=pk).first()
        return None if row is None else _row_entry(row)
    if kind == "l":
        link = audience.planned_link_holder(mailing, pk)
        return None if link is None else _planned_entry(audience.Planned(link))
    if kind == "s":
        planned = audience.planned_member(mailing, pk)
        return None if planned is None else _planned_entry(planned)
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
