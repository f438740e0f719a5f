"""The send loop: one batch of ledger rows over SMTP_CONNECTIONS e-mail connections.

The batch's rows are handed out one at a time (:class:`_RowSource`) to up to
SMTP_CONNECTIONS connections, each in a thread of its own (socket waits release
the GIL). On each connection, for each row: claim it (pending → sending, a
conditional UPDATE that also checks the mailing is still sending, so pause and
cancel take effect between two messages on every connection), send, and mark it
sent at once. A worker killed mid-batch therefore leaves at most one row
'sending' per connection.

With one connection a builder thread renders the next message while the current
one is on the wire (with several, the other connections use those waits); on
PostgreSQL each connection's ledger statements run in a thread of their own with
its own database connection (:class:`_Ledger`). Failures are sorted by
:func:`.message.classify`: a permanent one fails that row only, a transient one
puts the row back to pending (the caller decides when to try again), a connection
failure stops that connection (the others go on; what no connection could send is
retried).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from smtplib import quoteaddr

from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db import connections
from django.utils.translation import gettext_lazy as _

from .. import tokens
from ..conf import get_setting
from ..models import Mailing, MailingRecipient, MailingStatus, RecipientStatus
from ..models.links import personal_url
from ..utils import absolute_page_url, base_url
from . import ledger
from .connection import new_connection
from .message import CONNECTION, PERMANENT, TRANSIENT, Layout, classify, compose
from .render import (
    MailingTemplate,
    frozen_template,
    mailing_settings_for,
    personalise,
)
from .unsubscribe import token_for, url_for_token
from .wire import abort_transaction, finish_transaction, open_transaction

logger = logging.getLogger(__name__)

_ROW_FIELDS = (
    "pk",
    "email",
    "name",
    "link_id",
    "link__salt",
    "link__public_id",
    "link__revoked_at",
    "subscriber_id",
    "subscriber__subscribed",
    "subscriber__unsubscribe_salt",
)


def send_rows(mailing_id: int, recipient_ids: Sequence[int]) -> tuple[dict, list[int]]:
    """Send to the pending rows among ``recipient_ids`` over up to
    SMTP_CONNECTIONS connections (:func:`connection_count`).

    Returns the counts (sent, failed, retry, skipped, and ``error``: the last
    transient or connection error) and the ids of the rows a transient failure put
    back to pending or no connection could send: scheduling them again is the
    caller's decision (:mod:`.jobs` for a worker, :func:`.api.send_now` inline)."""
    counts: dict = {"sent": 0, "failed": 0, "retry": 0, "skipped": 0}
    started = time.monotonic()
    Mailing.objects.filter(pk=mailing_id, status=MailingStatus.QUEUED).update(
        status=MailingStatus.SENDING
    )
    mailing = (
        Mailing.objects.filter(pk=mailing_id, status=MailingStatus.SENDING)
        .select_related("webinar")
        .first()
    )
    if mailing is None:
        return counts, []
    rows = list(
        MailingRecipient.objects.filter(
            pk__in=list(recipient_ids),
            mailing_id=mailing_id,
            status=RecipientStatus.PENDING,
        )
        .order_by("pk")
        .values_list(*_ROW_FIELDS)
    )
    if not rows:
        return counts, []

    count = connection_count(len(rows))
    template = frozen_template(mailing)
    batch = _Batch(
        mailing=mailing,
        template=template,
        page_url=absolute_page_url(mailing.webinar),
        base=base_url(),
        # The worker's pace (send_rate, SEND_DELAY) shared by its connections.
        delay=_send_delay(mailing) * count,
        source=_RowSource(rows),
        connections=count,
    )
    if count == 1:
        results = [_send_over_one_connection(batch)]
    else:
        with ThreadPoolExecutor(
            max_workers=count, thread_name_prefix="pw-mail-smtp"
        ) as pool:
            futures = [
                pool.submit(_in_own_thread, _send_over_one_connection, batch)
                for _ in range(count)
            ]
            results = [future.result() for future in futures]

    retry: list[int] = []
    last_error = ""
    for result in results:
        for key in ("sent", "failed", "skipped"):
            counts[key] += result.counts[key]
        retry.extend(result.retry)
        last_error = result.error or last_error
    # Rows no connection took: every connection failed (the server is down) — they
    # wait for it like the row each connection was sending — or the mailing was
    # paused or cancelled, and they stay pending for "resume".
    leftover = batch.source.leftover()
    if leftover:
        retry.extend(leftover)
    if retry:
        counts["retry"] = len(retry)
        counts["error"] = last_error
    logger.info(
        "Mailing %s: batch of %d over %d connection(s): sent %d, failed %d, "
        "retry %d, skipped %d in %.2f s",
        mailing_id,
        len(rows),
        count,
        counts["sent"],
        counts["failed"],
        counts["retry"],
        counts["skipped"],
        time.monotonic() - started,
    )
    return counts, retry


