"""The access window around the schedule, with a frozen clock."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from tests.fixtures_gate import ROOM_WORD, claim, make_link, room_blocks
from tests.utils import make_webinar

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clear_gate_cache")]

START = dt.datetime(2031, 3, 10, 18, 0, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def windowed(index):
    # 60 minutes long; opens 30 minutes before, closes 15 minutes after the end.
    return make_webinar(
        index,
        title="Windowed",
        slug="windowed",
        starts_at=START,
        duration_minutes=60,
        opens_minutes_before=30,
        closes_minutes_after=15,
        room=room_blocks(),
    )


@pytest.fixture
def bound(browser, windowed):
    link = make_link(windowed)
    b = browser()
    with time_machine.travel(START - dt.timedelta(days=2), tick=False):
        # Claiming ahead of the window is allowed (people confirm when the mail comes).
        assert claim(b, link).status_code == 302
    return b


OPENS = START - dt.timedelta(minutes=30)
CLOSES = START + dt.timedelta(minutes=60 + 15)


@pytest.mark.parametrize(
    ("moment", "expected_status", "room"),
    [
        (OPENS - SECOND, 403, False),
        (OPENS, 200, True),
        (START, 200, True),
        (CLOSES, 200, True),
        (CLOSES + SECOND, 403, False),
    ],
    ids=["1s-before-open", "at-open", "start", "at-close", "1s-after-close"],
)
def test_window_edges(bound, windowed, moment, expected_status, room):
    with time_machine.travel(moment, tick=False):
        response = bound.get(windowed.url)
    assert response.status_code == expected_status
    assert (ROOM_WORD in response.content.decode()) is room


def test_not_open_page_says_when(bound, windowed):
    with time_machine.travel(OPENS - dt.timedelta(hours=1), tick=False):
        body = bound.get(windowed.url).content.decode()
    assert "not open yet" in body
    assert "Europe/Warsaw" in body


def test_closed_page(bound, windowed):
    with time_machine.travel(CLOSES + dt.timedelta(hours=1), tick=False):
        body = bound.get(windowed.url).content.decode()
    assert "closed" in body


def test_link_expiry_edge(browser, windowed):
    link = make_link(windowed, expires_at=START)
    b = browser()
    with time_machine.travel(START - dt.timedelta(days=1), tick=False):
        claim(b, link)
    with time_machine.travel(START - SECOND, tick=False):
        assert ROOM_WORD in b.get(windowed.url).content.decode()
    with time_machine.travel(START, tick=False):
        # expires_at is the first instant the link no longer works.
        assert b.get(windowed.url).status_code == 403


def test_no_window_means_any_time(browser, index):
    webinar = make_webinar(
        index, title="Anytime", slug="anytime", starts_at=START, room=room_blocks()
    )
    link = make_link(webinar)
    b = browser()
    claim(b, link)
    for moment in (START - dt.timedelta(days=300), START + dt.timedelta(days=300)):
        with time_machine.travel(moment, tick=False):
            assert ROOM_WORD in b.get(webinar.url).content.decode()
