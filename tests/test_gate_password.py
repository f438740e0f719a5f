"""Room password: after the link, alone with link sharing, throttled, revocable."""

from __future__ import annotations

import pytest

from tests.fixtures_gate import ROOM_WORD, claim, enter_password, make_link, room_blocks
from tests.utils import make_webinar
from wagtail_paidwebinar.models import AccessEvent, AccessEventKind, WebinarPage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clear_gate_cache")]


def room_shown(response) -> bool:
    return response.status_code == 200 and ROOM_WORD in response.content.decode()


def test_password_asked_after_link(browser, password_webinar):
    link = make_link(password_webinar)
    b = browser()
    assert claim(b, link).status_code == 302
    form = b.get(password_webinar.url)
    assert form.status_code == 200
    body = form.content.decode()
    assert '<label for="pw-password">' in body
    assert 'type="password"' in body
    assert "csrfmiddlewaretoken" in body
    assert ROOM_WORD not in body

    wrong = enter_password(b, password_webinar, "herbata")
    assert wrong.status_code == 200
    assert "not right" in wrong.content.decode()
    assert ROOM_WORD not in wrong.content.decode()

    right = enter_password(b, password_webinar, "kawa123")
    assert right.status_code == 302
    assert right["Location"] == password_webinar.url
    cookie = right.cookies[f"paidwebinar_device_pass_{password_webinar.pk}"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert "kawa123" not in cookie.value
    assert room_shown(b.get(password_webinar.url))
    kinds = list(AccessEvent.objects.values_list("kind", flat=True))
    assert AccessEventKind.PASSWORD_FAILED in kinds
    assert AccessEventKind.PASSWORD_OK in kinds


def test_password_alone_does_not_admit_without_link_sharing(browser, password_webinar):
    b = browser()
    response = enter_password(b, password_webinar, "kawa123")
    assert response.status_code == 200  # the teaser, no password check at all
    assert ROOM_WORD not in response.content.decode()
    assert not room_shown(b.get(password_webinar.url))


def test_password_alone_admits_with_link_sharing(browser, index):
    webinar = make_webinar(
        index,
        title="Shared",
        slug="shared",
        room=room_blocks(),
        room_password="kawa123",
        allow_link_sharing=True,
    )
    b = browser()
    assert "pw-password" in b.get(webinar.url).content.decode()
    assert enter_password(b, webinar, "kawa123").status_code == 302
    assert room_shown(b.get(webinar.url))
    # Another browser without the password sees the form only.
    assert not room_shown(browser().get(webinar.url))


def test_link_sharing_without_password_is_a_public_room(browser, index):
    webinar = make_webinar(
        index, title="Open", slug="open", room=room_blocks(), allow_link_sharing=True
    )
    assert room_shown(browser().get(webinar.url))


def test_password_change_ends_earlier_passes(browser, password_webinar):
    link = make_link(password_webinar)
    b = browser()
    claim(b, link)
    enter_password(b, password_webinar, "kawa123")
    assert room_shown(b.get(password_webinar.url))
    WebinarPage.objects.filter(pk=password_webinar.pk).update(room_password="herbata9")
    response = b.get(password_webinar.url)
    assert not room_shown(response)
    assert "pw-password" in response.content.decode()
    assert enter_password(b, password_webinar, "herbata9").status_code == 302
    assert room_shown(b.get(password_webinar.url))


def test_password_pass_survives_a_key_rotation_with_fallback(
    browser, password_webinar, settings
):
    link = make_link(password_webinar)
    b = browser()
    claim(b, link)
    old_key = settings.SECRET_KEY
    enter_password(b, password_webinar, "kawa123")
    assert room_shown(b.get(password_webinar.url))

    settings.SECRET_KEY = "rotated-key-" * 5
    settings.SECRET_KEY_FALLBACKS = [old_key]
    assert room_shown(b.get(password_webinar.url))

    # Without the old key among the fallbacks the pass no longer proves anything.
    settings.SECRET_KEY_FALLBACKS = []
    assert not room_shown(b.get(password_webinar.url))


def test_password_change_ends_passes_made_under_an_old_key(
    browser, password_webinar, settings
):
    link = make_link(password_webinar)
    b = browser()
    claim(b, link)
    old_key = settings.SECRET_KEY
    enter_password(b, password_webinar, "kawa123")
    settings.SECRET_KEY = "rotated-key-" * 5
    settings.SECRET_KEY_FALLBACKS = [old_key]
    WebinarPage.objects.filter(pk=password_webinar.pk).update(room_password="herbata9")
    assert not room_shown(b.get(password_webinar.url))


def test_forged_pass_cookie_is_ignored(browser, password_webinar):
    link = make_link(password_webinar)
    b = browser()
    claim(b, link)
    b.cookies[f"paidwebinar_device_pass_{password_webinar.pk}"] = "abc.def"
    assert not room_shown(b.get(password_webinar.url))


def test_password_failures_throttled_with_retry_after(browser, password_webinar):
    link = make_link(password_webinar)
    b = browser()
    claim(b, link)
    for _ in range(5):
        assert enter_password(b, password_webinar, "wrong").status_code == 200
    response = enter_password(b, password_webinar, "kawa123")
    assert response.status_code == 429
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= 15 * 60
    assert "Too many attempts" in response.content.decode()
    assert "private" in response["Cache-Control"]
    assert not room_shown(b.get(password_webinar.url))


def test_throttle_is_per_client_not_per_office(browser, index):
    """A colleague's typos behind the same address do not lock others out..."""
    webinar = make_webinar(
        index,
        title="Office",
        slug="office",
        room=room_blocks(),
        room_password="kawa123",
        allow_link_sharing=True,
    )
    typist = browser()
    typist.get(webinar.url)  # gets a CSRF cookie only; identify by device/session
    for _ in range(6):
        enter_password(typist, webinar, "wrong")
    assert enter_password(typist, webinar, "kawa123").status_code == 429
    colleague = browser(HTTP_USER_AGENT="Colleague browser")
    assert enter_password(colleague, webinar, "kawa123").status_code == 302


def test_per_ip_ceiling(browser, index, settings):
    """...but a script rotating identities meets the per-address ceiling."""
    settings.WAGTAIL_PAIDWEBINAR_THROTTLE_IP_FAILURES = 8
    webinar = make_webinar(
        index,
        title="Ceiling",
        slug="ceiling",
        room=room_blocks(),
        room_password="kawa123",
        allow_link_sharing=True,
    )
    for n in range(8):
        enter_password(browser(HTTP_USER_AGENT=f"bot {n}"), webinar, "wrong")
    response = enter_password(browser(HTTP_USER_AGENT="fresh"), webinar, "kawa123")
    assert response.status_code == 429
    other_ip = browser(HTTP_USER_AGENT="fresh", REMOTE_ADDR="198.51.100.7")
    assert enter_password(other_ip, webinar, "kawa123").status_code == 302


def test_password_never_logged(browser, password_webinar, caplog):
    link = make_link(password_webinar)
    b = browser()
    caplog.set_level("DEBUG")
    b.get(f"{password_webinar.url}?access={link.token}")
    claim(b, link)
    enter_password(b, password_webinar, "wrong-secret-typed")
    b.get(f"{password_webinar.url}?access=1.forged")
    assert "wrong-secret-typed" not in caplog.text
    assert "kawa123" not in caplog.text
    assert link.token not in caplog.text
    assert link.token.split(".")[1] not in caplog.text
