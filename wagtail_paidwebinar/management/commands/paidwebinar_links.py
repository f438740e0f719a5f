"""Generate personal links from a file of names and print them.

    manage.py paidwebinar_links WEBINAR --names-file F
        [--expires-at ISO | --valid-for 7d] [--format csv|json] [--all-or-nothing]

WEBINAR is the webinar page's id or slug; ``--names-file -`` reads standard input.
Problems with the lines are reported on stderr; the exit status is non-zero when the
webinar, the file or the date is bad, or when any line was rejected.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ... import conf
from ...actions import export_header, export_rows, generate_links
from ...csvutils import csv_text, read_upload
from ...models import PersonalLink, WebinarPage

_DURATION_RE = re.compile(r"^\s*(\d{1,5})\s*([dhw]?)\s*$", re.IGNORECASE)
_UNITS = {"": "days", "d": "days", "h": "hours", "w": "weeks"}


def find_webinar(value: str) -> WebinarPage | None:
    """A webinar by page id or slug (None when there is none or it is ambiguous)."""
    if value.isdigit():
        return WebinarPage.objects.filter(pk=int(value)).first()
    matches = list(WebinarPage.objects.filter(slug=value)[:2])
    return matches[0] if len(matches) == 1 else None


def parse_expiry(expires_at: str | None, valid_for: str | None) -> dt.datetime | None:
    """The expiry from ``--expires-at`` (ISO date or date-time, local time when naive)
    or ``--valid-for`` (``7d``, ``12h``, ``2w``; a bare number is days)."""
    if expires_at:
        try:
            value = parse_datetime(expires_at)
            if value is None and (day := parse_date(expires_at)) is not None:
                # A date alone: the end of that day, local time.
                value = dt.datetime.combine(day, dt.time(23, 59, 59))
        except ValueError:
            value = None
        if value is None:
            raise CommandError(
                f"--expires-at: {expires_at!r} is not an ISO date or date-time "
                "(e.g. 2026-12-31 or 2026-12-31T18:00+01:00)."
            )
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        if value <= timezone.now():
            raise CommandError("--expires-at is in the past.")
        return value
    if valid_for:
        match = _DURATION_RE.match(valid_for)
        if not match or int(match[1]) == 0:
            raise CommandError(
                f"--valid-for: {valid_for!r} is not a duration like 7d, 12h or 2w."
            )
        amount = int(match[1])
        unit = _UNITS[match[2].lower()]
        if unit == "days" and amount > 36500 or unit == "weeks" and amount > 5200:
            raise CommandError("--valid-for is too long.")
        return timezone.now() + dt.timedelta(**{unit: amount})
    return None


class Command(BaseCommand):
    help = "Generate personal links for a webinar from a file of names and print them."

    def add_arguments(self, parser):
        parser.add_argument("webinar", help="Webinar page id or slug.")
        parser.add_argument(
            "--names-file",
            required=True,
            help="One participant a line: 'Name', 'Name <email>' or 'Name, email'. "
            "'-' reads standard input.",
        )
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--expires-at", help="ISO date or date-time.")
        group.add_argument("--valid-for", help="Duration: 7d, 12h, 2w.")
        parser.add_argument("--format", choices=["csv", "json"], default="csv")
        parser.add_argument(
            "--all-or-nothing",
            action="store_true",
            help="Create nothing if any line has an error.",
        )

    def handle(self, *args, **options):
        webinar = find_webinar(options["webinar"])
        if webinar is None:
            raise CommandError(
                f"No webinar with id or slug {options['webinar']!r} "
                "(or the slug is used by more than one webinar; use the id)."
            )
        expires = parse_expiry(options["expires_at"], options["valid_for"])
        text = self.read_names(options["names_file"])

        result = generate_links(
            webinar,
            text,
            expires_at=expires,
            all_or_nothing=options["all_or_nothing"],
        )
        for kind, issues in (
            ("error", result.errors),
            ("duplicate", result.duplicates),
            ("warning", result.warnings),
        ):
            for issue in issues:
                where = f"line {issue.line}: " if issue.line else ""
                self.stderr.write(f"{kind}: {where}{issue.message}")

        links = PersonalLink.objects.filter(
            pk__in=[link.pk for link in result.created]
        ).select_related("webinar")
        links = sorted(links, key=lambda link: link.pk)
        self.write_links(links, options["format"])
        self.stderr.write(
            f"{len(result.created)} created, {len(result.duplicates)} duplicates, "
            f"{len(result.errors)} errors"
            + (" (nothing created)" if result.aborted else "")
        )
        if result.errors:
            raise CommandError("Some lines were rejected (see above).", returncode=2)

    def read_names(self, path: str) -> str:
        limit = int(conf.get_setting("LINKS_MAX_UPLOAD_BYTES"))
        try:
            if path == "-":
                text, error = read_upload(sys.stdin.buffer, limit)
            else:
                with open(path, "rb") as handle:
                    text, error = read_upload(handle, limit)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}") from exc
        if error:
            raise CommandError(f"{path}: {error}")
        if not text.strip():
            raise CommandError(f"{path} holds no names.")
        return text

    def write_links(self, links, fmt: str) -> None:
        header = export_header()
        rows = list(export_rows(links))
        if fmt == "json":
            keys = ["name", "email", "url", "expires_at", "status"]
            data = [dict(zip(keys, row, strict=True)) for row in rows]
            for item, link in zip(data, links, strict=True):
                item["id"] = link.pk
            self.stdout.write(json.dumps(data, ensure_ascii=False, indent=2))
        else:
            # No BOM on a terminal; cells are neutralised like the admin export.
            self.stdout.write(csv_text(header, rows), ending="")
