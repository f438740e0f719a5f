"""Template tags of the plugin's admin panels."""

from __future__ import annotations

from django import template
from django.urls import reverse

from ..mailing import reminders, schedule
from ..permissions import can_change_schedule

register = template.Library()


@register.inclusion_tag("wagtail_paidwebinar/admin/schedule_status.html")
def paidwebinar_schedule_status(page, request):
    """The webinar's reminders, cancellation and un-notified schedule change, as
    the edit page shows them (ScheduleStatusPanel)."""
    user = getattr(request, "user", None)
    may_change = user is not None and can_change_schedule(user, page)
    return {
        "webinar": page,
        "cancelled": page.is_cancelled,
        "next": reminders.next_reminder(page),
        "needs_notice": may_change and schedule.needs_notice(page),
        "notify_url": (
            reverse("wagtail_paidwebinar_notify_schedule", args=[page.pk])
            if may_change
            else ""
        ),
    }
