"""Move to this device: a participant moves their personal link to a new browser.

A browser refused because the link is bound elsewhere (the gate's "in use" page)
asks for a code (:func:`request_move`); a job e-mails it to the link's address
(:func:`send_move_code`); entered in that same browser (:func:`confirm_move`) it
binds the browser and removes the old one's device row, so the old browser is
out at its next request (the gate re-checks the binding on every request).

Why a plain transactional e-mail sent by a job rather than a one-recipient
mailing (as invitations are): a mailing freezes its rendered body in the
database and keeps it for the progress page, and this body carries a secret. The
code is derived from the request's random salt with an HMAC keyed by
SECRET_KEY (tokens.make_move_code), like a link's token: neither the database
nor the job's arguments in Redis hold it, and the job needs only the request id.

The rules, each enforced under the link's row lock so that of two moves racing
for one link exactly one wins (the winner voids every other pending code):

* a code lives MOVE_CODE_AGE seconds, works once, in the browser that asked
  (its claim key), and dies after MOVE_CODE_ATTEMPTS wrong entries;
* at most ``webinar.max_device_moves`` moves per link (0: none), at most
  MOVE_CODES_PER_LINK codes per link per LOST_LINK_WINDOW (each is an e-mail);
* a link without an e-mail address cannot move: the organiser resets it.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import uuid
from dataclasses import dataclass

from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from wagtail.log_actions import log

from . import claims, conf, throttle, tokens
from .mailing.jobs import get_queue
from .mailing.render import (
    local_time,
    mailing_settings_for,
    sender,
    webinar_language,
)
from .mailing.siteid import ForeignJobError, accepted_identities, site_identity
from .models import (
    AccessEvent,
    AccessEventKind,
    DeviceMove,
    LinkDevice,
    PersonalLink,
    WebinarPage,
)
from .models.attendance import truncate_ip

logger = logging.getLogger(__name__)

# Stored in audit log entries: never renamed after a release.
ACTION_MOVE_CODE = "wagtail_paidwebinar.link.move_code"
ACTION_MOVE = "wagtail_paidwebinar.link.move_device"
SCOPE_CODES = "move_codes"


class MoveOutcome(enum.Enum):
    SENT = "sent"  # a code is on its way to the link's address
    MOVED = "moved"  # the code was right: this browser now holds the link
    WRONG_CODE = "wrong_code"  # not the code; the request stays open
    NO_CODE = "no_code"  # no open request here: expired, used, voided, none
    NO_EMAIL = "no_email"  # the link has no address: ask the organiser
    LIMIT = "limit"  # no moves left for this link
    THROTTLED = "throttled"  # too many codes e-mailed for this link lately
    INVALID = "invalid"  # no such link, revoked or expired


@dataclass(frozen=True)
class MoveResult:
    outcome: MoveOutcome
    move_id: int | None = None
    retry_after: int = 0
    # MOVED: the device secret now bound to the link (the browser's new cookie).
    secret: str | None = None


def moved_away(webinar_id: int, secret_hash: str) -> DeviceMove | None:
    """The latest move of a live link of ``webinar_id`` that removed the device
    whose secret hashed to ``secret_hash`` (with its link), or ``None``.

    Asked by the gate only when a device cookie matched no bound device (a miss,
    not the hot path of a visitor with access): one query on a partial index.
    """
    move = (
        DeviceMove.objects.filter(
            moved_away_hash=secret_hash,
            link__webinar_id=webinar_id,
            moved_at__isnull=False,
        )
        .select_related("link")
        .order_by("-moved_at", "-pk")
        .first()
    )
    return move if move is not None and move.link.is_live() else None


def moves_done(link_id: int) -> int:
    """How many times the link was moved to a new browser."""
    return DeviceMove.objects.filter(link_id=link_id, moved_at__isnull=False).count()


def moves_left(link: PersonalLink, webinar: WebinarPage) -> int:
    return max(0, int(webinar.max_device_moves) - moves_done(link.pk))


def can_offer_move(link: PersonalLink | None, webinar: WebinarPage) -> bool:
    """Show "move to this browser" on the in-use page? (No promise: the request
    re-checks everything under the row lock.)"""
    return bool(
        link is not None
        and link.pk
        and link.email_normalized
        and moves_left(link, webinar) > 0
    )


def _locked_link(link_id: int, now: dt.datetime) -> PersonalLink | None:
    link = (
        PersonalLink.objects.select_for_update()
        .filter(pk=link_id)
        .only(
            "pk",
            "webinar_id",
            "name",
            "email_normalized",
            "revoked_at",
            "expires_at",
            "claimed_at",
        )
        .first()
    )
    return link if link is not None and link.is_live(now) else None


def _max_moves(webinar_id: int) -> int:
    return int(
        WebinarPage.objects.filter(pk=webinar_id)
        .values_list("max_device_moves", flat=True)
        .first()
        or 0
    )


def _cancelled(webinar_id: int) -> bool:
    # A cancelled webinar has no room to move into: no code is e-mailed.
    return WebinarPage.objects.filter(
        pk=webinar_id, cancelled_at__isnull=False
    ).exists()


def request_move(
    link_id: int, browser_key: str, *, ip: str = "", user_agent: str = ""
) -> MoveResult:
    """Open a move request for the browser holding ``browser_key`` and queue the
    e-mail with its code (when the caller's transaction commits)."""
    now = timezone.now()
    with transaction.atomic():
        link = _locked_link(link_id, now)
        if link is None or _cancelled(link.webinar_id):
            return MoveResult(MoveOutcome.INVALID)
        if not link.email_normalized:
            return MoveResult(MoveOutcome.NO_EMAIL)
        if moves_done(link.pk) >= _max_moves(link.webinar_id):
            return MoveResult(MoveOutcome.LIMIT)
        state = throttle.count_request(
            SCOPE_CODES,
            {f"link:{link.pk}": int(conf.get_setting("MOVE_CODES_PER_LINK"))},
            int(conf.get_setting("LOST_LINK_WINDOW")),
        )
        if state.blocked:
            return MoveResult(MoveOutcome.THROTTLED, retry_after=state.retry_after)
        browser_hash = tokens.hash_secret(browser_key)
        # One open code per browser and link: asking again replaces the last one.
        DeviceMove.objects.filter(
            link=link, browser_hash=browser_hash, moved_at=None, voided_at=None
        ).update(voided_at=now)
        move = DeviceMove.objects.create(
            link=link,
            browser_hash=browser_hash,
            created_at=now,
            expires_at=now
            + dt.timedelta(seconds=int(conf.get_setting("MOVE_CODE_AGE"))),
            user_agent=(user_agent or "")[:255],
            ip=truncate_ip(ip),
        )
        AccessEvent.objects.create(
            webinar_id=link.webinar_id,
            link=link,
            time=now,
            kind=AccessEventKind.MOVE_CODE_SENT,
            ip=truncate_ip(ip),
            user_agent=(user_agent or "")[:255],
        )
        log(
            link,
            ACTION_MOVE_CODE,
            data={"webinar_id": link.webinar_id, "name": link.name, "move_id": move.pk},
        )
        get_queue().enqueue(
            send_move_code,
            move.pk,
            site_identity(),
            job_id=f"paidwebinar-move-{move.pk}-{uuid.uuid4().hex[:8]}",
            description=f"paidwebinar move code: request {move.pk}",
            job_timeout=120,
            result_ttl=3600,
            failure_ttl=24 * 3600,
        )
    logger.info("Move code for link %s queued (request %s)", link.pk, move.pk)
    return MoveResult(MoveOutcome.SENT, move_id=move.pk)


def _open_request(link: PersonalLink, browser_hash: str) -> DeviceMove | None:
    return (
        DeviceMove.objects.filter(
            link=link, browser_hash=browser_hash, moved_at=None, voided_at=None
        )
        .order_by("-created_at", "-pk")
        .first()
    )


def _just_moved(
    link: PersonalLink, browser_key: str, code: str, now: dt.datetime
) -> tuple[DeviceMove, str] | None:
    """This browser's move of ``link`` done moments ago with this same code, whose
    device is still bound: the request and its secret, else ``None``.

    A double click posts the code twice; the browser may keep the second response
    only, so it must carry the same cookie as the first (the secret is derived
    from the request and the browser's claim key), not "no longer valid".
    """
    move = (
        DeviceMove.objects.filter(
            link=link,
            browser_hash=tokens.hash_secret(browser_key),
            moved_at__gte=now - claims.CLAIM_RETRY_WINDOW,
        )
        .order_by("-moved_at", "-pk")
        .first()
    )
    if move is None or not tokens.move_code_matches(move.pk, link.pk, move.salt, code):
        return None
    secret = tokens.move_secret(move.pk, move.salt, browser_key)
    bound = LinkDevice.objects.filter(
        link=link, secret_hash=tokens.hash_secret(secret)
    ).exists()
    return (move, secret) if bound else None


def confirm_move(
    link_id: int,
    browser_key: str,
    code: str,
    *,
    ip: str = "",
    user_agent: str = "",
) -> MoveResult:
    """Check ``code`` against this browser's open request and, when right, bind
    this browser (a secret derived from the request and ``browser_key``, returned
    in the result) to the link in place of its least recently seen device(s)."""
    now = timezone.now()
    with transaction.atomic():
        link = _locked_link(link_id, now)
        if link is None:
            return MoveResult(MoveOutcome.INVALID)
        move = _open_request(link, tokens.hash_secret(browser_key))
        if move is None:
            repeated = _just_moved(link, browser_key, code, now)
            if repeated is not None:
                done, secret = repeated
                return MoveResult(MoveOutcome.MOVED, move_id=done.pk, secret=secret)
        if move is None or move.expires_at <= now:
            return MoveResult(MoveOutcome.NO_CODE)
        if moves_done(link.pk) >= _max_moves(link.webinar_id):
            DeviceMove.objects.filter(pk=move.pk).update(voided_at=now)
            return MoveResult(MoveOutcome.LIMIT)
        if not tokens.move_code_matches(move.pk, link.pk, move.salt, code):
            move.attempts += 1
            fields = ["attempts"]
            if move.attempts >= int(conf.get_setting("MOVE_CODE_ATTEMPTS")):
                move.voided_at = now
                fields.append("voided_at")
            move.save(update_fields=fields)
            return MoveResult(MoveOutcome.WRONG_CODE, move_id=move.pk)
        secret = tokens.move_secret(move.pk, move.salt, browser_key)
        _bind(link, move, secret, now, ip=ip, user_agent=user_agent)
    logger.info("Link %s moved to a new browser (request %s)", link.pk, move.pk)
    return MoveResult(MoveOutcome.MOVED, move_id=move.pk, secret=secret)


def _bind(
    link: PersonalLink,
    move: DeviceMove,
    new_secret: str,
    now: dt.datetime,
    *,
    ip: str,
    user_agent: str,
) -> None:
    """The move itself, under the link's row lock."""
    max_devices = (
        WebinarPage.objects.filter(pk=link.webinar_id)
        .values_list("max_devices_per_link", flat=True)
        .first()
    ) or 1
    devices = list(
        LinkDevice.objects.filter(link=link)
        .order_by("last_seen_at", "pk")
        .values_list("pk", "user_agent", "secret_hash")
    )
    # Make room for this browser: the least recently seen go (all, with one slot).
    gone = devices[: max(0, len(devices) - max_devices + 1)]
    LinkDevice.objects.filter(pk__in=[pk for pk, _ua, _hash in gone]).delete()
    LinkDevice.objects.create(
        link=link,
        secret_hash=tokens.hash_secret(new_secret),
        created_at=now,
        last_seen_at=now,
        user_agent=(user_agent or "")[:255],
        ip=truncate_ip(ip),
    )
    DeviceMove.objects.filter(pk=move.pk).update(
        moved_at=now,
        # The browser that was in until now (the latest seen of those removed).
        moved_away_hash=gone[-1][2] if gone else "",
    )
    # Every other open code of the link dies: of two racing moves, one.
    DeviceMove.objects.filter(link=link, moved_at=None, voided_at=None).update(
        voided_at=now
    )
    # The link's stamps as one UPDATE, as the claim writes them: save() would have
    # Wagtail rewrite the link's reference index while its row lock is held.
    stamps = {"last_seen_at": now}
    if link.claimed_at is None:
        stamps["claimed_at"] = now
    PersonalLink.objects.filter(pk=link.pk).update(**stamps)
    for field, value in stamps.items():
        setattr(link, field, value)
    AccessEvent.objects.create(
        webinar_id=link.webinar_id,
        link=link,
        time=now,
        kind=AccessEventKind.DEVICE_MOVED,
        ip=truncate_ip(ip),
        user_agent=(user_agent or "")[:255],
    )
    log(
        link,
        ACTION_MOVE,
        data={
            "webinar_id": link.webinar_id,
            "name": link.name,
            "move_id": move.pk,
            "new_browser": (user_agent or "")[:255],
            "removed_browsers": [ua for _pk, ua, _hash in gone],
        },
    )


def send_move_code(move_id: int, site: str | None = None) -> bool:
    """The job: e-mail the code of move request ``move_id`` to its link's address,
    in the webinar's language. Returns whether it was sent (an expired, used or
    voided request, or a link that lost its address, gets nothing)."""
    if site is not None and site not in accepted_identities():
        raise ForeignJobError("move-code job of another site")
    move = DeviceMove.objects.select_related("link").filter(pk=move_id).first()
    if (
        move is None
        or move.moved_at is not None
        or move.voided_at is not None
        or move.expires_at <= timezone.now()
        or not move.link.email
        or not move.link.is_live()
        # Asked for before the webinar was cancelled, run after: nothing to join.
        or _cancelled(move.link.webinar_id)
    ):
        return False
    link = move.link
    webinar = WebinarPage.objects.get(pk=link.webinar_id)
    code = tokens.make_move_code(move.pk, link.pk, move.salt)
    from_email, reply_to = sender(mailing_settings_for(webinar))
    minutes = max(1, int(conf.get_setting("MOVE_CODE_AGE")) // 60)
    with translation.override(webinar_language(webinar)):
        subject = gettext("Your code to join %(webinar)s in a new browser") % {
            "webinar": " ".join(webinar.title.split())
        }
        body = move_code_body(move, link, webinar, code, minutes)
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=from_email,
        to=[link.email],
        reply_to=reply_to or None,
    )
    message.send()
    # Ids only: neither the address nor the code goes into the log.
    logger.info("Move code for link %s sent (request %s)", link.pk, move.pk)
    return True


def _printable(text: str) -> str:
    # The user agent is whatever the asking browser sent: no control characters
    # (line breaks could forge lines of the e-mail), runs of spaces collapsed.
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def move_code_body(
    move: DeviceMove,
    link: PersonalLink,
    webinar: WebinarPage,
    code: str,
    minutes: int,
) -> str:
    """The text of the code e-mail (in the active language).

    Anyone holding the personal link sees the in-use page and can have codes
    sent to its owner (a few a day): so the e-mail says plainly that someone
    asked, from which browser and when, and that ignoring it keeps access where
    it is, before it gives the code.
    """
    values = {
        "name": link.name,
        "webinar": webinar.title,
        "minutes": minutes,
        "time": local_time(webinar, move.created_at),
        "browser": _printable(move.user_agent) or gettext("an unknown browser"),
        "network": move.ip,
    }
    asked = gettext("Asked on %(time)s from this browser: %(browser)s.") % values
    if move.ip:
        asked += " " + gettext("Network: %(network)s.") % values
    parts = [
        gettext("Hello %(name)s,") % values,
        gettext(
            "someone asked to move your access to “%(webinar)s” to another browser."
        )
        % values,
        asked,
        gettext("If that was you, enter this code on the page that asked for it:"),
        f"    {code}",
        ngettext(
            "The code is valid for %(minutes)s minute and works once.",
            "The code is valid for %(minutes)s minutes and works once.",
            minutes,
        )
        % values
        + " "
        + gettext("The browser where you joined before will lose access."),
        gettext(
            "If it was not you, ignore this e-mail: your access stays where it is "
            "now, and nothing changes without the code. Nobody from us will ever "
            "ask you for it."
        ),
    ]
    return "\n\n".join(parts) + "\n"


def register_log_actions(actions) -> None:
    """Labels of the audit log actions (``register_log_actions`` hook)."""
    actions.register_action(
        ACTION_MOVE_CODE,
        _("Move to a new browser requested"),
        _("Code to move the link to a new browser e-mailed"),
    )
    actions.register_action(
        ACTION_MOVE,
        _("Moved to a new browser"),
        _("Link moved to a new browser by its holder"),
    )
