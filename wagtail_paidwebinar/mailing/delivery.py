"""The send loop: one batch of ledger rows over SMTP_CONNECTIONS e-mail connections.

The batch's rows are handed out one at a time (:class:`_RowSource`) to up to
SMTP_CONNECTIONS connections, each in a thread of its own (socket waits release
the GIL). On each connection, for each row: claim it (pending → sending, a
conditional UPDATE that also checks the mailing is still sending, so pause and
cancel take effect between two messages on every connection), send, and mark it
sent at once. A worker killed mid-batch therefore leaves at most one row
'sending' per connection.

Over Django's SMTP backend each connection pipelines its transactions from one
message to the next (:mod:`.wire`): one round trip a message with a server that
offers PIPELINING; a row is claimed after the server accepted its DATA and before
its content goes out, in the statement that records the previous message. Any
other backend (django-anymail...) gets the same messages through
``send_messages``. With one connection a builder thread renders the next message
while the current one is on the wire (with several, the other connections use
those waits). Failures are sorted by :func:`.message.classify`: a permanent one
fails that row only, a transient one puts the row back to pending (the caller
decides when to try again), a connection failure stops that connection (the others
go on; what no connection could send is retried).
"""

from __future__ import annotations

import logging
import smtplib
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
from .message import CONNECTION, PERMANENT, Layout, classify, compose
from .render import (
    MailingTemplate,
    frozen_template,
    mailing_settings_for,
    personalise,
)
from .unsubscribe import token_for, url_for_token
from .wire import Envelope, Transactions

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

    # For Django's SMTP backend the loop runs the SMTP transactions itself
    # (wire.py: pipelined from one message to the next) with the message's bytes;
    # any other backend gets a Django message. Both come from the one builder
    # (message.compose).
    smtp = isinstance(connection, SMTPBackend)
    # The ledger statements run in this thread, each awaited before the loop goes
    # on; synchronous_commit relaxed only when the site opted in.
    restore_commit = _relax_commit()
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
            layout,
            smtp,
        )

    line = _Line(connection) if isinstance(connection, SMTPBackend) else None
    try:
        if line is not None:
            _send_rows_smtp(mailing_id, batch, prepare, line, result)
        else:
            _send_rows(mailing_id, batch, prepare, connection, result)
    finally:
        builder.shutdown(wait=True, cancel_futures=True)
        restore_commit()
        if line is not None:
            line.end_transaction()
        try:
            connection.close()
        except Exception:  # closing a dead connection must not hide the result
            logger.debug("Error closing the SMTP connection", exc_info=True)
    return result


class _Line:
    """Django's SMTP backend connection and the transactions on it
    (:class:`.wire.Transactions`), reopened after a transaction is abandoned."""

    def __init__(self, connection: SMTPBackend) -> None:
        self.connection = connection
        self.transactions: Transactions | None = None

    def get(self) -> Transactions:
        if self.transactions is None:
            if self.connection.connection is None:
                self.connection.open()
            smtp = self.connection.connection
            if smtp is None:  # open() failed silently (fail_silently)
                raise smtplib.SMTPServerDisconnected("Could not connect")
            self.transactions = Transactions(smtp)
        return self.transactions

    def abandon(self) -> None:
        """Drop the open transaction (closing the connection); the next
        :meth:`get` connects again."""
        if self.transactions is not None:
            self.transactions.abandon()
        self.transactions = None
        try:
            self.connection.close()
        except Exception:  # already closed by the abandon
            logger.debug("Error closing the SMTP connection", exc_info=True)

    def end_transaction(self) -> None:
        """Before the connection closes: a transaction left waiting for its
        content (an unexpected error in the loop) is abandoned, never QUIT."""
        if self.transactions is not None and self.transactions.in_data:
            self.abandon()


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


