"""Who a mailing goes to: link holders and/or the members of a subscriber list.

Rows are produced lazily in chunks so that 100,000 recipients never sit in memory
at once. Subscribers without a personal link for the webinar get one from
:func:`wagtail_paidwebinar.actions.generate_links`.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import Mailing, MailingRecipient, PersonalLink, RecipientStatus
from ..parsing import normalize_email

CHUNK = 2000


def valid_links(webinar_id: int, now):
    """The webinar's links with an e-mail, neither revoked nor expired: the
    audience "link holders" (ledger.insert_link_holders turns them into rows)."""
    return (
        PersonalLink.objects.live(now)
        .filter(webinar_id=webinar_id)
        .exclude(email_normalized="")
    )


def list_members(mailing: Mailing, *, user=None) -> Iterator[MailingRecipient]:
    """Subscribed members of the mailing's list, each with a personal link (issued
    now when missing). A member whose existing link is revoked or expired, or for
    whom no link can be issued, gets a failed row saying why."""
    from ..actions import generate_links

    if mailing.subscriber_list_id is None:
        return
    webinar = mailing.webinar.specific
    members = (
        mailing.subscriber_list.subscribers.filter(subscribed=True)
        .order_by("pk")
        .values_list("pk", "name", "email", "email_normalized")
    )
    chunk: list[tuple] = []
    for member in members.iterator(chunk_size=CHUNK):
        chunk.append(member)
        if len(chunk) >= CHUNK:
            yield from _chunk_rows(mailing, webinar, chunk, user, generate_links)
            chunk = []
    if chunk:
        yield from _chunk_rows(mailing, webinar, chunk, user, generate_links)


def _links_by_email(webinar_id: int, emails: list[str]) -> dict[str, PersonalLink]:
    found: dict[str, PersonalLink] = {}
    for link in PersonalLink.objects.filter(
        webinar_id=webinar_id, email_normalized__in=emails
    ).only("pk", "name", "email_normalized", "revoked_at", "expires_at"):
        found[link.email_normalized] = link
    return found


def _chunk_rows(mailing, webinar, chunk, user, generate_links):
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
            row.last_error = _("The personal link is revoked or expired.")
        else:
            row.link_id = link.pk
        yield row
