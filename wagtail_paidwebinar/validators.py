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
