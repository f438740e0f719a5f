"""Start or resume a mailing: ``manage.py paidwebinar_send MAILING_ID [--sync]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ...conf import get_setting
from ...mailing import resume_mailing, send_now, start_mailing
from ...models import Mailing, MailingStatus


class Command(BaseCommand):
    help = (
        "Start a draft mailing, or resume a paused or interrupted one (rows left "
        "'sending' longer than WAGTAIL_PAIDWEBINAR_STALE_SENDING_SECONDS are sent "
        "again). Jobs go to the django-rq queue unless --sync sends in this process."
    )

    def add_arguments(self, parser):
        parser.add_argument("mailing_id", type=int)
        parser.add_argument(
            "--sync",
            action="store_true",
            help="Send in this process instead of queueing jobs for a worker.",
        )

    def handle(self, *args, mailing_id: int, sync: bool, **options):
        mailing = Mailing.objects.filter(pk=mailing_id).first()
        if mailing is None:
            raise CommandError(f"No mailing with id {mailing_id}.")
        if mailing.status == MailingStatus.DRAFT:
            queued = start_mailing(mailing, enqueue=not sync)
            verb = "Started"
        elif mailing.status in (MailingStatus.CANCELLED, MailingStatus.DONE):
            self.stdout.write(
                f"Mailing {mailing_id} is {mailing.get_status_display().lower()}; "
                f"nothing to send. {self._progress(mailing)}"
            )
            return
        elif mailing.status == MailingStatus.PREPARING:
            # Its audience is resolved by a job: there is nothing to count yet.
            resume_mailing(mailing, enqueue=not sync)
            self.stdout.write(
                f"Mailing {mailing_id} is still being prepared in the background: "
                "a worker puts its recipient list together, then sending starts by "
                "itself." + ("" if sync else " Its preparation was queued again.")
            )
            return
        else:
            queued = resume_mailing(mailing, enqueue=not sync)
            verb = "Resumed"
        self.stdout.write(f"{verb} mailing {mailing_id}: {queued} recipients to send.")
        if sync and queued:
            send_now(
                mailing,
                on_batch=lambda: self.stdout.write(self._progress(mailing)),
                on_retry=lambda rows, delay, error: self.stdout.write(
                    f"Retrying {rows} in {delay:g}s ({error})"
                ),
            )
            mailing.refresh_from_db()
            self.stdout.write(
                self.style.SUCCESS(f"Finished. {self._progress(mailing)}")
            )
        elif queued:
            self.stdout.write(
                f"Queued on '{get_setting('QUEUE')}'; a worker sends them "
                f"(manage.py rqworker {get_setting('QUEUE')} --with-scheduler)."
            )

    def _progress(self, mailing: Mailing) -> str:
        p = mailing.progress()
        return (
            f"sent {p['sent']}, failed {p['failed']}, pending {p['pending']}, "
            f"sending {p['sending']} of {p['total']}"
        )