def connection_count(rows: int) -> int:
    """How many e-mail connections send a batch of ``rows``: SMTP_CONNECTIONS, at
    most one per row; 1 on SQLite (one writer at a time: the connections would
    queue on its lock) and inside a transaction (the rows are visible to this
    thread's database connection only)."""
    count = max(1, int(get_setting("SMTP_CONNECTIONS")))
    db = ledger.db_connection()
    if db.vendor == "sqlite" or db.in_atomic_block:
        return 1
    return max(1, min(count, rows))


def _in_own_thread(fn: Callable, *args):
    """Run ``fn`` in a pool thread and close the database connections it opened
    (a thread's connections are its own; left open they would leak)."""
    try:
        return fn(*args)
    finally:
        connections.close_all()


class _RowSource:
    """The batch's rows, handed out one at a time to the connections (the fastest
    connection takes the most). A connection claims through the ledger only the
    row it took, so it has at most one row 'sending' at any moment."""

    def __init__(self, rows: list[tuple]) -> None:
        self._rows = deque(rows)
        self._lock = threading.Lock()
        self.stopped = False

    def take(self) -> tuple | None:
        with self._lock:
            if self.stopped or not self._rows:
                return None
            return self._rows.popleft()

    def stop(self) -> None:
        """The mailing was paused or cancelled: hand out nothing more."""
        with self._lock:
            self.stopped = True

    def leftover(self) -> list[int]:
        """Ids never handed out, unless the mailing stopped (they stay pending)."""
        with self._lock:
            return [] if self.stopped else [row[0] for row in self._rows]


class _Inline:
    """An executor that runs each call at once, in the calling thread."""

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def shutdown(self, **kwargs) -> None:
        pass


@dataclass
class _Batch:
    """What every connection of one batch shares (read-only, but ``source``)."""

    mailing: Mailing
    template: MailingTemplate
    page_url: str
    base: str
    delay: float
    source: _RowSource
    connections: int


@dataclass
class _Result:
    counts: dict = field(default_factory=lambda: {"sent": 0, "failed": 0, "skipped": 0})
    retry: list[int] = field(default_factory=list)
    error: str = ""