def _send_rows_smtp(
    mailing_id: int,
    batch: _Batch,
    prepare: Callable[[tuple], Future],
    line: _Line,
    result: _Result,
) -> None:
    """One SMTP connection's send loop; fills ``result`` (counts, rows to retry
    later, the last error).

    Each exchange (:meth:`.wire.Transactions.exchange`) sends the content of the
    message whose DATA the server accepted and opens the next message's
    transaction; with PIPELINING that is one round trip a message. Then ONE ledger
    statement marks the delivered row sent and claims the next (pending →
    sending, only while the mailing is sending): its content goes out only once
    claimed, and a row not claimed is abandoned before its content. So pause and
    cancel act between two messages, and on each connection at most one message
    is out but not yet recorded: the one a crash may send twice."""
    counts = result.counts
    current: Prepared | None = None  # claimed, DATA accepted: its content is next
    row = batch.source.take()
    upcoming = prepare(row) if row is not None else None
    while current is not None or row is not None:
        # The next row to open; rows with nothing to send are claimed and
        # recorded on the way (a refusal, a message that could not be built).
        following: Prepared | None = None
        while row is not None and following is None and upcoming is not None:
            prepared = upcoming.result()
            row = batch.source.take()
            upcoming = prepare(row) if row is not None else None
            if prepared.data is not None:
                following = prepared
            elif _claim(batch, mailing_id, prepared.pk, counts):
                _record_unsendable(mailing_id, prepared, result)
        try:
            transactions = line.get()
        except Exception as exc:
            _connection_lost(mailing_id, current, following, row, result, exc)
            return
        delivered, opened = transactions.exchange(
            current.data if current is not None else None,
            following.envelope if following is not None else None,
        )
        claimed = False
        if current is not None:
            if delivered is None:
                counts["sent"] += 1
                claimed = ledger.mark_sent_and_claim(
                    mailing_id,
                    current.pk,
                    current.message_id,
                    following.pk if following is not None else None,
                )
                if following is not None and not claimed:
                    _not_claimed(batch, mailing_id, counts)
            else:
                kind = _record_failure(mailing_id, current.pk, delivered, result)
                if kind == CONNECTION:
                    _connection_lost(
                        mailing_id, None, following, row, result, delivered
                    )
                    return
                if following is not None:
                    claimed = _claim(batch, mailing_id, following.pk, counts)
        elif following is not None:
            claimed = _claim(batch, mailing_id, following.pk, counts)
        current = None
        if following is None:
            continue
        if not claimed:
            if opened is True:
                line.abandon()  # its DATA was accepted: close before content
            if batch.source.stopped:
                break
            continue
        if opened is True:
            current = following
        else:
            assert isinstance(opened, BaseException)  # noqa: S101 - it had an envelope
            kind = _record_failure(mailing_id, following.pk, opened, result)
            if kind == CONNECTION:
                _connection_lost(mailing_id, None, None, row, result, opened)
                return
        if batch.delay:
            time.sleep(batch.delay)


def _claim(batch: _Batch, mailing_id: int, pk: int, counts) -> bool:
    """Claim one row; a row not claimed is skipped, and when the mailing is no
    longer sending (paused, cancelled) the batch hands out no more rows."""
    if ledger.claim(mailing_id, pk):
        return True
    _not_claimed(batch, mailing_id, counts)
    return False


def _not_claimed(batch: _Batch, mailing_id: int, counts) -> None:
    counts["skipped"] += 1
    if ledger.mailing_status(mailing_id) != MailingStatus.SENDING:
        batch.source.stop()


def _record_unsendable(mailing_id: int, prepared: Prepared, result: _Result) -> str:
    """A claimed row whose message must not or could not be built."""
    if prepared.refusal:
        ledger.mark_failed(prepared.pk, prepared.refusal)
        result.counts["failed"] += 1
        return PERMANENT
    assert prepared.error is not None  # noqa: S101 - no data: refusal or error
    return _record_failure(mailing_id, prepared.pk, prepared.error, result)


def _record_failure(
    mailing_id: int, pk: int, exc: BaseException, result: _Result
) -> str:
    """Record why a claimed row was not delivered: failed for good, or back to
    pending (a transient failure, or the connection's: sent again later)."""
    failure = classify(exc)
    if failure.kind == PERMANENT:
        ledger.mark_failed(pk, failure.message)
        result.counts["failed"] += 1
    else:
        ledger.mark_retry(pk, failure.message)
        result.retry.append(pk)
        result.error = failure.message
    logger.info("Mailing %s, row %s: %s", mailing_id, pk, failure.message)
    return failure.kind


def _connection_lost(
    mailing_id: int,
    current: Prepared | None,
    following: Prepared | None,
    row: tuple | None,
    result: _Result,
    exc: BaseException,
) -> None:
    """This connection is gone: the row it was sending goes back to pending, and
    it with the rows it had taken but not claimed wait for the server (the other
    connections go on)."""
    result.error = classify(exc).message
    if current is not None:
        ledger.mark_retry(current.pk, result.error)
        result.retry.append(current.pk)
    if following is not None:
        result.retry.append(following.pk)
    if row is not None:
        result.retry.append(row[0])
    logger.info("Mailing %s: connection lost: %s", mailing_id, result.error)


