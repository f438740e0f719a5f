"""The plugin's one home for digests and MACs.

Personal link tokens: ``<public id>.<mac>``; links sent before public ids existed
carry ``<link pk>.<mac>`` and keep working until re-issued (a new salt).

The mac is an HMAC-SHA256 (Django's ``salted_hmac``) over the link's public id (or
pk, old form), the webinar id
and a random per-link salt, keyed by ``SECRET_KEY``; tokens made with a key in
``SECRET_KEY_FALLBACKS`` still verify, so a key rotation does not break links already
sent. The database stores the salt, never the token: a database dump alone admits
nobody, and rotating a link's salt kills its old URL.

Also here: the SHA-256 kept of a secret (device cookies, throttled clients,
constant-time password comparison) and the room password pass cookie (Django's
``signing``, which verifies against ``SECRET_KEY_FALLBACKS`` too).

This module is pure (no database). Invalid tokens are an ordinary outcome: the
functions return ``None``/``False`` and never raise, and nothing here logs a token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string

from django.conf import settings
from django.core import signing
from django.utils.crypto import salted_hmac

from . import conf

KEY_SALT = "wagtail_paidwebinar.tokens.PersonalLink"
CLAIM_NONCE_KEY_SALT = "wagtail_paidwebinar.claims.claim_nonce"
PASS_SALT = "wagtail_paidwebinar.access.password_pass"  # noqa: S105 - a name, not a secret
# An id is a positive integer below 2**63; anything longer is garbage.
_MAX_ID_DIGITS = 19
_MIN_PUBLIC_ID, _MAX_PUBLIC_ID = 10, 16
_PUBLIC_ID_CHARS = frozenset(string.ascii_letters + string.digits + "-_")
# Salt of the MAC computed for a token naming no link: "no such id" then costs
# what "wrong mac" costs (a timing difference told them apart).
DUMMY_SALT = "wagtail_paidwebinar.tokens.no-such-link"


def new_salt() -> str:
    """A fresh random per-link salt (128 bits)."""
    return secrets.token_urlsafe(16)


def new_public_id() -> str:
    """A fresh opaque public id for a link's token (12 url-safe characters, 72
    bits): says nothing about how many links exist. Never all digits, so it is
    never mistaken for an old-form ``<pk>`` token."""
    while True:
        value = secrets.token_urlsafe(9)
        if not value.isdigit():
            return value


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _mac(link_id: int | str, webinar_id: int, salt: str, secret: str | bytes) -> str:
    value = f"{link_id}:{webinar_id}:{salt}"
    digest = salted_hmac(KEY_SALT, value, secret=secret, algorithm="sha256").digest()
    return _b64(digest[: int(conf.get_setting("TOKEN_BYTES"))])


def make_token(link_id: int | str, webinar_id: int, salt: str) -> str:
    """The token of a link, keyed by the current SECRET_KEY: ``link_id`` is the
    link's public id (or, old form, its pk)."""
    return f"{link_id}.{_mac(link_id, webinar_id, salt, settings.SECRET_KEY)}"


