"""The SMTP transaction of one message, split in two halves.

``smtplib.SMTP.sendmail`` sends MAIL FROM, RCPT TO and DATA and waits for each
reply in turn. The send loop needs the first half (:func:`open_transaction`) to
happen while the previous message is being recorded in the ledger, and the second
(:func:`finish_transaction`: DATA, the moment a message is delivered) only once the
row is claimed; with a server that offers PIPELINING (RFC 2920) the first half is
one round trip. The bytes sent are :meth:`.message.Invitation.as_bytes`, built by
the one message builder (:func:`.message.compose`).
"""

from __future__ import annotations

import smtplib


def open_transaction(smtp, from_addr: str, to_addrs: list[str], size: int) -> None:
    """MAIL FROM and RCPT TO: the first half of ``smtplib.SMTP.sendmail``, for
    addresses already quoted (``smtplib.quoteaddr``, done in the builder thread).

    When the server offers PIPELINING (RFC 2920; Postfix, Exim and the big relays
    do), the commands go out together and their replies are read afterwards: one
    round trip instead of 1 + recipients. Nothing is delivered until
    :func:`finish_transaction` sends the data, so the caller may do other work
    (record the previous message) in between. Raises what sendmail raises (after
    RSET, or closing on 421)."""
    smtp.ehlo_or_helo_if_needed()
    esmtp = smtp.does_esmtp
    size_option = f" size={size}" if esmtp and smtp.has_extn("size") else ""
    mail = f"MAIL FROM:{from_addr}{size_option}"
    rcpts = [f"RCPT TO:{address}" for address in to_addrs]
    if any("\r" in command or "\n" in command for command in (mail, *rcpts)):
        raise ValueError("Line break in an SMTP command")  # as smtplib.putcmd
    if esmtp and smtp.has_extn("pipelining"):
        smtp.send("".join(f"{command}\r\n" for command in (mail, *rcpts)))
        replies = [smtp.getreply() for _command in range(1 + len(rcpts))]
    else:
        smtp.putcmd(mail)
        replies = [smtp.getreply()]
        if replies[0][0] == 250:
            for command in rcpts:
                smtp.putcmd(command)
                replies.append(smtp.getreply())
                if replies[-1][0] == 421:
                    break
    code, resp = replies[0]
    if code != 250:
        _reset(smtp, code)
        raise smtplib.SMTPSenderRefused(code, resp, from_addr)
    refused = {}
    for address, (code, resp) in zip(to_addrs, replies[1:], strict=False):
        if code not in (250, 251):
            refused[address] = (code, resp)
        if code == 421:
            smtp.close()
            raise smtplib.SMTPRecipientsRefused(refused)
    if len(refused) == len(to_addrs):
        _rset(smtp)
        raise smtplib.SMTPRecipientsRefused(refused)


def finish_transaction(smtp, data: bytes) -> None:
    """DATA: the second half of ``smtplib.SMTP.sendmail``; delivered on success."""
    code, resp = smtp.data(data)
    if code != 250:
        _reset(smtp, code)
        raise smtplib.SMTPDataError(code, resp)


def abort_transaction(smtp) -> None:
    """RSET an opened transaction (the row was not ours to send after all)."""
    _rset(smtp)


def _reset(smtp, code: int) -> None:
    if code == 421:
        smtp.close()
    else:
        _rset(smtp)


def _rset(smtp) -> None:
    """RSET, as ``sendmail`` does after a refusal: a connection already gone is
    reported by the next command, not here."""
    try:
        smtp.rset()
    except smtplib.SMTPServerDisconnected:
        pass