def _send_over_one_connection(batch: _Batch) -> _Result:
    """Open one e-mail connection and send the rows it takes from the batch until
    none is left, the mailing stops or the connection fails."""
    result = _Result()
    mailing_id = batch.mailing.pk
    connection = new_connection()
    try:
        connection.open()
    except Exception as exc:
        # Takes no row: the other connections (or the retry) send them.
        result.error = classify(exc).message
        logger.warning("Mailing %s: cannot connect: %s", mailing_id, result.error)
        return result

    # For Django's SMTP backend the loop runs the SMTP transaction itself (wire.py:
    # split in two halves, PIPELINING) with the message's bytes; any other backend
    # gets a Django message. Both come from the one builder (message.compose).
    smtp = isinstance(connection, SMTPBackend)
    book = _Ledger(pipelined=smtp and not batch.delay)
    # One connection: a builder thread renders the next message while this one
    # waits for the SMTP server's replies (socket waits release the GIL). Several:
    # the other connections use those waits; one more thread each would only
    # contend for the GIL.
    builder = (
        _Inline()
        if batch.connections > 1
        else ThreadPoolExecutor(max_workers=1, thread_name_prefix="pw-mail-build")
    )
    # Laid out once per connection (each has its own: a layout is not shared
    # between threads).
    layout = _layout_for(batch.template)

    def prepare(row: tuple) -> Future:
        return builder.submit(
            _prepare,
            batch.mailing,
            batch.template,
            row,
            batch.page_url,
            batch.base,
            connection,
            layout,
            smtp,
        )

    try:
        _send_rows(mailing_id, batch, prepare, connection, book, result)
    finally:
        builder.shutdown(wait=True, cancel_futures=True)
        book.close()
        try:
            connection.close()
        except Exception:  # closing a dead connection must not hide the result
            logger.debug("Error closing the SMTP connection", exc_info=True)
    return result


def _send_delay(mailing: Mailing) -> float:
    """Seconds between two messages: the site's send_rate and SEND_DELAY, whichever
    is slower (per worker)."""
    delay = max(float(get_setting("SEND_DELAY")), 0.0)
    try:
        rate = float(mailing_settings_for(mailing.webinar.specific).send_rate or 0)
    except Exception:  # a broken site setting must not stop the mailing
        logger.exception("Could not read the mailing settings")
        rate = 0.0
    if rate > 0:
        delay = max(delay, 1.0 / rate)
    return delay


def _send_rows(
    mailing_id: int,
    batch: _Batch,
    prepare: Callable[[tuple], Future],
    connection,
    book: _Ledger,
    result: _Result,
) -> None:
    """One connection's send loop; fills ``result`` (counts, rows to retry later,
    the last error).

    Each row is claimed before its message is sent and marked sent right after
    (one statement that also claims the connection's next row). Over SMTP the
    transaction is opened (MAIL FROM, RCPT TO) before the claim's result is
    needed; with a pipelined ledger the statement runs meanwhile, and the DATA —
    delivery — always waits for it: on each connection at most one message is out
    but not yet recorded, the one a crash may send twice."""
    counts, retry = result.counts, result.retry
    delay = batch.delay
    row = batch.source.take()
    if row is None:
        return
    claim = book.submit(ledger.claim, mailing_id, row[0])
    upcoming = prepare(row)
    while row is not None:
        prepared = upcoming.result()
        next_row = batch.source.take()
        next_id = next_row[0] if next_row is not None else None
        if next_row is not None:
            upcoming = prepare(next_row)
        opened: BaseException | bool = False
        smtp = connection.connection if prepared.data is not None else None
        if smtp is not None:
            from_email, recipients = prepared.quoted
            try:
                open_transaction(smtp, from_email, recipients, len(prepared.data))
                opened = True
            except Exception as exc:  # recorded below, once the row is ours
                opened = exc
        claimed = claim.result()
        if not claimed:
            # Taken by someone else, or the mailing was paused or cancelled; in
            # the latter case stop here (every connection does at its next
            # claim; the rows not handed out yet stay pending).
            if opened is True:
                _abort(smtp)
            counts["skipped"] += 1
            if next_row is None:
                break
            if book.call(ledger.mailing_status, mailing_id) != MailingStatus.SENDING:
                batch.source.stop()
                break
            claim = book.submit(ledger.claim, mailing_id, next_id)
            row = next_row
            continue
        kind, message, message_id = _deliver(
            mailing_id, prepared, connection, opened, book
        )
        if kind == CONNECTION:
            # This connection is gone: its row and the one it took next wait
            # for the server (the other connections go on).
            retry.append(row[0])
            if next_id is not None:
                retry.append(next_id)
            result.error = message
            break
        row = next_row
        if kind == "sent":
            counts["sent"] += 1
            if not delay:
                # The hot path: one statement marks this row sent and claims the
                # next one.
                claim = book.submit(
                    ledger.mark_sent_and_claim,
                    mailing_id,
                    prepared.pk,
                    message_id,
                    next_id,
                )
                continue
            book.call(ledger.mark_sent, prepared.pk, message_id)
        elif kind == PERMANENT:
            counts["failed"] += 1
        elif kind == TRANSIENT:
            retry.append(prepared.pk)
            result.error = message
        if next_id is None:
            break
        if delay:
            time.sleep(delay)
        claim = book.submit(ledger.claim, mailing_id, next_id)
    claim.result()  # the last row's "sent" is recorded before the job ends


