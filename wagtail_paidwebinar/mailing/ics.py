"""The ``.ics`` invitation attached to every message (icalendar).

The calendar is built once per mailing; only the personal link differs between
recipients, so :func:`personal_ics` inserts it as its own folded content lines
instead of running icalendar again for each message.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import WebinarPage
from ..utils import absolute_page_url

PRODID = "-//wagtail-paidwebinar//invitation//EN"
_END_EVENT = "END:VEVENT\r\n"


def event_uid(webinar: WebinarPage, host: str) -> str:
    """Stable per webinar and site: every invitation updates the same event."""
    return f"paidwebinar-{webinar.pk}@{host or 'localhost'}"


PUBLISH = "PUBLISH"
CANCEL = "CANCEL"


def build_calendar(
    webinar: WebinarPage,
    *,
    sequence: int,
    host: str,
    method: str = PUBLISH,
    organizer: tuple[str, str] | None = None,
) -> str:
    """The VCALENDAR with VTIMEZONE, UID, SEQUENCE and the start and end in the
    webinar's timezone; no personal data.

    Every e-mail about a webinar carries the same UID and a higher SEQUENCE than
    the one before (``Mailing.ics_sequence``), so a calendar moves or removes the
    event it already has instead of adding a second one. The first invitation,
    reminders and schedule changes are METHOD:PUBLISH (an event announced to
    people who are not tracked as iTIP attendees: no ATTENDEE list, no RSVP
    buttons) with STATUS:CONFIRMED; a cancellation is METHOD:CANCEL with
    STATUS:CANCELLED (a reopening is a PUBLISH again, higher SEQUENCE). Outlook
    applies either only when the MIME part's ``method`` parameter says the same
    (message.py takes it from the template). ``organizer`` (name, address) is
    the sender: RFC 5546 requires ORGANIZER in both methods.
    """
    import icalendar  # only when a mailing starts, not in every sending job

    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", method)
    event = icalendar.Event()
    event.add("uid", event_uid(webinar, host))
    event.add("sequence", sequence)
    # CONFIRMED on every PUBLISH: a calendar that kept a cancelled event (marked,
    # not removed) shows it as taking place again after a reopening.
    event.add("status", "CANCELLED" if method == CANCEL else "CONFIRMED")
    if organizer is not None and organizer[1]:
        address = icalendar.vCalAddress(f"mailto:{organizer[1]}")
        if organizer[0]:
            address.params["cn"] = icalendar.vText(organizer[0])
        event.add("organizer", address)
    event.add("dtstamp", timezone.now().astimezone(dt.UTC))
    event.add("dtstart", webinar.local_starts_at)
    event.add("dtend", webinar.local_ends_at)
    event.add("summary", webinar.title)
    event.add("location", absolute_page_url(webinar))
    cal.add_component(event)
    # A VTIMEZONE covering the year around the event keeps the file small.
    start = webinar.local_starts_at.date()
    cal.add_missing_timezones(
        first_date=start - dt.timedelta(days=366),
        last_date=start + dt.timedelta(days=366),
    )
    return cal.to_ical().decode("utf-8")


def _escape_text(value: str) -> str:
    # RFC 5545 3.3.11 TEXT escaping.
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """Fold a content line at 75 octets (RFC 5545 3.1) without splitting a UTF-8
    character; the result ends with CRLF."""
    if line.isascii():  # one octet per character: slice (the common case, links)
        pieces = [line[:75]]
        pieces += [" " + line[i : i + 74] for i in range(75, len(line), 74)]
        return "\r\n".join(pieces) + "\r\n"
    out: list[str] = []
    current = ""
    size = 0
    limit = 75
    for char in line:
        n = len(char.encode("utf-8"))
        if size + n > limit:
            out.append(current)
            current, size, limit = " ", 1, 75
        current += char
        size += n
    out.append(current)
    return "\r\n".join(out) + "\r\n"


def personal_ics(calendar: str, *, link: str, description: str) -> str:
    """``calendar`` with the recipient's URL and DESCRIPTION added to the event."""
    lines = fold("URL;VALUE=URI:" + link) + fold(
        "DESCRIPTION:" + _escape_text(description)
    )
    head, sep, tail = calendar.rpartition(_END_EVENT)
    if not sep:
        return calendar
    return head + lines + sep + tail


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


def default_description(link: str) -> str:
    return _("Your personal link: %(link)s") % {"link": link}
