"""Garbage in, no 500 out: tokens, cookies, form fields, material URLs."""

from __future__ import annotations

import pytest

from tests.fixtures_gate import claim, make_link

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clear_gate_cache")]

BAD_TOKENS = [
    "9999999999999999999.AAAAAAAAAAAAAAAAAAAAAAAA",  # id beyond bigint
    "9223372036854775807.AAAAAAAAAAAAAAAAAAAAAAAA",
    "0.AAAAAAAAAAAAAAAAAAAAAAAA",
    "-1.AAAAAAAAAAAAAAAAAAAAAAAA",
    "1." + "A" * 5000,
    "١٢.AAAA",  # non-ASCII digits
    "1.%00%00",
    "1.\u202eevil",
    "..",
    ".",
    "1",
]


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_bad_tokens_give_the_generic_refusal(browser, room_webinar, token, settings):
    settings.WAGTAIL_PAIDWEBINAR_THROTTLE_FAILURES = 1000
    b = browser()
    response = b.get(room_webinar.url, {"access": token})
    assert response.status_code == 403
    assert b.post(room_webinar.url + "?access=x", {"pw_action": "claim"}).status_code
    assert b.head(room_webinar.url, {"access": token}).status_code == 403


@pytest.mark.parametrize(
    "cookie",
    ["", "x" * 5000, "caf\u00e9", "a.b.c", "\x7f", "9999999999999999999"],
)
def test_bad_device_and_pass_cookies(browser, password_webinar, cookie):
    b = browser()
    b.cookies["paidwebinar_device"] = cookie
    b.cookies[f"paidwebinar_device_pass_{password_webinar.pk}"] = cookie
    response = b.get(password_webinar.url)
    assert response.status_code == 200
    assert "Meeting code" not in response.content.decode()


def test_odd_form_fields(browser, password_webinar):
    link = make_link(password_webinar)
    b = browser()
    claim(b, link)
    for data in (
        {"pw_action": "password"},
        {"pw_action": "password", "password": "\x00" * 10},
        {"pw_action": "password", "password": "ż" * 10000},
        {"pw_action": ["password", "claim"], "password": ["a", "b"]},
        {"pw_action": "nonsense" * 100},
    ):
        response = b.post(password_webinar.url, data)
        assert response.status_code in (200, 429), data


def test_materials_bad_ids(browser, room_webinar):
    b = browser()
    for url in (
        f"/webinars/{room_webinar.pk}/materials/99999999999999999999/",
        "/webinars/99999999999999999999/materials/1/",
        f"/webinars/{room_webinar.pk}/materials/0/",
    ):
        assert b.get(url).status_code == 404


def test_other_methods(browser, anna, room_webinar):
    b = browser()
    for method in ("put", "patch", "delete", "options"):
        response = getattr(b, method)(room_webinar.url + f"?access={anna.token}")
        assert response.status_code < 500, method
