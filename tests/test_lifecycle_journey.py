"""Issue 16's "done when", end to end: one webinar's life through the public surface.

The organiser acts in the admin (a logged-in moderator with the plugin's
permissions), participants are separate browsers (test clients with CSRF checks),
and every e-mail is read from what a real SMTP server (aiosmtpd) received from a
real RQ worker started ``--with-scheduler`` on real Redis and PostgreSQL:

1. publish a webinar, generate links with e-mails, send the invitations;
2. move the start to an hour from now and notify the participants: the update's
   ``.ics`` has the invitation's UID and a higher SEQUENCE; the reminder one hour
   before the new start is re-planned and arrives (the scheduler fires it);
3. a participant recovers a lost link by e-mail and that link admits them;
4. another participant's link opened in a second browser is refused, a move code
   arrives by e-mail, entered there it admits the second browser, the first is out;
5. after the end the room shows the replay until ``replay_until``, not after.

Run with DATABASE_URL=postgres://... REDIS_URL=redis://...; skipped otherwise.
The worker uses the real clock, so the reminder falls due seconds after the move;
the replay steps move the test process's clock only (the worker is done by then).
"""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import icalendar
import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from wagtail.test.utils.form_data import nested_form_data, rich_text, streamfield

from tests.fixtures_invitations import (
    LINK_URLS,
    MAILING_COMPOSE,
    MAILING_SEND,
    draftail,
)
from tests.fixtures_links import LINK_PERMS
from tests.fixtures_mailing import wait_for
from tests.utils import admin_url, make_index, make_user
from wagtail_paidwebinar.models import PersonalLink, WebinarPage

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.usefixtures("clear_gate_cache"),
]

BASE = "https://webinars.example.com"
PASSWORD = "kawa123"
ROOM_WORD = "Roomcode5521"
REPLAY_WORD = "Recording8830"
UA = "Mozilla/5.0 (X11; Linux x86_64) Journey/1.0"
LINK_RE = re.compile(re.escape(BASE) + r"(/\S+?\?access=[\w.-]+)")
CODE_RE = re.compile(r"^\s+(\d{6})\s*$", re.M)
# Seconds between the move and the reminder it re-plans (one hour before the new
# start): the edit POST must plan it before it is due, even on a busy machine;
# the lost-link and move steps run meanwhile.
REMINDER_AFTER = 6


# --- what a browser does with a page --------------------------------------------------


class Forms(HTMLParser):
    """The forms of a page: action, fields (hidden and named buttons) and the
    text of their submit buttons."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._button = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action"), "fields": {}, "text": ""})
        elif self.forms and tag == "input" and a.get("type") == "hidden":
            self.forms[-1]["fields"][a["name"]] = a.get("value") or ""
        elif self.forms and tag == "button":
            self._button = True

    def handle_endtag(self, tag):
        if tag == "button":
            self._button = False

    def handle_data(self, data):
        if self._button and self.forms:
            self.forms[-1]["text"] += data


def submit(browser: Client, response, button: str, **fields):
    """Press ``button`` (part of its text) on the page ``response`` showed, as a
    browser would: the form's hidden fields (CSRF token included) plus ``fields``."""
    page = response.content.decode()
    for form in Forms(page).forms:
        if button in " ".join(form["text"].split()):
            action = form["action"] or response.wsgi_request.get_full_path()
            return browser.post(
                action.replace("&amp;", "&"), {**form["fields"], **fields}
            )
    raise AssertionError(f"no button {button!r} on the page:\n{page[:3000]}")


def text(response) -> str:
    return " ".join(response.content.decode().split())


# --- what arrives by e-mail -----------------------------------------------------------


def mails(smtp, to: str, subject: str = "") -> list:
    return [
        m
        for m in smtp.messages
        if m["To"].addresses[0].addr_spec == to and subject in str(m["Subject"])
    ]


def wait_mail(smtp, to: str, subject: str, count: int = 1, worker=None):
    wait_for(
        lambda: len(mails(smtp, to, subject)) >= count,
        timeout=60,
        interval=0.05,
        message=f"{count} e-mail(s) to {to} with {subject!r}\n"
        + (worker.log() if worker else ""),
    )
    return mails(smtp, to, subject)[count - 1]


def body(message) -> str:
    return message.get_body(("plain",)).get_content()


def link_in(message) -> str:
    """The personal link of a received e-mail, as a path for the test client."""
    return LINK_RE.search(body(message)).group(1)


def event_of(message):
    parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1
    cal = icalendar.Calendar.from_ical(parts[0].get_content())
    return cal, next(iter(cal.walk("VEVENT")))


