"""Create, start, pause, resume, cancel and retry mailings (the public API)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Literal

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from ..conf import get_setting
from ..models import (
    Mailing,
    MailingKind,
    MailingRecipient,
    MailingStatus,
    PersonalLink,
    RecipientStatus,
    Reminder,
    Signature,
    SubscriberList,
    WebinarPage,
)
from . import audience, delivery, jobs, ledger
from .connection import new_connection
from .message import MailingError, build_message, classify
from .render import build_template, personalise, sample_link

logger = logging.getLogger(__name__)

Audience = Literal["link_holders"] | SubscriberList | PersonalLink
LINK_HOLDERS: Literal["link_holders"] = "link_holders"


def _real_user(user):
    return user if user is not None and getattr(user, "pk", None) else None


def create_mailing(
    webinar: WebinarPage,
    *,
    subject: str,
    body_html: str,
    audience: Audience | Sequence[Audience] = LINK_HOLDERS,
    signature: Signature | None = None,
    user=None,
    language: str = "",
    resend: bool = False,
    kind: str = MailingKind.MESSAGE,
    reminder: Reminder | None = None,
) -> Mailing:
    """Create a draft mailing (nothing is sent until :func:`start_mailing`).

    ``audience`` is ``"link_holders"`` (the webinar's links with an e-mail, neither
    revoked nor expired), a :class:`SubscriberList`, or a list/tuple of both; or
    one :class:`PersonalLink` of the webinar alone (a one-recipient invitation, see
    :func:`.invitations.send_invitation`; ``resend`` marks a re-send, the one
    case a link may get a second one). ``signature`` None means the site's
    "Webinar mailing" signature; ``language`` empty means the webinar's. Raises
    ValueError for an audience of another type (a programming error), and
    IntegrityError for a second invitation of a link without ``resend``.
    ``kind`` and ``reminder`` mark reminders, schedule changes and
    cancellations (.reminders, .schedule); a second mailing of one reminder
    raises IntegrityError too.
    """
    if isinstance(audience, PersonalLink):
        if audience.webinar_id != webinar.pk:
            raise ValueError("The personal link belongs to another webinar.")
        audience_fields = {
            "include_link_holders": False,
            "invitation_link": audience,
            "invitation_resend": resend,
        }
    else:
        audience_fields = _audience_fields(audience)
    return Mailing.objects.create(
        webinar=webinar,
        subject=subject,
        body_html=body_html,
        signature=signature,
        language=language,
        created_by=_real_user(user),
        kind=kind,
        reminder=reminder,
        **audience_fields,
    )


def _audience_fields(audience) -> dict:
    """The Mailing fields of a link-holders and/or subscriber-list audience."""
    items = list(audience) if isinstance(audience, list | tuple) else [audience]
    include_link_holders = False
    subscriber_list = None
    for item in items:
        if item == LINK_HOLDERS:
            include_link_holders = True
        elif isinstance(item, SubscriberList):
            if subscriber_list is not None and subscriber_list != item:
                raise ValueError("A mailing goes to at most one subscriber list.")
            subscriber_list = item
        else:
            raise ValueError(
                f"audience must be {LINK_HOLDERS!r} or a SubscriberList, not {item!r}"
            )
    if not include_link_holders and subscriber_list is None:
        raise ValueError("A mailing needs an audience.")
    return {
        "include_link_holders": include_link_holders,
        "subscriber_list": subscriber_list,
    }


def start_mailing(
    mailing: Mailing, *, user=None, enqueue: bool = True, background: bool = True
) -> int:
    """Resolve the audience into ledger rows and queue sending jobs.

    Idempotent: returns the number of recipients newly queued; a second call (double
    click, two editors) returns 0 and queues nothing, because only the call whose
    conditional UPDATE moves the mailing out of 'draft' does the work. Subscribers
    without a personal link get one. The jobs enter the queue when the transaction
    commits (COMMIT_MODE=on_db_commit); with ``enqueue=False`` the caller sends
    (``paidwebinar_send --sync``).

    Big audiences start in the background: above START_IN_BACKGROUND_ABOVE
    estimated recipients, with a queue served by a worker, the call only moves
    the mailing to 'preparing', queues :func:`prepare_mailing` and returns 0; that
    job resolves the audience and queues the sending jobs (the mailing then goes
    'queued' and shows its progress). ``background=False`` always writes the
    ledger rows in this call (a cancellation that revokes the links next).
    """
    if enqueue and background and _starts_in_background(mailing):
        return _start_in_background(mailing, user=user)
    now = timezone.now()
    with transaction.atomic():
        started = Mailing.objects.filter(
            pk=mailing.pk, status=MailingStatus.DRAFT
        ).update(status=MailingStatus.QUEUED, started_at=now)
        if not started:
            mailing.refresh_from_db()
            return 0
        ids = _resolve_audience(mailing, user=user, enqueue=enqueue)
    mailing.refresh_from_db()
    logger.info("Mailing %s started: %d recipients queued", mailing.pk, len(ids))
    return len(ids)


def _resolve_audience(mailing: Mailing, *, user, enqueue: bool) -> list[int]:
    """Freeze the rendering, write the ledger rows and queue the sending jobs (in
    the caller's transaction, the mailing just moved to 'queued'); returns the
    pending row ids."""
    mailing.refresh_from_db()
    previous = (
        Mailing.objects.filter(webinar_id=mailing.webinar_id, started_at__isnull=False)
        .exclude(pk=mailing.pk)
        .aggregate(m=Max("ics_sequence"))["m"]
    )
    mailing.ics_sequence = 0 if previous is None else previous + 1
    mailing.frozen_render = {}
    mailing.frozen_render = build_template(mailing).to_dict()
    mailing.save(update_fields=["ics_sequence", "frozen_render"])
    # Link holders first: for an address that is both, their row is kept.
    if mailing.include_link_holders:
        ledger.insert_link_holders(mailing)
    if mailing.invitation_link_id is not None:
        ledger.insert_rows(audience.invitation_rows(mailing))
    ledger.insert_rows(
        audience.member_rows(mailing, user=_real_user(user) or mailing.created_by)
    )
    ids = ledger.pending_ids(mailing.pk)
    if enqueue:
        jobs.enqueue_ids(mailing.pk, ids)
    if not ids:
        ledger.finish_if_complete(mailing.pk)
    return ids


def _starts_in_background(mailing: Mailing) -> bool:
    threshold = get_setting("START_IN_BACKGROUND_ABOVE")
    if threshold is None or mailing.status != MailingStatus.DRAFT:
        return False
    if not jobs.get_queue().is_async:
        return False  # the embedded queue would run the job right here anyway
    return audience.estimated_count(mailing) > int(threshold)


def _start_in_background(mailing: Mailing, *, user) -> int:
    with transaction.atomic():
        started = Mailing.objects.filter(
            pk=mailing.pk, status=MailingStatus.DRAFT
        ).update(status=MailingStatus.PREPARING, started_at=timezone.now())
        if started:
            real_user = _real_user(user)
            jobs.enqueue_prepare(mailing.pk, real_user.pk if real_user else None)
    mailing.refresh_from_db()
    if started:
        logger.info("Mailing %s started: preparing in the background", mailing.pk)
    return 0


def prepare_mailing(mailing_id: int, *, user_id: int | None = None) -> int:
    """The background half of :func:`start_mailing` (the job it queues for a big
    audience): 'preparing' → 'queued', the audience resolved into ledger rows and
    the sending jobs queued, in one transaction. Returns the number of recipients
    queued; 0 when the mailing is no longer preparing (a second run of the job,
    or cancelled meanwhile)."""
    from django.contrib.auth import get_user_model

    with transaction.atomic():
        started = Mailing.objects.filter(
            pk=mailing_id, status=MailingStatus.PREPARING
        ).update(status=MailingStatus.QUEUED)
        if not started:
            return 0
        mailing = Mailing.objects.select_related("webinar").get(pk=mailing_id)
        user = (
            get_user_model().objects.filter(pk=user_id).first()
            if user_id is not None
            else None
        )
        ids = _resolve_audience(mailing, user=user, enqueue=True)
    logger.info("Mailing %s prepared: %d recipients queued", mailing_id, len(ids))
    return len(ids)


def resume_mailing(mailing: Mailing, *, enqueue: bool = True) -> int:
    """Queue again the pending rows of a paused or interrupted mailing, plus rows left
    'sending' longer than STALE_SENDING_SECONDS (a killed worker). Returns the number
    of rows queued. Jobs are queued directly, not through the scheduler, so a crashed
    worker's scheduler lock cannot delay them. Draft, cancelled and done mailings
    return 0. A mailing still 'preparing' (its job lost with a crashed worker)
    gets its preparation queued again and returns 0: no recipient is queued
    because none is known yet, so callers say "still being prepared" (its status
    stays PREPARING) rather than "0 recipients queued"."""
    if mailing.status == MailingStatus.PREPARING and enqueue:
        jobs.enqueue_prepare(mailing.pk, None)
        return 0
    with transaction.atomic():
        resumed = Mailing.objects.filter(
            pk=mailing.pk,
            status__in=[
                MailingStatus.PAUSED,
                MailingStatus.QUEUED,
                MailingStatus.SENDING,
            ],
        ).update(status=MailingStatus.SENDING, finished_at=None)
        if not resumed:
            mailing.refresh_from_db()
            return 0
        ledger.release_stale(mailing.pk)
        ids = ledger.pending_ids(mailing.pk)
        if enqueue:
            jobs.enqueue_ids(mailing.pk, ids)
        if not ids:
            ledger.finish_if_complete(mailing.pk)
    mailing.refresh_from_db()
    return len(ids)


def send_now(
    mailing: Mailing,
    *,
    on_batch: Callable[[], None] | None = None,
    on_retry: Callable[[int, float, str], None] | None = None,
) -> None:
    """Send the mailing's pending rows in this process (``paidwebinar_send --sync``),
    in batches of BATCH_SIZE, with the retry policy the jobs follow
    (:func:`.jobs.retry_delay`): rows a transient failure put back to pending are
    tried again after each RETRY_DELAYS entry in turn, then fail. Stops when the
    mailing is paused or cancelled. ``on_batch()`` is called after each batch and
    ``on_retry(rows, delay, error)`` before each wait, to report progress."""
    size = max(1, int(get_setting("BATCH_SIZE")))
    error = ""
    attempt = 0
    while ids := ledger.pending_ids(mailing.pk):
        if attempt:
            delay = jobs.retry_delay(attempt - 1)
            if delay is None:
                jobs.give_up(mailing.pk, ids, attempt - 1, error)
                break
            if delay:
                if on_retry is not None:
                    on_retry(len(ids), delay, error)
                time.sleep(delay)
        for start in range(0, len(ids), size):
            counts, _retry = delivery.send_rows(mailing.pk, ids[start : start + size])
            error = counts.get("error", error)
            # Done after the last batch, or paused or cancelled: stop here.
            ledger.finish_if_complete(mailing.pk)
            if ledger.mailing_status(mailing.pk) != MailingStatus.SENDING:
                return
            if on_batch is not None:
                on_batch()
        attempt += 1
    ledger.finish_if_complete(mailing.pk)


def pause_mailing(mailing: Mailing) -> bool:
    """Stop sending after the message in flight; :func:`resume_mailing` continues.
    Returns False when the mailing was not queued or sending."""
    changed = Mailing.objects.filter(
        pk=mailing.pk, status__in=[MailingStatus.QUEUED, MailingStatus.SENDING]
    ).update(status=MailingStatus.PAUSED)
    mailing.refresh_from_db()
    return bool(changed)


def cancel_mailing(mailing: Mailing) -> bool:
    """Stop for good after the message in flight; rows not yet sent stay pending.
    Returns False when the mailing had already finished or was cancelled."""
    changed = Mailing.objects.filter(
        pk=mailing.pk,
        status__in=[
            MailingStatus.DRAFT,
            MailingStatus.PREPARING,
            MailingStatus.QUEUED,
            MailingStatus.SENDING,
            MailingStatus.PAUSED,
        ],
    ).update(status=MailingStatus.CANCELLED, finished_at=timezone.now())
    mailing.refresh_from_db()
    return bool(changed)


def retry_failed(mailing: Mailing) -> int:
    """Put failed rows back to pending and queue them; returns how many. A done
    mailing goes back to sending; a paused one keeps them until it is resumed;
    draft and cancelled mailings return 0."""
    with transaction.atomic():
        status = (
            Mailing.objects.select_for_update()
            .filter(pk=mailing.pk)
            .values_list("status", flat=True)
            .first()
        )
        if status in (None, MailingStatus.DRAFT, MailingStatus.CANCELLED):
            return 0
        failed = list(
            MailingRecipient.objects.filter(
                mailing_id=mailing.pk, status=RecipientStatus.FAILED
            ).values_list("pk", flat=True)
        )
        if not failed:
            return 0
        MailingRecipient.objects.filter(
            pk__in=failed, status=RecipientStatus.FAILED
        ).update(status=RecipientStatus.PENDING)
        if status == MailingStatus.DONE:
            Mailing.objects.filter(pk=mailing.pk).update(
                status=MailingStatus.SENDING, finished_at=None
            )
            status = MailingStatus.SENDING
        if status != MailingStatus.PAUSED:
            jobs.enqueue_ids(mailing.pk, failed)
    mailing.refresh_from_db()
    return len(failed)


def send_test(
    mailing: Mailing,
    to_email: str,
    *,
    user=None,
    link: PersonalLink | None = None,
) -> str:
    """Send the mailing to ``to_email`` now (no queue, no ledger row), rendered as a
    sample participant would get it: with ``link``, else a :func:`sample_link` the
    gate refuses. Returns the Message-ID; raises :class:`MailingError` (from the
    cause) when the message cannot be built or sent."""
    template = build_template(mailing)
    webinar = mailing.webinar
    link = link or sample_link(webinar, user)
    rendered = personalise(template, name=link.name, link=link.get_url())
    rendered = type(rendered)(
        subject=_("[Test] %(subject)s") % {"subject": rendered.subject},
        html=rendered.html,
        text=rendered.text,
        ics=rendered.ics,
    )
    try:
        message = build_message(
            template,
            rendered,
            name="",
            email=to_email,
        )
        new_connection().send_messages([message])
    except Exception as exc:
        raise MailingError(classify(exc).message) from exc
    return message.extra_headers["Message-ID"]


__all__ = [
    "prepare_mailing",
    "sample_link",
    "cancel_mailing",
    "create_mailing",
    "pause_mailing",
    "resume_mailing",
    "retry_failed",
    "send_now",
    "send_test",
    "start_mailing",
]
