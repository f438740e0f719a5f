"""The gate's decisions, as plain functions returning a :class:`Decision`.

Nothing here builds a response or writes to the database: gate.py turns a decision
into a page, a cookie or a redirect, has claims.py write the claim, the attendance
records and the last-seen stamps, and counts the throttle failures the decision asks
for. The reads are kept to what the hot path can afford: a visitor coming back to
the room costs one indexed query (``LinkDevice.objects.bound_for``: their device row
joined with its link; see docs/sql.md).

Who gets in:

* a browser bound to a valid personal link of the page (device cookie), inside the
  access window, and holding a room password pass when the page has a password;
* with ``allow_link_sharing``, anyone inside the window who entered the room password
  (or anyone at all when there is no password);
* everybody else sees the public teaser.

A personal link in the URL (``?access=<token>``) never binds on GET or HEAD (mail
scanners open links): a valid, unclaimed link shows a confirm page, and only a POST
claims it.

The device credential rotates (``credential``, ``rotation_due``): a grant whose
secret is older than DEVICE_ROTATE_AFTER asks gate.py for a new one; the secret
rotated away admits for DEVICE_ROTATE_GRACE more seconds, and presented later it is
refused as a copied cookie (REFUSE_REUSED, flagged on the attendance view).
"""

from __future__ import annotations

import datetime as dt
import enum
import hmac
import logging
from dataclasses import dataclass

from . import conf, moves, throttle, tokens
from .models import AccessEventKind, LinkDevice, PersonalLink, WebinarPage
from .models.links import LinkStatus

logger = logging.getLogger(__name__)

ACTION_FIELD = "pw_action"
CLAIM_ACTION = "claim"
PASSWORD_ACTION = "password"  # noqa: S105 - a name, not a secret
MOVE_REQUEST_ACTION = "move_request"
MOVE_CONFIRM_ACTION = "move_confirm"
MOVE_CODE_FIELD = "move_code"
CLAIM_NONCE_FIELD = "pw_claim"
PASSWORD_FIELD = "password"  # noqa: S105 - a name, not a secret
TOKEN_SCOPE = "token"  # noqa: S105 - a name, not a secret
PASSWORD_SCOPE = "password"  # noqa: S105 - a name, not a secret


class Outcome(enum.Enum):
    GRANT = "grant"  # show the room
    TEASER = "teaser"  # the public page, room hidden
    CONFIRM = "confirm"  # "Join as <name>" with a POST button
    CLAIM = "claim"  # POST of the confirm form: claim a device slot
    REDIRECT_CLEAN = "redirect_clean"  # this browser holds the link: drop the token
    ASK_PASSWORD = "ask_password"  # noqa: S105 - password form (error=True after a wrong one)
    PASSWORD_OK = "password_ok"  # noqa: S105 - right password: set the pass, redirect
    REFUSE_GENERIC = "refuse_generic"  # bad/tampered/other-webinar/revoked token
    REFUSE_IN_USE = "refuse_in_use"  # every device slot taken by other browsers
    REFUSE_EXPIRED = "refuse_expired"  # only to a browser that had claimed the link
    REFUSE_REUSED = "refuse_reused"  # a device secret rotated away: a copied cookie
    NOT_OPEN_YET = "not_open_yet"  # before the access window
    CLOSED = "closed"  # after the access window
    THROTTLED = "throttled"  # too many failures: 429 + Retry-After
    MOVE_REQUEST = "move_request"  # POST from the in-use page: e-mail a code
    MOVE_CONFIRM = "move_confirm"  # POST of the code: move the link here
    CANCELLED = "cancelled"  # the organiser cancelled the webinar: no room for anyone
    MOVED_AWAY = "moved_away"  # this browser's access was moved to another one