# --- the organiser -------------------------------------------------------------------


def local(moment: dt.datetime) -> str:
    """A moment as the admin's date/time widget posts it (the site's timezone)."""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def webinar_form(starts_at: dt.datetime, replay_until: dt.datetime, **overrides):
    data = {
        "title": "Django na produkcji",
        "slug": "django-na-produkcji",
        "intro": rich_text("<p>Public teaser.</p>"),
        "starts_at": local(starts_at),
        "duration_minutes": "60",
        "timezone": "Europe/Warsaw",
        "presenter": "Ola Organiser",
        "cta_url": "",
        "cta_label": "",
        "room": streamfield([("text", rich_text(f"<p>{ROOM_WORD}</p>"))]),
        "room_password": PASSWORD,
        "max_devices_per_link": "1",
        "max_device_moves": "3",
        "opens_minutes_before": "",
        "closes_minutes_after": "15",
        "reminders_enabled": "on",
        "reminder_offsets": "24h, 1h",
        "replay": streamfield(
            [
                ("text", rich_text(f"<p>{REPLAY_WORD}</p>")),
                ("stream", {"url": "https://vimeo.com/123456", "title": ""}),
            ]
        ),
        "replay_until": local(replay_until),
    }
    data.update(overrides)
    return nested_form_data(data)


@pytest.fixture
def organiser(transactional_db):
    """A moderator (publishes pages) who may also issue links and send mailings."""
    user = make_user(
        "organiser",
        perms=[
            *[LINK_PERMS[k] for k in ("view", "add", "change")],
            LINK_URLS,
            *MAILING_COMPOSE,
            MAILING_SEND,
        ],
    )
    user.groups.add(Group.objects.get(name="Moderators"))
    client = Client()
    client.force_login(user)
    return client


