import re
import zoneinfo
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


@lru_cache(maxsize=1)
def available_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(value: str) -> None:
    """Accept IANA timezone names only ("Europe/Warsaw", "UTC")."""
    if value not in available_timezones():
        raise ValidationError(
            _(
                "%(value)s is not a known IANA timezone. "
                "Use a name such as Europe/Warsaw."
            ),
            code="invalid_timezone",
            params={"value": value},
        )


def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(available_timezones())]


# "24h, 1h", "2d 30m", "90m": a number and a unit (d, h, m), separated by commas or
# spaces. At most a week per reminder is plenty and keeps typos ("1000d") out.
_OFFSET_RE = re.compile(r"(\d{1,5})\s*([dhm])", re.IGNORECASE)
_UNIT_MINUTES = {"d": 24 * 60, "h": 60, "m": 1}
MAX_REMINDER_MINUTES = 30 * 24 * 60
MAX_REMINDERS = 5


def parse_reminder_offsets(text: str) -> list[int] | None:
    """Minutes before the start, largest first, without duplicates, from
    "24h, 1h"-style text; None when the text is not in that form."""
    parts = [p for p in re.split(r"[,;\s]+", (text or "").strip()) if p]
    minutes: set[int] = set()
    joined = " ".join(parts)
    # Every part must be a number followed by a unit, nothing else ("1h30m" too).
    if _OFFSET_RE.sub("", joined.replace(" ", "")):
        return None
    for number, unit in _OFFSET_RE.findall(joined.replace(" ", "")):
        minutes.add(int(number) * _UNIT_MINUTES[unit.lower()])
    return sorted(minutes, reverse=True)


def validate_reminder_offsets(value: str) -> None:
    """Accept "24h, 1h"-style lists of up to MAX_REMINDERS positive offsets."""
    offsets = parse_reminder_offsets(value)
    if offsets is None:
        raise ValidationError(
            _(
                "Write each reminder as a number and a unit (d, h or m), separated "
                "by commas, e.g. “24h, 1h” or “2d, 30m”."
            ),
            code="invalid_reminder_offsets",
        )
    if any(m <= 0 for m in offsets):
        raise ValidationError(
            _("A reminder must come at least one minute before the start."),
            code="invalid_reminder_offsets",
        )
    if any(m > MAX_REMINDER_MINUTES for m in offsets):
        raise ValidationError(
            _("A reminder can come at most 30 days before the start."),
            code="invalid_reminder_offsets",
        )
    if len(offsets) > MAX_REMINDERS:
        raise ValidationError(
            _("At most %(count)d reminders per webinar."),
            code="invalid_reminder_offsets",
            params={"count": MAX_REMINDERS},
        )