@dataclass(frozen=True)
class Visit:
    """What the gate needs to know about one request, read off it by gate.py."""

    method: str
    now: dt.datetime
    token: str | None = None
    device_secret: str | None = None
    pass_cookie: str | None = None
    action: str = ""
    claim_nonce: str | None = None  # from the confirm form (see claims.py)
    password: str | None = None
    move_code: str | None = None  # "move to this device" (moves.py)
    client: str = ""  # throttling identity: device cookie, session or address
    ip: str = ""

    @property
    def is_post(self) -> bool:
        return self.method == "POST"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    link: PersonalLink | None = None
    device: LinkDevice | None = None
    retry_after: int = 0
    password_error: bool = False
    # Side effects gate.py carries out: an attendance record and a throttle failure.
    event: AccessEventKind | None = None
    failure_scope: str | None = None
    # Grant with a new device secret (the credential is older than ROTATE_AFTER).
    rotate: bool = False
    # MOVED_AWAY: when the link was moved to another browser.
    moved_at: dt.datetime | None = None

    @property
    def granted(self) -> bool:
        return self.outcome is Outcome.GRANT


# --- small pure checks -------------------------------------------------------------


def window_outcome(page: WebinarPage, now: dt.datetime) -> Outcome | None:
    """``NOT_OPEN_YET``/``CLOSED`` outside the access window, ``None`` inside.

    Both edges belong to the window: at ``access_closes_at`` the room is still open,
    one second later it is closed.
    """
    opens_at = page.access_opens_at
    if opens_at is not None and now < opens_at:
        return Outcome.NOT_OPEN_YET
    closes_at = page.access_closes_at
    if closes_at is not None and now > closes_at:
        return Outcome.CLOSED
    return None


_REFUSAL: dict[str | None, AccessEventKind] = {
    LinkStatus.REVOKED: AccessEventKind.REFUSED_REVOKED,
    LinkStatus.EXPIRED: AccessEventKind.REFUSED_EXPIRED,
}


def link_problem(link: PersonalLink, now: dt.datetime) -> AccessEventKind | None:
    """Why a link no longer admits, as the refusal to record, or ``None``."""
    return _REFUSAL.get(link.problem(now))


def password_matches(page: WebinarPage, candidate: str | None) -> bool:
    """Constant-time comparison of ``candidate`` with the room password.

    Both sides are hashed first so the comparison does not leak the length either.
    """
    if not page.room_password or candidate is None:
        return False
    return hmac.compare_digest(
        tokens.digest(candidate), tokens.digest(page.room_password)
    )


def has_password_pass(page: WebinarPage, cookie: str | None) -> bool:
    """Does ``cookie`` prove the page's current room password was entered?"""
    return tokens.has_password_pass(page.pk, page.room_password, cookie)


class Credential(enum.Enum):
    CURRENT = "current"  # the device's current secret
    GRACE = "grace"  # the secret rotated away last, inside the grace
    REUSED = "reused"  # the secret rotated away last, after the grace: copied


def credential(device: LinkDevice, secret_hash: str | None, now: dt.datetime):
    """How the secret hashed to ``secret_hash`` stands with ``device``, or ``None``
    when it is neither its current secret nor the one rotated away last.

    Rotation as OAuth refresh tokens do it: each rotation hands the browser a new
    secret, so two browsers holding one copied cookie cannot both follow. The one
    that presents the old secret after the grace is the second browser.
    """
    if not secret_hash:
        return None
    if device.secret_hash == secret_hash:
        return Credential.CURRENT
    if device.previous_secret_hash != secret_hash or device.rotated_at is None:
        return None
    grace = dt.timedelta(seconds=int(conf.get_setting("DEVICE_ROTATE_GRACE")))
    return Credential.GRACE if now - device.rotated_at <= grace else Credential.REUSED


def rotation_due(device: LinkDevice, now: dt.datetime) -> bool:
    """Is the device's current secret older than DEVICE_ROTATE_AFTER?"""
    after = int(conf.get_setting("DEVICE_ROTATE_AFTER"))
    return after > 0 and now - device.secret_issued_at() >= dt.timedelta(seconds=after)


# --- database reads ----------------------------------------------------------------


def device_hash(device_secret: str | None) -> str | None:
    """What the database keeps of this browser's device secret; ``None`` for no
    cookie or one too long to be ours."""
    if not device_secret or len(device_secret) > 200:
        return None
    return tokens.hash_secret(device_secret)


