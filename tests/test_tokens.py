"""Unit tests of the pure token module."""

from __future__ import annotations

import pytest
from django.test import override_settings

from wagtail_paidwebinar import tokens

SALT = "c2FsdHNhbHRzYWx0"


def test_round_trip():
    token = tokens.make_token(42, 7, SALT)
    link_id, mac = tokens.parse_token(token)
    assert link_id == 42
    assert tokens.verify_mac(42, 7, SALT, mac)


def test_mac_has_at_least_128_bits_base64url_without_padding():
    token = tokens.make_token(1, 1, SALT)
    mac = token.split(".", 1)[1]
    assert "=" not in mac and "+" not in mac and "/" not in mac
    assert len(mac) * 6 >= 128


def test_tampered_mac_is_refused():
    token = tokens.make_token(42, 7, SALT)
    link_id, mac = tokens.parse_token(token)
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    assert tokens.parse_token(f"{link_id}.{flipped}") is not None
    assert not tokens.verify_mac(42, 7, SALT, flipped)


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "",
        "42",
        "42.",
        ".abc",
        "abc.def",
        "-1.AAAAAAAAAAAAAAAAAAAAAAAA",
        "042.AAAAAAAAAAAAAAAAAAAAAAAA",
        "4２.AAAAAAAAAAAAAAAAAAAAAAAA",
        "1" * 30 + ".AAAAAAAAAAAAAAAAAAAAAAAA",
        "42.AAAA",
        "42." + "A" * 500,
        "42.AAAAAAAAAAAAAAAAAAAAAAA=",
        "42.ĄAAAAAAAAAAAAAAAAAAAAAAA",
        b"42.AAAA",
    ],
)
def test_malformed_tokens_parse_to_none(bad):
    assert tokens.parse_token(bad) is None


def test_truncated_token_is_refused():
    token = tokens.make_token(42, 7, SALT)
    assert tokens.parse_token(token[:-1]) is None
    assert tokens.parse_token(token[:-4]) is None


def test_other_webinar_other_link_other_salt():
    link_id, mac = tokens.parse_token(tokens.make_token(42, 7, SALT))
    assert not tokens.verify_mac(42, 8, SALT, mac)
    assert not tokens.verify_mac(43, 7, SALT, mac)
    assert not tokens.verify_mac(42, 7, SALT + "x", mac)


def test_wrong_key_is_refused():
    token = tokens.make_token(42, 7, SALT)
    _id, mac = tokens.parse_token(token)
    with override_settings(SECRET_KEY="another-key-" * 5, SECRET_KEY_FALLBACKS=[]):
        assert not tokens.verify_mac(42, 7, SALT, mac)


def test_fallback_key_still_verifies():
    with override_settings(SECRET_KEY="old-key-" * 8):
        _id, mac = tokens.parse_token(tokens.make_token(42, 7, SALT))
    with override_settings(
        SECRET_KEY="new-key-" * 8, SECRET_KEY_FALLBACKS=["old-key-" * 8]
    ):
        assert tokens.verify_mac(42, 7, SALT, mac)
        # New tokens use the new key.
        _id, new_mac = tokens.parse_token(tokens.make_token(42, 7, SALT))
        assert new_mac != mac
        assert tokens.verify_mac(42, 7, SALT, new_mac)


def test_new_salt_is_random():
    salts = {tokens.new_salt() for _ in range(100)}
    assert len(salts) == 100
    assert all(len(s) >= 22 for s in salts)
