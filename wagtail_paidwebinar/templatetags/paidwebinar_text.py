"""Template filters of the public pages' sentences."""

from __future__ import annotations

import re

from django import template

register = template.Library()

# Two periods that are not part of an ellipsis.
_DOUBLE_PERIOD = re.compile(r"(?<!\.)\.\.(?!\.)")


@register.filter(is_safe=True)
def one_period(value: str) -> str:
    """A sentence ending in a date or time ends with one period.

    Why: English DATETIME_FORMAT ends in "p.m."/"a.m.", and a translated sentence
    such as "Available until {{ until }}." then ends in "p.m..". The period stays
    in the msgid (other languages' formats end without one); this drops the
    second one where they meet. Safe: it only removes a period."""
    return _DOUBLE_PERIOD.sub(".", str(value))