def _abort(smtp) -> None:
    try:
        abort_transaction(smtp)
    except Exception:  # the next send reports a dead connection
        logger.debug("RSET failed", exc_info=True)


class _Ledger:
    """Where the send loop's ledger statements run.

    Pipelined (PostgreSQL, SMTP backend, no send delay, outside a transaction):
    in a thread with its own database connection, so the statement that records
    one message overlaps the next message's first SMTP round trips. Otherwise in
    the calling thread. Either way the loop waits for each result before it
    needs it, so statements never overlap each other. ``synchronous_commit`` is
    relaxed on whichever connection runs them (see :func:`_relax_commit`)."""

    def __init__(self, *, pipelined: bool) -> None:
        db = ledger.db_connection()
        self.pipelined = (
            pipelined and db.vendor == "postgresql" and not db.in_atomic_block
        )
        self._thread = None
        if self.pipelined:
            self._thread = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="pw-mail-ledger"
            )
            self._restore = self._thread.submit(_relax_commit).result()
        else:
            self._restore = _relax_commit()

    def submit(self, fn, *args) -> Future:
        return (self._thread or _Inline()).submit(fn, *args)

    def call(self, fn, *args):
        """Run ``fn`` where the ledger statements run and return its result (so a
        connection's thread needs no database connection of its own)."""
        return self.submit(fn, *args).result()

    def close(self) -> None:
        if self._thread is None:
            self._restore()
            return

        def finish() -> None:
            self._restore()
            ledger.db_connection().close()  # this thread's own connection

        try:
            self._thread.submit(finish).result()
        finally:
            self._thread.shutdown(wait=True)


def _layout_for(template: MailingTemplate) -> Layout | None:
    try:
        return Layout(template)
    except Exception:  # e.g. a broken sender address: each row fails with it
        logger.exception("Cannot lay out the mailing's messages")
        return None


def _relax_commit():
    """On PostgreSQL, when the site opted in (LEDGER_SYNCHRONOUS_COMMIT = False),
    let this connection's ledger commits return before the WAL is flushed
    (``synchronous_commit = off``). By default nothing changes: the plugin does
    not lower the host database's durability on its own.

    Why a site may opt in: the loop commits once per message, and where a WAL
    flush costs milliseconds it can set a connection's pace. A worker crash loses
    nothing either way; only a crash of the PostgreSQL server itself can lose the
    last moments of relaxed ledger updates, whose messages would then be sent
    again (figures in docs/invitations.md, LEDGER_SYNCHRONOUS_COMMIT).
    Returns the function that restores the setting."""
    db = ledger.db_connection()
    if db.vendor != "postgresql" or get_setting("LEDGER_SYNCHRONOUS_COMMIT"):
        return lambda: None
    with db.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")

    def restore() -> None:
        try:
            with db.cursor() as cursor:
                cursor.execute("SET synchronous_commit TO DEFAULT")
        except Exception:  # the connection is gone; nothing to restore
            logger.debug("Could not restore synchronous_commit", exc_info=True)

    return restore