def find_bound_devices(page: WebinarPage, secret_hash: str | None) -> list[LinkDevice]:
    """This browser's device rows for links of ``page``, with their links (one
    query: ``LinkDevice.objects.bound_for``)."""
    if secret_hash is None:
        return []
    return LinkDevice.objects.bound_for(page.pk, secret_hash)


def load_link(page: WebinarPage, token: str | None) -> PersonalLink | None:
    """The personal link ``token`` names, if it is genuine and belongs to ``page``.

    Malformed, tampered and other-webinar tokens all give ``None``; revoked and
    expired links are returned (the caller decides what to say).
    """
    parsed = tokens.parse_token(token)
    if parsed is None:
        logger.debug("Gate: malformed token for page %s", page.pk)
        return None
    ref, mac = parsed
    # New links are named by their public id; old-form tokens by the pk.
    lookup = {"pk": ref} if isinstance(ref, int) else {"public_id": ref}
    link = PersonalLink.objects.filter(webinar_id=page.pk, **lookup).first()
    # "No such id" computes and compares a MAC too (against a dummy salt): both
    # refusals do the same work, so timing does not tell which ids exist.
    salt = link.salt if link is not None else tokens.DUMMY_SALT
    genuine = tokens.verify_mac(ref, page.pk, salt, mac)
    if link is None or not genuine:
        logger.debug("Gate: unknown or forged token for page %s", page.pk)
        return None
    return link


# --- the decision ------------------------------------------------------------------


def decide(page: WebinarPage, visit: Visit) -> Decision:
    """What the gate does with this visit to ``page``."""
    if page.cancelled_at is not None:
        # No query: a participant (a link, or a browser holding a device cookie)
        # is told the webinar was cancelled; anyone else sees the teaser, which
        # says so too.
        if visit.token is not None or visit.device_secret:
            return Decision(Outcome.CANCELLED)
        return Decision(Outcome.TEASER)
    if visit.token is not None:
        return decide_token(page, visit)
    return decide_clean(page, visit)


def decide_token(page: WebinarPage, visit: Visit) -> Decision:
    """A personal link in the URL: confirm, claim, redirect or refuse."""
    state = throttle.check(TOKEN_SCOPE, page.pk, visit.client, visit.ip)
    if state.blocked:
        return Decision(Outcome.THROTTLED, retry_after=state.retry_after)

    link = load_link(page, visit.token)
    if link is None:
        return Decision(
            Outcome.REFUSE_GENERIC,
            event=AccessEventKind.REFUSED_INVALID,
            failure_scope=TOKEN_SCOPE,
        )

    devices = list(
        link.devices.only(
            "pk", "secret_hash", "link_id", "previous_secret_hash", "rotated_at"
        )
    )
    mine = tokens.hash_secret(visit.device_secret) if visit.device_secret else None
    bound = next(
        (
            d
            for d in devices
            if credential(d, mine, visit.now) in (Credential.CURRENT, Credential.GRACE)
        ),
        None,
    )

    problem = link_problem(link, visit.now)
    if problem is AccessEventKind.REFUSED_EXPIRED and bound is not None:
        return Decision(Outcome.REFUSE_EXPIRED, link=link, event=problem)
    if problem is not None:
        # Revoked and expired look exactly like a forged token from outside.
        return Decision(
            Outcome.REFUSE_GENERIC, link=link, event=problem, failure_scope=TOKEN_SCOPE
        )
    if bound is not None:
        return Decision(Outcome.REDIRECT_CLEAN, link=link, device=bound)
    if visit.is_post and visit.action == CLAIM_ACTION:
        # Counting the free slots is the claim's job, under the row lock; it also
        # recognises a repeated POST of the same confirm form (double click).
        return Decision(Outcome.CLAIM, link=link)
    if visit.is_post and visit.action == MOVE_REQUEST_ACTION:
        # Moves are for a browser the link refuses; whether it may move (an
        # address, moves left, codes left) is the move's job, under the row lock.
        return Decision(Outcome.MOVE_REQUEST, link=link)
    if visit.is_post and visit.action == MOVE_CONFIRM_ACTION:
        return Decision(Outcome.MOVE_CONFIRM, link=link)
    if len(devices) >= page.max_devices_per_link:
        if mine is not None:
            # The browser the link was moved away from, opening the link again
            # (not a hot path: a refusal). Told what happened rather than "in use".
            move = moves.moved_away(page.pk, mine)
            if move is not None and move.link_id == link.pk:
                return Decision(Outcome.MOVED_AWAY, link=link, moved_at=move.moved_at)
        return Decision(
            Outcome.REFUSE_IN_USE, link=link, event=AccessEventKind.REFUSED_IN_USE
        )
    return Decision(Outcome.CONFIRM, link=link)


