"""The ledger: one row per mailing and address, pending → sending → sent | failed.

Every transition is a conditional UPDATE, so two workers (or a worker and a resume)
can never both own a row: whoever's UPDATE matched the old status owns it.

Every statement here, ORM or hand-written (listed in docs/sql.md), runs on one
database: :func:`db_alias`, where the router writes ledger rows. Reads go there
too, so a worker never decides from a replica's stale copy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Exists, F, OuterRef, Q, Value
from django.utils import timezone
from django.utils.translation import gettext as _

from ..conf import get_setting
from ..models import Mailing, MailingRecipient, MailingStatus, RecipientStatus
from .audience import valid_links

INSERT_BATCH = 1000


def column(model: type[models.Model], name: str) -> str:
    """The database column of ``model.name`` (hand-written SQL takes its names from
    the models' metadata, never from literals)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise TypeError(f"{model.__name__}.{name} has no column")
    return field.column


def db_alias() -> str:
    """The database alias of every ledger statement: where ledger rows are written."""
    return router.db_for_write(MailingRecipient)


def db_connection() -> BaseDatabaseWrapper:
    """This thread's connection to :func:`db_alias`."""
    return connections[db_alias()]


def _rows():
    return MailingRecipient.objects.using(db_alias())


def _mailings():
    return Mailing.objects.using(db_alias())


def insert_rows(rows: Iterable[MailingRecipient]) -> None:
    """Insert ledger rows, ignoring addresses the mailing already has (the unique
    constraint on mailing + e-mail makes a repeated start harmless)."""
    batch: list[MailingRecipient] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= INSERT_BATCH:
            _rows().bulk_create(batch, ignore_conflicts=True)
            batch = []
    if batch:
        _rows().bulk_create(batch, ignore_conflicts=True)


def insert_link_holders(mailing: Mailing) -> None:
    """The webinar's link holders (:func:`.audience.valid_links`) as ledger
    rows in ONE statement, ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``, instead
    of a model instance and a bulk_create parameter set per row: the editor who
    presses Send waits for this (it halves a large start; figures in docs/sql.md
    and docs/invitations.md). Columns come from the model; a field added
    later gets its default."""
    source = {
        "mailing_id": Value(mailing.pk),
        "email": F("email"),
        "email_normalized": F("email_normalized"),
        "name": F("name"),
        "link_id": F("pk"),
    }
    fields = [f for f in MailingRecipient._meta.concrete_fields if not f.primary_key]
    select = {
        f"pw_{f.attname}": source.get(f.attname)
        or Value(
            f.get_default(),
            output_field=f.target_field if isinstance(f, models.ForeignKey) else f,
        )
        for f in fields
    }
    alias = db_alias()
    rows = (
        valid_links(mailing.webinar_id, timezone.now())
        .using(alias)
        .order_by("pk")
        .annotate(**select)
        .values_list(*select)
    )
    sql, params = rows.query.get_compiler(using=alias).as_sql()
    db = connections[alias]
    qn = db.ops.quote_name
    columns = ", ".join(qn(column(MailingRecipient, f.name)) for f in fields)
    table = qn(MailingRecipient._meta.db_table)
    with db.cursor() as cursor:
        # Only quoted names from the models are interpolated; values are params.
        cursor.execute(
            f"INSERT INTO {table} ({columns}) {sql} ON CONFLICT DO NOTHING",  # noqa: S608
            params,
        )


def pending_ids(mailing_id: int) -> list[int]:
    return list(
        _rows()
        .filter(mailing_id=mailing_id, status=RecipientStatus.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def release_stale(mailing_id: int) -> int:
    """Put back to pending the rows left 'sending' longer than STALE_SENDING_SECONDS
    (their worker was killed). The message may or may not have left: this is the one
    possible duplicate per crash."""
    seconds = float(get_setting("STALE_SENDING_SECONDS"))
    limit = timezone.now() - dt.timedelta(seconds=seconds)
    return (
        _rows()
        .filter(mailing_id=mailing_id, status=RecipientStatus.SENDING)
        .filter(Q(claimed_at__lte=limit) | Q(claimed_at__isnull=True))
        .update(status=RecipientStatus.PENDING)
    )


def claim(mailing_id: int, recipient_id: int) -> bool:
    """pending → sending for one row, only while the mailing is sending."""
    active = _mailings().filter(pk=mailing_id, status=MailingStatus.SENDING)
    return bool(
        _rows()
        .filter(pk=recipient_id, status=RecipientStatus.PENDING)
        .filter(Exists(active))
        .update(
            status=RecipientStatus.SENDING,
            claimed_at=timezone.now(),
            attempts=F("attempts") + 1,
        )
    )


def mark_sent(recipient_id: int, message_id: str) -> None:
    _rows().filter(pk=recipient_id).update(
        status=RecipientStatus.SENT,
        sent_at=timezone.now(),
        message_id=message_id[:255],
        last_error="",
    )


def mark_sent_and_claim(
    mailing_id: int, sent_id: int, message_id: str, next_id: int | None
) -> bool:
    """Mark ``sent_id`` sent and claim ``next_id`` (pending → sending, only while
    the mailing is sending) in ONE statement; True when ``next_id`` was claimed.

    One round trip (and one commit) per message instead of two: the send loop's
    only per-message database cost. The row is still marked sent right after its
    send, and a crash still leaves at most the claimed next row 'sending'.
    """
    db = db_connection()
    if next_id is None or db.vendor not in ("postgresql", "sqlite"):
        mark_sent(sent_id, message_id)
        return claim(mailing_id, next_id) if next_id is not None else False
    qn = db.ops.quote_name
    col = {
        name: qn(column(MailingRecipient, name))
        for name in (
            "status",
            "sent_at",
            "message_id",
            "last_error",
            "claimed_at",
            "attempts",
        )
    }
    table = qn(MailingRecipient._meta.db_table)
    mailing_table = qn(Mailing._meta.db_table)
    mailing_pk = qn(column(Mailing, "id"))
    mailing_status = qn(column(Mailing, "status"))
    now = db.ops.adapt_datetimefield_value(timezone.now())
    pk, status = qn(column(MailingRecipient, "id")), col["status"]
    # Only quoted table and column names from the models are interpolated; values
    # are params.
    sql = (
        f"UPDATE {table} SET "  # noqa: S608
        f"{status} = CASE WHEN {pk} = %s THEN %s ELSE %s END, "
        f"{col['sent_at']} = CASE WHEN {pk} = %s THEN %s ELSE {col['sent_at']} END, "
        f"{col['message_id']} = "
        f"CASE WHEN {pk} = %s THEN %s ELSE {col['message_id']} END, "
        f"{col['last_error']} = "
        f"CASE WHEN {pk} = %s THEN '' ELSE {col['last_error']} END, "
        f"{col['claimed_at']} = "
        f"CASE WHEN {pk} = %s THEN {col['claimed_at']} ELSE %s END, "
        f"{col['attempts']} = "
        f"CASE WHEN {pk} = %s THEN {col['attempts']} ELSE {col['attempts']} + 1 END "
        f"WHERE {pk} = %s OR ({pk} = %s AND {status} = %s AND EXISTS ("
        f"SELECT 1 FROM {mailing_table} "
        f"WHERE {mailing_pk} = %s AND {mailing_status} = %s)) "
        f"RETURNING {pk}"
    )
    params: list[Any] = [
        sent_id,
        RecipientStatus.SENT.value,
        RecipientStatus.SENDING.value,
        sent_id,
        now,
        sent_id,
        message_id[:255],
        sent_id,
        sent_id,
        now,
        sent_id,
        sent_id,
        next_id,
        RecipientStatus.PENDING.value,
        mailing_id,
        MailingStatus.SENDING.value,
    ]
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        returned = {row[0] for row in cursor.fetchall()}
    return next_id in returned


def mark_failed(recipient_id: int, error: str) -> None:
    _rows().filter(pk=recipient_id).exclude(status=RecipientStatus.SENT).update(
        status=RecipientStatus.FAILED, last_error=error[:2000]
    )


def mark_retry(recipient_id: int, error: str) -> None:
    """Back to pending after a transient error (a later job sends it)."""
    _rows().filter(pk=recipient_id, status=RecipientStatus.SENDING).update(
        status=RecipientStatus.PENDING, last_error=error[:2000]
    )


def gave_up_message(attempts: int, error: str) -> str:
    return _("Gave up after %(attempts)d attempts: %(error)s") % {
        "attempts": attempts,
        "error": error,
    }


def fail_pending(recipient_ids: list[int], error: str) -> int:
    """Give up on pending rows (retries exhausted)."""
    return (
        _rows()
        .filter(pk__in=recipient_ids, status=RecipientStatus.PENDING)
        .update(status=RecipientStatus.FAILED, last_error=error[:2000])
    )


def finish_if_complete(mailing_id: int) -> bool:
    """sending/queued → done once no row is pending or sending (one UPDATE)."""
    open_rows = _rows().filter(
        mailing_id=OuterRef("pk"),
        status__in=[RecipientStatus.PENDING, RecipientStatus.SENDING],
    )
    return bool(
        _mailings()
        .filter(pk=mailing_id, status__in=[MailingStatus.QUEUED, MailingStatus.SENDING])
        .filter(~Exists(open_rows))
        .update(status=MailingStatus.DONE, finished_at=timezone.now())
    )


def mailing_status(mailing_id: int) -> str | None:
    return _mailings().filter(pk=mailing_id).values_list("status", flat=True).first()
