"""The replay: a recording shown in the room after the end until ``replay_until``,
behind the same gate (window, link rules, device binding), announced on the teaser.
Frozen clock throughout."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from wagtail.rich_text import RichText

from tests.fixtures_gate import (
    ROOM_WORD,
    claim,
    enter_password,
    link_path,
    make_link,
    material_url,
    room_blocks,
)
from tests.utils import make_webinar
from wagtail_paidwebinar.models import WebinarPage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clear_gate_cache")]

START = dt.datetime(2031, 3, 10, 17, 0, tzinfo=dt.UTC)  # 18:00 in Warsaw
END = START + dt.timedelta(minutes=60)
UNTIL = END + dt.timedelta(days=7)
SECOND = dt.timedelta(seconds=1)
REPLAY_WORD = "Recording4410"
SLIDES = b"%PDF-1.4 secret slides"


def replay_blocks(document=None) -> list:
    blocks: list = [
        ("text", RichText(f"<p>{REPLAY_WORD}</p>")),
        ("stream", {"url": "https://www.youtube.com/watch?v=abcdEFGH123"}),
    ]
    if document is not None:
        blocks.append(("materials", {"heading": "Recording", "documents": [document]}))
    return blocks


@pytest.fixture(autouse=True)
def documents_on_disk(settings, tmp_path):
    settings.WAGTAILDOCS_SERVE_METHOD = "serve_view"
    settings.MEDIA_ROOT = str(tmp_path)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }


def make_replay_webinar(index, document=None, **fields) -> WebinarPage:
    fields.setdefault("closes_minutes_after", 15)
    fields.setdefault("replay_until", UNTIL)
    fields.setdefault("room", room_blocks())
    return make_webinar(
        index,
        title="Recorded",
        slug="recorded",
        starts_at=START,
        duration_minutes=60,
        replay=replay_blocks(document),
        **fields,
    )


@pytest.fixture
def recorded(index, document):
    return make_replay_webinar(index, document)


@pytest.fixture
def bound(browser, recorded):
    b = browser()
    with time_machine.travel(START - dt.timedelta(days=2), tick=False):
        assert claim(b, make_link(recorded)).status_code == 302
    return b


def served(response) -> bool:
    return response.status_code == 200 and (
        b"".join(response.streaming_content) == SLIDES
    )


# --- visibility at the window's edges ---------------------------------------------


@pytest.mark.parametrize(
    ("moment", "status", "room", "replay"),
    [
        (END - SECOND, 200, True, False),
        (END, 200, True, False),
        (END + SECOND, 200, True, True),
        (END + dt.timedelta(days=3), 200, True, True),
        (UNTIL, 200, True, True),
        (UNTIL + SECOND, 403, False, False),
    ],
    ids=["1s-before-end", "at-end", "1s-after-end", "during", "at-until", "after"],
)
def test_replay_edges_with_an_access_window(
    bound, recorded, document, moment, status, room, replay
):
    # The access window alone (15 minutes after the end) would have closed the room
    # long before replay_until: the replay keeps it open until then, not longer.
    with time_machine.travel(moment, tick=False):
        response = bound.get(recorded.url)
        body = response.content.decode()
        material = bound.get(material_url(recorded, document))
    assert response.status_code == status
    assert (ROOM_WORD in body) is room
    assert (REPLAY_WORD in body) is replay
    assert ("youtube-nocookie.com/embed/abcdEFGH123" in body) is replay
    assert served(material) is replay
    if status == 403:
        assert "The room is closed" in body


def test_without_an_access_window_the_room_stays_and_the_replay_goes(
    browser, index, document
):
    page = make_replay_webinar(index, document, closes_minutes_after=None)
    b = browser()
    claim(b, make_link(page))
    with time_machine.travel(UNTIL, tick=False):
        assert REPLAY_WORD in b.get(page.url).content.decode()
        assert served(b.get(material_url(page, document)))
    with time_machine.travel(UNTIL + SECOND, tick=False):
        body = b.get(page.url).content.decode()
        assert ROOM_WORD in body and REPLAY_WORD not in body
        assert b.get(material_url(page, document)).status_code == 404
        # Wagtail's own document URL is gated alike.
        assert b.get(document.url).status_code == 403


def test_replay_without_an_end_date_lasts_as_long_as_the_room(browser, index):
    page = make_replay_webinar(index, replay_until=None, closes_minutes_after=60)
    b = browser()
    claim(b, make_link(page))
    with time_machine.travel(END + dt.timedelta(minutes=60), tick=False):
        assert REPLAY_WORD in b.get(page.url).content.decode()
    with time_machine.travel(END + dt.timedelta(minutes=60) + SECOND, tick=False):
        assert b.get(page.url).status_code == 403


def test_replay_document_before_the_end_is_refused_at_both_urls(
    bound, recorded, document
):
    with time_machine.travel(END - SECOND, tick=False):
        assert bound.get(material_url(recorded, document)).status_code == 404
        assert bound.get(document.url).status_code == 403
    with time_machine.travel(END + SECOND, tick=False):
        response = bound.get(document.url)
        assert response.status_code == 302
        assert response["Location"] == material_url(recorded, document)


def test_a_document_in_the_room_too_follows_the_room(browser, index, document):
    page = make_replay_webinar(
        index,
        document,
        closes_minutes_after=None,
        room=[("materials", {"heading": "Slides", "documents": [document]})],
    )
    b = browser()
    claim(b, make_link(page))
    with time_machine.travel(END - SECOND, tick=False):
        assert served(b.get(material_url(page, document)))


def test_replay_refused_to_visitors_the_gate_refuses(client, recorded, document):
    with time_machine.travel(END + SECOND, tick=False):
        body = client.get(recorded.url).content.decode()
        assert REPLAY_WORD not in body and "youtube" not in body
        assert client.get(material_url(recorded, document)).status_code == 404
        assert client.get(document.url).status_code == 403


# --- the link rules and the device binding apply during the replay ---------------


def test_second_browser_is_refused_during_the_replay(browser, bound, recorded):
    link = recorded.personal_links.get()
    with time_machine.travel(END + dt.timedelta(days=1), tick=False):
        other = browser()
        response = other.get(link_path(link))
        assert response.status_code == 403
        assert "another device" in response.content.decode()
        assert claim(other, link).status_code == 403
        assert REPLAY_WORD not in other.get(recorded.url).content.decode()
        # The first browser still watches.
        assert REPLAY_WORD in bound.get(recorded.url).content.decode()


def test_link_claimed_after_the_end_admits_to_the_replay(browser, recorded):
    link = make_link(recorded, "Late Viewer")
    b = browser()
    with time_machine.travel(END + dt.timedelta(days=1), tick=False):
        assert claim(b, link).status_code == 302
        assert REPLAY_WORD in b.get(recorded.url).content.decode()


def test_revoked_and_expired_links_are_refused_during_the_replay(
    browser, bound, recorded
):
    link = recorded.personal_links.get()
    link.expires_at = END + dt.timedelta(days=1)
    link.save(update_fields=["expires_at"])
    with time_machine.travel(END + dt.timedelta(days=1) - SECOND, tick=False):
        assert REPLAY_WORD in bound.get(recorded.url).content.decode()
    with time_machine.travel(END + dt.timedelta(days=1), tick=False):
        response = bound.get(recorded.url)
        assert response.status_code == 403
        assert REPLAY_WORD not in response.content.decode()


def test_room_password_is_still_asked_during_the_replay(browser, index):
    page = make_replay_webinar(index, room_password="kawa123")
    b = browser()
    with time_machine.travel(END + SECOND, tick=False):
        claim(b, make_link(page))
        body = b.get(page.url).content.decode()
        assert REPLAY_WORD not in body and 'name="password"' in body
        assert enter_password(b, page, "kawa123").status_code == 302
        assert REPLAY_WORD in b.get(page.url).content.decode()


# --- what the teaser says ------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (
            START - dt.timedelta(days=1),
            "Replay for participants from March 10, 2031, 7 p.m. until "
            "March 17, 2031, 7 p.m.",
        ),
        (END + SECOND, "Replay for participants until March 17, 2031, 7 p.m."),
        (UNTIL + SECOND, "The replay is no longer available."),
    ],
    ids=["before", "during", "after"],
)
def test_teaser_says_when_the_replay_is_available(client, recorded, moment, text):
    with time_machine.travel(moment, tick=False):
        body = client.get(recorded.url).content.decode()
        listing = client.get(recorded.get_parent().url).content.decode()
    assert text in " ".join(body.split())
    assert text in " ".join(listing.split())


def test_teaser_after_the_end_says_it_took_place_and_the_replay_is_open(
    client, recorded
):
    with time_machine.travel(END + SECOND, tick=False):
        body = " ".join(client.get(recorded.url).content.decode().split())
    assert "This webinar took place on March 10, 2031." in body
    assert "Participants can watch the replay with their personal link." in body
    with time_machine.travel(UNTIL + SECOND, tick=False):
        body = " ".join(client.get(recorded.url).content.decode().split())
    assert "The room is closed." in body
    assert "watch the replay" not in body


def test_room_before_the_end_announces_the_replay(bound, recorded):
    with time_machine.travel(START, tick=False):
        body = " ".join(bound.get(recorded.url).content.decode().split())
    assert (
        "A replay will be available here after the webinar, until "
        "March 17, 2031, 7 p.m." in body
    )


def test_no_replay_no_announcement(client, index):
    page = make_webinar(
        index, title="Plain", slug="plain", starts_at=START, closes_minutes_after=60
    )
    for moment in (START - dt.timedelta(days=1), END + SECOND):
        with time_machine.travel(moment, tick=False):
            body = client.get(page.url).content.decode()
        assert "Replay" not in body and "replay" not in body


# --- editing -------------------------------------------------------------------------


def test_editor_preview_shows_the_replay_before_the_end(recorded):
    with time_machine.travel(START - dt.timedelta(days=1), tick=False):
        response = recorded.make_preview_request()
    body = " ".join(response.content.decode().split())
    assert REPLAY_WORD in body
    assert "participants see the replay only after the webinar ends" in body


def test_replay_is_not_in_the_api_or_search_fields():
    names = {f.field_name for f in WebinarPage.search_fields}
    names |= {f.name for f in WebinarPage.api_fields}
    assert "replay" not in names and "room" not in names


def test_sentences_ending_in_a_time_end_with_one_period(bound, recorded, client, index):
    # English times end in "p.m."; the sentence's own period must not double it.
    plain = make_webinar(
        index, title="Plain", slug="plain", starts_at=START, closes_minutes_after=60
    )
    pages = []
    for moment in (START - dt.timedelta(days=1), START, END + SECOND):
        with time_machine.travel(moment, tick=False):
            pages += [
                bound.get(recorded.url),
                client.get(recorded.url),
                client.get(recorded.get_parent().url),
                client.get(plain.url),
            ]
    bodies = [" ".join(p.content.decode().split()) for p in pages]
    assert all("p.m.." not in b and "a.m.." not in b for b in bodies)
    for sentence in (
        "Replay for participants from March 10, 2031, 7 p.m. until "
        "March 17, 2031, 7 p.m.",
        "A replay will be available here after the webinar, until "
        "March 17, 2031, 7 p.m.",
        "Available until March 17, 2031, 7 p.m.",
        "Replay for participants until March 17, 2031, 7 p.m.",
        "Participants can open the room with their personal link until "
        "March 10, 2031, 8 p.m.",
    ):
        assert any(sentence in b for b in bodies), sentence


def test_the_replay_comes_before_the_finished_live_room(bound, recorded):
    with time_machine.travel(START, tick=False):
        live = bound.get(recorded.url).content.decode()
    with time_machine.travel(END + SECOND, tick=False):
        after = bound.get(recorded.url).content.decode()
    assert live.index(ROOM_WORD) < live.index("A replay will be available here")
    assert after.index(REPLAY_WORD) < after.index(ROOM_WORD)