def _send_rows(
    mailing_id: int,
    batch: _Batch,
    prepare: Callable[[tuple], Future],
    connection,
    result: _Result,
) -> None:
    """The send loop of any other e-mail backend (``send_messages``, one message
    at a time); fills ``result``. Each row is claimed before its message is sent
    and marked sent right after, in one statement that also claims the next row."""
    counts = result.counts
    delay = batch.delay
    row = batch.source.take()
    if row is None:
        return
    claimed = ledger.claim(mailing_id, row[0])
    upcoming = prepare(row)
    while row is not None:
        prepared = upcoming.result()
        next_row = batch.source.take()
        next_id = next_row[0] if next_row is not None else None
        if next_row is not None:
            upcoming = prepare(next_row)
        if not claimed:
            # Taken by someone else, or the mailing was paused or cancelled; in
            # the latter case stop here (every connection does at its next
            # claim; the rows not handed out yet stay pending).
            _not_claimed(batch, mailing_id, counts)
            if next_row is None or batch.source.stopped:
                break
            claimed = ledger.claim(mailing_id, next_row[0])
            row = next_row
            continue
        kind, message_id = _deliver(mailing_id, prepared, connection, result)
        if kind == CONNECTION:
            # This connection is gone: its row (put back by _deliver) and the one
            # it took next wait for the server (the other connections go on).
            if next_id is not None:
                result.retry.append(next_id)
            break
        row = next_row
        if kind == "sent":
            counts["sent"] += 1
            if not delay:
                # The hot path: one statement marks this row sent and claims the
                # next one.
                claimed = ledger.mark_sent_and_claim(
                    mailing_id, prepared.pk, message_id, next_id
                )
                continue
            ledger.mark_sent(prepared.pk, message_id)
        if next_id is None:
            break
        if delay:
            time.sleep(delay)
        claimed = ledger.claim(mailing_id, next_id)


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
    envelope: Envelope | None = None  # SMTP: MAIL FROM, RCPT TO, size
    message_id: str = ""


def _prepare(
    mailing: Mailing,
    template: MailingTemplate,
    row: tuple,
    page_url: str,
    base: str,
    layout: Layout | None,
    smtp: bool,
) -> Prepared:
    """Build one row's message (pure: no database; runs in the builder thread)
    with :func:`.message.compose`: for SMTP straight to the bytes sent, otherwise
    as a Django message for the connection's ``send_messages``."""
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
    out_of_date = _out_of_date(mailing)
    if out_of_date:
        return Prepared(pk, refusal=out_of_date)
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
            data = invitation.as_bytes()
            return Prepared(
                pk,
                data=data,
                envelope=Envelope(
                    quoteaddr(invitation.envelope_from),
                    [quoteaddr(r) for r in invitation.recipients],
                    len(data),
                ),
                message_id=invitation.message_id,
            )
        message = invitation.as_django()  # sent by connection.send_messages()
    except Exception as exc:
        return Prepared(pk, error=exc)
    return Prepared(pk, message=message, message_id=invitation.message_id)


def _out_of_date(mailing: Mailing) -> str:
    """Why the webinar's state forbids this mailing now ("" when it does not): a
    cancelled webinar's room is closed, so only its cancellation goes out (no
    message with a link and password); a reopened webinar's cancellation does not."""
    cancelled = mailing.webinar.cancelled_at is not None
    if cancelled and not mailing.is_cancellation:
        return str(_("The webinar was cancelled; not sent."))
    if mailing.is_cancellation and not cancelled:
        return str(_("The webinar was reopened after this cancellation; not sent."))
    return ""


def _deliver(
    mailing_id: int, prepared: Prepared, connection, result: _Result
) -> tuple[str, str]:
    """Send one claimed row with the backend's ``send_messages``: ``(kind,
    message_id)``. Failures are recorded here (:func:`_record_failure`); a
    success is recorded by the caller (together with the next claim)."""
    if prepared.message is None:
        return _record_unsendable(mailing_id, prepared, result), ""
    try:
        connection.send_messages([prepared.message])
    except Exception as exc:
        return _record_failure(mailing_id, prepared.pk, exc, result), ""
    return "sent", prepared.message_id
