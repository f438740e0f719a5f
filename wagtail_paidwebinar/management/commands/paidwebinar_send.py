"""Start or resume a mailing: ``manage.py paidwebinar_send MAILING_ID [--sync]``."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from ...conf import get_setting
from ...mailing import jobs, ledger, resume_mailing, start_mailing
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
        else:
            queued = resume_mailing(mailing, enqueue=not sync)
            verb = "Resumed"
        self.stdout.write(f"{verb} mailing {mailing_id}: {queued} recipients to send.")
        if sync and queued:
            self._send_inline(mailing)
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

    def _send_inline(self, mailing: Mailing) -> None:
        """Batches in this process; transient failures wait RETRY_DELAYS between
        passes, then the rows still pending fail."""
        size = max(1, int(get_setting("BATCH_SIZE")))
        delays = [0, *get_setting("RETRY_DELAYS")]
        error = ""
        for attempt, delay in enumerate(delays):
            ids = ledger.pending_ids(mailing.pk)
            if not ids:
                break
            if delay:
                self.stdout.write(f"Retrying {len(ids)} in {delay}s ({error})")
                time.sleep(delay)
            for start in range(0, len(ids), size):
                counts = jobs.send_batch(
                    mailing.pk, ids[start : start + size], attempt, False
                )
                error = counts.get("error", error)
                if ledger.mailing_status(mailing.pk) != MailingStatus.SENDING:
                    return
                self.stdout.write(self._progress(mailing))
        else:
            ids = ledger.pending_ids(mailing.pk)
            if ids:
                ledger.fail_pending(ids, ledger.gave_up_message(len(delays), error))
        ledger.finish_if_complete(mailing.pk)
