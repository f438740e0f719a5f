"""Reminders: one row per webinar, start and offset (mailing/reminders.py plans and
sends them; the row is what makes "never twice for the same reminder" hold)."""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.utils.translation import gettext_lazy as _


class ReminderStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    SENT = "sent", _("Sent")
    # The start moved, reminders were turned off, or the webinar was unpublished
    # or cancelled: a scheduled job for this row does nothing.
    DROPPED = "dropped", _("Dropped")


class Reminder(models.Model):
    """The reminder ``offset_minutes`` before the start ``starts_at`` of ``webinar``.

    Unique per (webinar, start, offset): planning the same start again finds the
    row instead of adding one, and the mailing that sends it points back to it
    with a unique key (``Mailing.reminder``), so a duplicate or re-run job cannot
    create a second mailing.
    """

    webinar = models.ForeignKey(
        "wagtail_paidwebinar.WebinarPage",
        verbose_name=_("webinar"),
        on_delete=models.CASCADE,
        related_name="reminders",
    )
    starts_at = models.DateTimeField(_("for the start at"))
    offset_minutes = models.PositiveIntegerField(_("minutes before the start"))
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=ReminderStatus.choices,
        default=ReminderStatus.PLANNED,
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")
        ordering = ["starts_at", "-offset_minutes"]
        constraints = [
            models.UniqueConstraint(
                fields=["webinar", "starts_at", "offset_minutes"],
                name="paidwebinar_one_reminder_per_offset",
            )
        ]
        indexes = [models.Index(fields=["webinar", "status"])]

    def __str__(self) -> str:
        return f"{self.webinar_id}: {self.offset_minutes} min before {self.starts_at}"

    @property
    def due_at(self) -> dt.datetime:
        return self.starts_at - dt.timedelta(minutes=self.offset_minutes)