def decide_clean(page: WebinarPage, visit: Visit) -> Decision:
    """The page URL without a token: device cookie, then link sharing, then teaser."""
    link = device = None
    expired_link = reused = None
    # Hashed once: the lookup and the rotation check both compare the hash.
    mine = device_hash(visit.device_secret)
    candidates = find_bound_devices(page, mine)
    for candidate in candidates:
        problem = link_problem(candidate.link, visit.now)
        if problem is None:
            if credential(candidate, mine, visit.now) is Credential.REUSED:
                reused = candidate
                continue
            device, link = candidate, candidate.link
            break
        if problem is AccessEventKind.REFUSED_EXPIRED:
            expired_link = candidate.link

    if link is None and not page.allow_link_sharing:
        if reused is not None:
            return Decision(
                Outcome.REFUSE_REUSED,
                link=reused.link,
                event=AccessEventKind.REUSE_DETECTED,
            )
        if expired_link is not None:
            return Decision(Outcome.REFUSE_EXPIRED, link=expired_link)
        if mine is not None and not candidates:
            # A device cookie that holds nothing here: perhaps its link moved to
            # another browser. Only this miss pays for the look-up.
            return decide_moved_away(page, visit, mine)
        return Decision(Outcome.TEASER)

    closed = window_outcome(page, visit.now)
    if closed is not None:
        return Decision(closed, link=link, device=device)

    if page.room_password and not has_password_pass(page, visit.pass_cookie):
        return decide_password(page, visit, link=link, device=device)
    rotate = (
        device is not None
        and credential(device, mine, visit.now) is Credential.CURRENT
        and rotation_due(device, visit.now)
    )
    return Decision(Outcome.GRANT, link=link, device=device, rotate=rotate)


def decide_moved_away(page: WebinarPage, visit: Visit, secret_hash: str) -> Decision:
    """A browser whose link was moved elsewhere: say so (and when), and let it
    move the link back with a code like any refused browser; else the teaser."""
    move = moves.moved_away(page.pk, secret_hash)
    if move is None:
        return Decision(Outcome.TEASER)
    if visit.is_post and visit.action == MOVE_REQUEST_ACTION:
        return Decision(Outcome.MOVE_REQUEST, link=move.link)
    if visit.is_post and visit.action == MOVE_CONFIRM_ACTION:
        return Decision(Outcome.MOVE_CONFIRM, link=move.link)
    return Decision(Outcome.MOVED_AWAY, link=move.link, moved_at=move.moved_at)


def decide_password(
    page: WebinarPage,
    visit: Visit,
    *,
    link: PersonalLink | None = None,
    device: LinkDevice | None = None,
) -> Decision:
    """The room password is needed: show the form, or check a posted password."""
    if not (visit.is_post and visit.action == PASSWORD_ACTION):
        return Decision(Outcome.ASK_PASSWORD, link=link, device=device)
    state = throttle.check(PASSWORD_SCOPE, page.pk, visit.client, visit.ip)
    if state.blocked:
        return Decision(
            Outcome.THROTTLED, link=link, device=device, retry_after=state.retry_after
        )
    if password_matches(page, visit.password):
        return Decision(
            Outcome.PASSWORD_OK,
            link=link,
            device=device,
            event=AccessEventKind.PASSWORD_OK if link is not None else None,
        )
    return Decision(
        Outcome.ASK_PASSWORD,
        link=link,
        device=device,
        password_error=True,
        event=AccessEventKind.PASSWORD_FAILED,
        failure_scope=PASSWORD_SCOPE,
    )
