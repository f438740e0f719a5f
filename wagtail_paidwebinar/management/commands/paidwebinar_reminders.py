"""Plan every webinar's reminders again and/or send the due ones:
``manage.py paidwebinar_reminders [--send-due]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ...mailing import reminders


class Command(BaseCommand):
    help = (
        "Plan every published webinar's reminders again and schedule their jobs "
        "(after Redis lost its scheduled jobs, or a deploy that changed settings). "
        "With --send-due, also send the reminders that are due now: the way to send "
        "reminders without a scheduler (the embedded queue; run it from cron every "
        "few minutes). Safe to run at any time: a reminder is never sent twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--send-due",
            action="store_true",
            help="Also send, now, every planned reminder whose time has come.",
        )

    def handle(self, *args, send_due: bool, **options):
        webinars, planned = reminders.replan_all()
        self.stdout.write(f"{planned} reminders planned for {webinars} webinars.")
        if send_due:
            started = reminders.send_due()
            for mailing in started:
                self.stdout.write(
                    f"Reminder mailing {mailing.pk} started for “{mailing.webinar}”."
                )
            self.stdout.write(f"{len(started)} due reminders sent.")