def parse_token(token: object) -> tuple[int | str, str] | None:
    """Split a token into ``(link ref, mac)``: the ref is an ``int`` pk (old form)
    or a ``str`` public id; ``None`` when the token is malformed."""
    if not isinstance(token, str) or len(token) > 200:
        return None
    link_part, sep, mac = token.partition(".")
    if not sep or not mac or not link_part.isascii():
        return None
    if link_part.isdigit():
        if len(link_part) > _MAX_ID_DIGITS or link_part.startswith("0"):
            return None
        ref: int | str = int(link_part)
    elif (
        _MIN_PUBLIC_ID <= len(link_part) <= _MAX_PUBLIC_ID
        and set(link_part) <= _PUBLIC_ID_CHARS
    ):
        ref = link_part
    else:
        return None
    try:
        # Reject anything that is not canonical base64url of the right length.
        padded = mac + "=" * (-len(mac) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    if len(raw) != int(conf.get_setting("TOKEN_BYTES")) or _b64(raw) != mac:
        return None
    return ref, mac


def verify_mac(link_id: int | str, webinar_id: int, salt: str, mac: str) -> bool:
    """Constant-time check of ``mac`` against SECRET_KEY and its fallbacks."""
    secrets_to_try = [
        settings.SECRET_KEY,
        *getattr(settings, "SECRET_KEY_FALLBACKS", []),
    ]
    ok = False
    for secret in secrets_to_try:
        # No early exit: every key is tried, so timing says nothing about which.
        ok |= hmac.compare_digest(_mac(link_id, webinar_id, salt, secret), mac)
    return ok


# --- digests -----------------------------------------------------------------------


def digest(value: str) -> bytes:
    """SHA-256 of ``value`` (UTF-8; characters it cannot encode are replaced)."""
    return hashlib.sha256(value.encode("utf-8", "replace")).digest()


def hash_secret(secret: str) -> str:
    """What is kept of a secret (device cookie, throttled client): SHA-256, hex."""
    return digest(secret).hex()


def claim_secret(link_id: int, nonce: str, browser_key: str) -> str:
    """The device secret a confirm form's POST binds (see ``claims.device_secret``):
    an HMAC keyed by SECRET_KEY over the link, the form's nonce and the browser's
    claim key, hex. Another browser posting the same form has another key."""
    value = f"{link_id}:{nonce}:{browser_key}"
    return salted_hmac(CLAIM_NONCE_KEY_SALT, value, algorithm="sha256").hexdigest()


def _claim_signer(link_id: int, browser_key: str) -> signing.TimestampSigner:
    # The link and a digest of the browser's claim key are in the salt: a nonce is
    # good for one link in one browser. Built per call (SECRET_KEY and its fallbacks
    # are read when the signer is made).
    salt = f"{CLAIM_NONCE_KEY_SALT}:{link_id}:{hash_secret(browser_key)}"
    return signing.TimestampSigner(salt=salt, algorithm="sha256")


def make_claim_nonce(link_id: int, browser_key: str) -> str:
    """A nonce for one rendering of the confirm form of ``link_id``, signed for the
    browser holding ``browser_key``."""
    return _claim_signer(link_id, browser_key).sign(secrets.token_urlsafe(12))


def claim_nonce_issued(
    link_id: int, browser_key: str | None, nonce: str | None, max_age: int
) -> bool:
    """Did the server issue ``nonce`` for ``link_id`` to this browser, at most
    ``max_age`` seconds ago?"""
    if not browser_key or not nonce or len(nonce) > 200 or len(browser_key) > 200:
        return False
    try:
        _claim_signer(link_id, browser_key).unsign(nonce, max_age=max_age)
    except signing.BadSignature:
        return False
    return True


# --- move codes ("Move to this device") --------------------------------------------

MOVE_CODE_KEY_SALT = "wagtail_paidwebinar.moves.code"
MOVE_CODE_DIGITS = 6
MOVE_SECRET_KEY_SALT = "wagtail_paidwebinar.moves.secret"  # noqa: S105 - a salt name


def _move_code(move_id: int, link_id: int, salt: str, secret: str | bytes) -> str:
    value = f"{move_id}:{link_id}:{salt}"
    mac = salted_hmac(MOVE_CODE_KEY_SALT, value, secret=secret, algorithm="sha256")
    # 64 bits of the MAC reduced modulo 10**6: the bias is below 10**-13.
    number = int.from_bytes(mac.digest()[:8], "big") % 10**MOVE_CODE_DIGITS
    return f"{number:0{MOVE_CODE_DIGITS}d}"


def make_move_code(move_id: int, link_id: int, salt: str) -> str:
    """The 6-digit code of one move request, keyed by the current SECRET_KEY.

    Derived, never stored (like a link's token): the database keeps the request's
    random salt only, so a dump alone reveals no code, and the e-mail job needs
    only the request's id to write it.
    """
    return _move_code(move_id, link_id, salt, settings.SECRET_KEY)


def move_secret(move_id: int, salt: str, browser_key: str) -> str:
    """The device secret a move binds: an HMAC keyed by SECRET_KEY over the move
    request and the asking browser's claim key, hex (as ``claim_secret``). Derived
    rather than random so that the same code posted twice by the same browser (a
    double click whose first response the browser dropped) gets the same cookie."""
    value = f"{move_id}:{salt}:{browser_key}"
    return salted_hmac(MOVE_SECRET_KEY_SALT, value, algorithm="sha256").hexdigest()


def move_code_matches(move_id: int, link_id: int, salt: str, candidate: str) -> bool:
    """Constant-time check of ``candidate`` (digits, spaces ignored) against the
    code of the move request, under SECRET_KEY and its fallbacks."""
    cleaned = "".join(str(candidate or "").split())[:20]
    ok = False
    for secret in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
        ok |= hmac.compare_digest(
            _move_code(move_id, link_id, salt, secret).encode(),
            cleaned.encode("utf-8", "replace"),
        )
    return ok


# --- the room password pass --------------------------------------------------------


def _pass_signer(page_id: int, room_password: str) -> signing.TimestampSigner:
    # The page and a digest of the current password are in the salt, so a pass is
    # good for one page and changing the password ends every earlier pass. The
    # cookie itself carries neither. Built per call: SECRET_KEY and its fallbacks
    # are read when the signer is made.
    salt = f"{PASS_SALT}:{page_id}:{hash_secret(room_password)}"
    return signing.TimestampSigner(salt=salt, algorithm="sha256")


def make_password_pass(page_id: int, room_password: str) -> str:
    """The cookie value proving this browser entered ``room_password`` of the page."""
    return _pass_signer(page_id, room_password).sign(secrets.token_urlsafe(12))


def has_password_pass(page_id: int, room_password: str, cookie: str | None) -> bool:
    """Does ``cookie`` prove ``room_password`` (the current one) was entered?

    Passes signed with a key in ``SECRET_KEY_FALLBACKS`` still count, so rotating
    the key does not log everyone out of the room; a pass older than
    PASSWORD_PASS_AGE (the cookie's own lifetime) does not.
    """
    if not cookie or not room_password or len(cookie) > 200:
        return False
    try:
        _pass_signer(page_id, room_password).unsign(
            cookie, max_age=int(conf.get_setting("PASSWORD_PASS_AGE"))
        )
    except signing.BadSignature:
        return False
    return True
