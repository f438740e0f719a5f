"""SMTP transactions pipelined from one message to the next (RFC 2920).

``smtplib.SMTP.sendmail`` waits for the reply to each command: MAIL FROM, RCPT TO,
DATA, then the message. Over a real network those are four round trips a message,
and the round trips, not building the messages, set the pace.

With a server that offers PIPELINING (Postfix, Exim and the big relays do),
:meth:`Transactions.exchange` sends in one write the message whose DATA was
accepted, its end of data, and the next message's MAIL FROM, RCPT TO and DATA (a
group may open with message content and must close with DATA, RFC 2920 §3.1),
then reads all their replies: one round trip a message. Without PIPELINING the same
steps go one command at a time.

Nothing is delivered before the end of data. The send loop (:mod:`.delivery`)
claims a row in the ledger after the server accepted its DATA and before its content
goes out; a row it may not send after all (paused, cancelled, taken by another
worker) is abandoned by closing the connection, which cancels the pending
transaction (RFC 5321 §3.8): a transaction whose DATA was accepted has no other
way out. The bytes sent are :meth:`.message.Invitation.as_bytes`, built by the one
message builder (:func:`.message.compose`).
"""

from __future__ import annotations

import re
import smtplib
from dataclasses import dataclass

_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class Envelope:
    """MAIL FROM and RCPT TO of one message, addresses quoted
    (``smtplib.quoteaddr``, done in the builder thread), and its size in bytes."""

    sender: str
    recipients: list[str]
    size: int


class Transactions:
    """One SMTP connection's message transactions (``smtp``: a connected
    ``smtplib.SMTP``). Only :meth:`exchange` and :meth:`abandon` talk to it."""

    def __init__(self, smtp: smtplib.SMTP) -> None:
        smtp.ehlo_or_helo_if_needed()
        self.smtp = smtp
        self.pipelining = bool(smtp.does_esmtp and smtp.has_extn("pipelining"))
        self._size = bool(smtp.does_esmtp and smtp.has_extn("size"))
        self.in_data = False  # DATA accepted (354): only the content may follow

    def exchange(
        self, data: bytes | None, envelope: Envelope | None
    ) -> tuple[BaseException | None, BaseException | bool]:
        """Send ``data``, the content of the transaction whose DATA was accepted,
        and open a transaction for ``envelope`` (MAIL FROM, RCPT TO, DATA).

        Returns what became of ``data`` (None: delivered, or the exception) and of
        the opening (True: DATA accepted, only the content is left — send it with
        the next exchange or :meth:`abandon` it; False: no envelope; or the
        exception). Nothing raises: each half fails on its own, as ``sendmail``
        would have failed (RSET after a refused opening, the connection closed
        on 421)."""
        commands: list[str] = []
        opened: BaseException | bool = False
        if envelope is not None:
            try:
                commands = self._commands(envelope)
            except ValueError as exc:
                opened = exc
        sent: BaseException | None = None
        if self.pipelining:
            # The content (when there is one) opens the group, DATA closes it.
            chunks = [_terminated(data)] if data is not None else []
            chunks += [command.encode("ascii") + b"\r\n" for command in commands]
            sent = self._send(b"".join(chunks)) if chunks else None
            delivered = None if data is None else sent or self._data_reply()
            if envelope is not None and commands:
                opened = sent or self._open_replies(envelope, commands, None)
            return delivered, opened
        delivered = None
        if data is not None:
            delivered = self._send(_terminated(data)) or self._data_reply()
        if envelope is not None and commands:
            if isinstance(delivered, smtplib.SMTPServerDisconnected | OSError):
                return delivered, delivered
            opened = self._open_replies(envelope, commands, self.smtp.putcmd)
        return delivered, opened

    def abandon(self) -> None:
        """Cancel a transaction whose DATA was accepted: close the connection
        without its end of data (RFC 5321 §3.8), never QUIT (it would be read as
        message content)."""
        self.in_data = False
        self.smtp.close()

    # --- the steps ------------------------------------------------------------

    def _commands(self, envelope: Envelope) -> list[str]:
        size = f" size={envelope.size}" if self._size else ""
        commands = [f"MAIL FROM:{envelope.sender}{size}"]
        commands += [f"RCPT TO:{address}" for address in envelope.recipients]
        commands.append("DATA")
        if any("\r" in command or "\n" in command for command in commands):
            raise ValueError("Line break in an SMTP command")  # as smtplib.putcmd
        return commands

    def _send(self, data: bytes) -> BaseException | None:
        try:
            self.smtp.send(data)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.smtp.close()
            return exc
        return None

    def _data_reply(self) -> BaseException | None:
        self.in_data = False
        try:
            code, resp = self.smtp.getreply()
        except smtplib.SMTPServerDisconnected as exc:
            return exc
        if code == 250:
            return None
        if code == 421:
            self.smtp.close()
        # The transaction ended with the end of data, delivered or not: nothing
        # to reset (and a RSET here would cancel the next one, already opened).
        return smtplib.SMTPDataError(code, resp)

    def _open_replies(
        self, envelope: Envelope, commands: list[str], put
    ) -> BaseException | bool:
        """The replies to MAIL FROM, each RCPT TO and DATA: already sent together
        (``put`` None), or sent here one at a time, each after the previous
        reply, stopping where ``sendmail`` would."""
        replies: list[tuple[int, bytes]] = []
        try:
            for number, command in enumerate(commands):
                if put is not None:
                    accepted = [c for c, _r in replies[1:] if c in (250, 251)]
                    if number == 1 and replies[0][0] != 250:
                        break
                    if command == "DATA" and not accepted:
                        break
                    put(command)
                replies.append(self.smtp.getreply())
                if replies[-1][0] == 421:
                    break
        except smtplib.SMTPServerDisconnected as exc:
            return exc
        if replies[-1][0] == 354 and len(replies) == len(commands):
            mail_ok = replies[0][0] == 250
            if mail_ok and any(c in (250, 251) for c, _r in replies[1:-1]):
                self.in_data = True
                return True
            # DATA accepted after a refused MAIL FROM or no recipient: a server
            # out of step; only closing ends it without delivering.
            self.abandon()
            return smtplib.SMTPServerDisconnected("Server out of step at DATA")
        return self._refused(envelope, replies)

    def _refused(self, envelope: Envelope, replies) -> BaseException:
        """Why the opening failed (as ``sendmail`` raises it), after RSET — or
        with the connection closed on 421."""
        closing = any(code == 421 for code, _resp in replies)
        code, resp = replies[0]
        if code != 250:
            error: BaseException = smtplib.SMTPSenderRefused(
                code, resp, envelope.sender
            )
        else:
            refused = {
                address: reply
                for address, reply in zip(
                    envelope.recipients, replies[1:], strict=False
                )
                if reply[0] not in (250, 251)
            }
            if refused or len(replies) < 2 + len(envelope.recipients):
                error = smtplib.SMTPRecipientsRefused(refused)
            else:
                code, resp = replies[-1]
                error = smtplib.SMTPDataError(code, resp)
        if closing:
            self.smtp.close()
        else:
            try:
                self.smtp.rset()
            except smtplib.SMTPServerDisconnected:
                pass  # reported by the next command
        return error


def _terminated(data: bytes) -> bytes:
    """The message as DATA sends it: leading dots doubled, ended by CRLF.CRLF
    (what ``smtplib.SMTP.data`` does with bytes)."""
    quoted = _LEADING_DOT.sub(b"..", data)
    if not quoted.endswith(b"\r\n"):
        quoted += b"\r\n"
    return quoted + b".\r\n"