def test_a_webinars_lifecycle(organiser, real_queue, rq_worker, smtp_server):
    worker = rq_worker()  # boots while the organiser works
    index = make_index()
    first_start = (timezone.now() + dt.timedelta(days=7)).replace(microsecond=0)
    replay_until = (first_start + dt.timedelta(days=14)).replace(second=0)

    # 1. Publish, issue links with e-mails, send the invitations -------------------
    add_url = reverse(
        "wagtailadmin_pages:add", args=["wagtail_paidwebinar", "webinarpage", index.pk]
    )
    response = organiser.post(
        add_url, {**webinar_form(first_start, replay_until), "action-publish": "1"}
    )
    assert response.status_code == 302, response.context["form"].errors
    webinar = WebinarPage.objects.get(slug="django-na-produkcji")
    assert webinar.live and webinar.starts_at == first_start

    response = organiser.post(
        admin_url(PersonalLink, "generate"),
        {
            "webinar": webinar.pk,
            "names": "Anna Nowak <anna@example.org>\nJan Kowalski, jan@example.org",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert PersonalLink.objects.filter(webinar=webinar).count() == 2
    edit_url = reverse("wagtailadmin_pages:edit", args=[webinar.pk])
    assert "to 2 people" in text(organiser.get(edit_url))

    response = organiser.post(
        admin_url("mailing", "create"),
        {
            "webinar": webinar.pk,
            "include_link_holders": "on",
            "subscriber_list": "",
            "subject": "Your access to {{ webinar }}",
            "body_html": draftail("Hello {{ name }}, your link: {{ link }}"),
            "signature": "",
        },
    )
    assert response.status_code == 302
    mailing_pk = int(response.url.rstrip("/").rsplit("/", 1)[-1])
    organiser.post(admin_url("mailing", "send", mailing_pk))
    invitation = {
        who: wait_mail(smtp_server, f"{who}@example.org", "Your access", worker=worker)
        for who in ("anna", "jan")
    }
    assert f"Room password: {PASSWORD}" in body(invitation["anna"])
    _cal, first_event = event_of(invitation["anna"])

    # Anna joins in her first browser with the invitation's link and password.
    laptop = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=f"{UA} laptop")
    confirm = laptop.get(link_in(invitation["anna"]))
    assert "Join as Anna Nowak" in text(confirm)
    assert submit(laptop, confirm, "Join as").status_code == 302
    ask = laptop.get(webinar.url)
    password = re.search(r"Room password: (\S+)", body(invitation["anna"])).group(1)
    assert submit(laptop, ask, "Enter the room", password=password).status_code == 302
    assert ROOM_WORD in text(laptop.get(webinar.url))

    # 2. The start moves to an hour from now: notify; the reminder is re-planned --
    new_start = timezone.now().replace(microsecond=0) + dt.timedelta(
        hours=1, seconds=REMINDER_AFTER
    )
    response = organiser.post(
        edit_url,
        {**webinar_form(new_start, replay_until), "action-publish": "1"},
        follow=True,
    )
    assert "changed since participants were last e-mailed" in text(response)
    notify_url = reverse("wagtail_paidwebinar_notify_schedule", args=[webinar.pk])
    assert notify_url in response.content.decode()
    confirm = organiser.get(notify_url)
    assert "2 participants" in text(confirm)
    assert organiser.post(notify_url).status_code == 302

    update = wait_mail(smtp_server, "anna@example.org", "New time", worker=worker)
    wait_mail(smtp_server, "jan@example.org", "New time", worker=worker)
    cal, event = event_of(update)
    assert cal["METHOD"] == "PUBLISH"
    assert event["UID"] == first_event["UID"]
    assert event["SEQUENCE"] > first_event["SEQUENCE"]
    assert event.decoded("dtstart") == new_start
    assert link_in(update) == link_in(invitation["anna"])

    # 3. Jan lost his e-mail: the lost-link form sends it again; it admits him ------
    phone = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=f"{UA} phone")
    teaser = phone.get(webinar.url)
    lost_url = reverse("wagtail_paidwebinar:lost_link", args=[webinar.pk])
    assert lost_url in teaser.content.decode()
    form = phone.get(lost_url)
    sent = submit(phone, form, "Send my link again", email="Jan@Example.org")
    assert sent.status_code == 200
    assert "Check your inbox" in text(sent)
    again = wait_mail(smtp_server, "jan@example.org", "Your personal link", 1, worker)
    assert link_in(again) == link_in(invitation["jan"])
    assert "access=" not in sent.content.decode()
    confirm = phone.get(link_in(again))
    assert "Join as Jan Kowalski" in text(confirm)
    assert submit(phone, confirm, "Join as").status_code == 302
    ask = phone.get(webinar.url)
    assert submit(phone, ask, "Enter the room", password=PASSWORD).status_code == 302
    assert ROOM_WORD in text(phone.get(webinar.url))

    # 4. Anna opens her link on a second browser: refused, moved with a code ------
    tablet = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=f"{UA} tablet")
    refused = tablet.get(link_in(update))
    assert refused.status_code == 403
    assert "already in use on another device" in text(refused)
    assert lost_url in refused.content.decode()
    asked = submit(tablet, refused, "E-mail a code to")
    assert asked.status_code == 200
    assert "a•••@example.org" in text(asked)
    code_mail = wait_mail(smtp_server, "anna@example.org", "Your code", worker=worker)
    code = CODE_RE.search(body(code_mail)).group(1)
    moved = submit(tablet, asked, "Move to this browser", move_code=code)
    assert moved.status_code == 302
    ask = tablet.get(webinar.url)
    assert submit(tablet, ask, "Enter the room", password=PASSWORD).status_code == 302
    assert ROOM_WORD in text(tablet.get(webinar.url))
    assert ROOM_WORD not in text(laptop.get(webinar.url))  # out at its next request
    assert laptop.get(link_in(invitation["anna"])).status_code == 403

    # The reminder one hour before the new start (due seconds after the move) ------
    for who in ("anna", "jan"):
        reminder = wait_mail(
            smtp_server, f"{who}@example.org", "Reminder", worker=worker
        )
        _cal, reminder_event = event_of(reminder)
        assert reminder_event["UID"] == first_event["UID"]
        assert reminder_event.decoded("dtstart") == new_start
        assert link_in(reminder) == link_in(invitation[who])
        assert f"Room password: {PASSWORD}" in body(reminder)
    # Everyone got exactly: invitation, update, reminder (+ Jan's resend, Anna's code).
    assert smtp_server.by_recipient() == {"anna@example.org": 4, "jan@example.org": 4}

    # 5. After the end, the replay until replay_until, then nothing ---------------
    end = new_start + dt.timedelta(minutes=60)
    with time_machine.travel(end + dt.timedelta(minutes=1), tick=False):
        room = text(tablet.get(webinar.url))
        assert REPLAY_WORD in room and "player.vimeo.com/video/123456" in room
        teaser = text(Client().get(webinar.url))
        assert "Participants can watch the replay with their personal link." in teaser
    with time_machine.travel(replay_until, tick=False):
        assert REPLAY_WORD in text(tablet.get(webinar.url))
    with time_machine.travel(replay_until + dt.timedelta(seconds=1), tick=False):
        closed = tablet.get(webinar.url)
        assert closed.status_code == 403
        assert REPLAY_WORD not in text(closed) and ROOM_WORD not in text(closed)
        assert "The replay is no longer available." in text(Client().get(webinar.url))