@dataclass
class Prepared:
    """One row, ready to send: the message (for SMTP its bytes and quoted
    envelope), or why it must not or could not be built."""

    pk: int
    refusal: str = ""
    error: BaseException | None = None
    message: EmailMultiAlternatives | None = None  # non-SMTP backends
    data: bytes | None = None  # SMTP: the message as sent
    quoted: tuple[str, list[str]] | None = None  # SMTP: from, [to], quoted
    message_id: str = ""


def _prepare(
    mailing: Mailing,
    template: MailingTemplate,
    row: tuple,
    page_url: str,
    base: str,
    connection,
    layout: Layout | None,
    smtp: bool,
) -> Prepared:
    """Build one row's message (pure: no database; runs in the builder thread)
    with :func:`.message.compose`: for SMTP straight to the bytes sent, otherwise
    as a Django message for ``connection``."""
    (
        pk,
        email,
        name,
        link_id,
        link_salt,
        link_public_id,
        link_revoked_at,
        subscriber_id,
        subscribed,
        unsubscribe_salt,
    ) = row
    if subscriber_id is not None and not subscribed:
        return Prepared(pk, refusal=str(_("Unsubscribed before sending; not sent.")))
    # A cancellation goes to links the organiser revoked along with it: it says
    # the event is off and carries no link or password (email.html).
    revoked = link_revoked_at is not None and not mailing.is_cancellation
    if link_id is None or revoked:
        return Prepared(
            pk, refusal=str(_("The personal link is missing or revoked; not sent."))
        )
    try:
        # The link's public id, as PersonalLink.token: never its pk.
        token = tokens.make_token(link_public_id, mailing.webinar_id, link_salt)
        link = personal_url(page_url, token)
        unsubscribe = ""
        if subscriber_id is not None and template.list_unsubscribe:
            unsubscribe = url_for_token(
                token_for(subscriber_id, unsubscribe_salt), base
            )
        rendered = personalise(
            template, name=name, link=link, unsubscribe_url=unsubscribe
        )
        invitation = compose(
            template,
            rendered,
            name=name,
            email=email,
            unsubscribe_url=unsubscribe,
            layout=layout,
        )
        if smtp:
            return Prepared(
                pk,
                data=invitation.as_bytes(),
                quoted=(
                    quoteaddr(invitation.envelope_from),
                    [quoteaddr(r) for r in invitation.recipients],
                ),
                message_id=invitation.message_id,
            )
        message = invitation.as_django()  # sent by connection.send_messages()
    except Exception as exc:
        return Prepared(pk, error=exc)
    return Prepared(pk, message=message, message_id=invitation.message_id)


def _deliver(
    mailing_id: int,
    prepared: Prepared,
    connection,
    opened: BaseException | bool,
    book: _Ledger,
) -> tuple[str, str, str]:
    """Send one claimed row: ``(kind, error, message_id)``. ``opened``: for an
    SMTP message, True once its transaction is open (only DATA is left) or the
    exception opening it raised. Failures are recorded here; a success is
    recorded by the caller (together with the next claim)."""
    pk = prepared.pk
    if prepared.refusal:
        book.call(ledger.mark_failed, pk, prepared.refusal)
        return PERMANENT, prepared.refusal, ""
    try:
        if prepared.error is not None:
            raise prepared.error
        if isinstance(opened, BaseException):
            raise opened
        if prepared.data is not None:
            finish_transaction(connection.connection, prepared.data)
        else:
            connection.send_messages([prepared.message])
    except Exception as exc:
        failure = classify(exc)
        if failure.kind == PERMANENT:
            book.call(ledger.mark_failed, pk, failure.message)
        else:
            book.call(ledger.mark_retry, pk, failure.message)
        logger.info("Mailing %s, row %s: %s", mailing_id, pk, failure.message)
        return failure.kind, failure.message, ""
    return "sent", "", prepared.message_id
