"""Importing subscribers from a CSV file: parse (pure) and save (one transaction).

Columns are ``name,email[,lists]``; a header row is optional (and then may put the
columns in any order). ``,``, ``;`` and TAB separate cells, as spreadsheets export.
Every problem is a value with its line number, never an exception, so a bad file
never costs a 500.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from . import conf
from .models import Subscriber, SubscriberList
from .parsing import (
    Columns,
    Entry,
    LineIssue,
    detect_delimiter,
    header_columns,
    ignored_column_warnings,
    normalize_email,
    validate_entry,
)

# What a list name in the "lists" column may be separated by (inside one cell).
_LIST_SPLIT_RE = re.compile(r"[|;,]")
_LISTS_HEADERS = frozenset({"list", "lists", "lista", "listy"})
# Rows looked up or written per query (well under SQLite's variable limit).
_CHUNK = 500


@dataclass(frozen=True)
class ImportRow:
    """One valid subscriber line."""

    line: int
    name: str
    email: str
    lists: tuple[str, ...] = ()

    @property
    def email_normalized(self) -> str:
        return normalize_email(self.email)


@dataclass
class ParsedImport:
    rows: list[ImportRow] = field(default_factory=list)
    errors: list[LineIssue] = field(default_factory=list)
    duplicates: list[LineIssue] = field(default_factory=list)
    # Header columns nothing reads (a phone number, a company).
    warnings: list[LineIssue] = field(default_factory=list)
    # More lines than MAX_LINES: nothing may be imported from this parse.
    over_limit: bool = False


@dataclass
class ImportResult:
    """What an import did (or would have done when ``saved`` is False)."""

    parsed: ParsedImport
    saved: bool = False
    created: int = 0
    # Addresses that were already subscribers (added to the chosen lists only).
    existing: list[LineIssue] = field(default_factory=list)
    lists: list[SubscriberList] = field(default_factory=list)
    error: str = ""

    @property
    def errors(self) -> list[LineIssue]:
        return self.parsed.errors

    @property
    def duplicates(self) -> list[LineIssue]:
        return self.parsed.duplicates


def _detect_delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    return detect_delimiter(first)


# Without a header: name, e-mail, lists.
_DEFAULT_COLUMNS = Columns(width=3, name=(0,), email=1, extra={"lists": 2})


def _split_lists(cell: str) -> tuple[str, ...]:
    names = []
    for part in _LIST_SPLIT_RE.split(cell or ""):
        part = " ".join(part.split())
        if part and part not in names:
            names.append(part)
    return tuple(names)


def parse_subscriber_csv(text: str) -> ParsedImport:
    """Parse CSV text into valid rows, per-line errors and in-file duplicates.

    Line numbers are the file's physical lines (as an editor shows them). Pure: no
    database access.
    """
    result = ParsedImport()
    if text.startswith("\ufeff"):
        text = text[1:]
    limit = int(conf.get_setting("MAX_LINES"))
    # Line ends kept: a quoted cell spanning lines then keeps its line break (and is
    # refused as such) instead of being silently glued together.
    # Only CR, LF and CRLF end a line (not U+2028 and friends, which str.splitlines
    # would split on): those stay in the cell and are refused as control characters.
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(lines, delimiter=_detect_delimiter(text))
    columns = _DEFAULT_COLUMNS
    first = True
    seen: dict[str, int] = {}
    count = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.errors.append(
                LineIssue(
                    reader.line_num,
                    "",
                    str(_("unreadable line: %(error)s") % {"error": exc}),
                )
            )
            continue
        line_no = reader.line_num
        # The line as written (a quoted cell may span lines: then the last one).
        raw = (
            lines[line_no - 1].rstrip("\r\n")
            if 0 < line_no <= len(lines)
            else ",".join(cells)
        )
        if not any(c.strip() for c in cells):
            continue
        if first:
            first = False
            header = header_columns(cells, {"lists": _LISTS_HEADERS})
            if header is not None:
                if header.email is None:
                    result.errors.append(
                        LineIssue(
                            line_no, raw, str(_("the header has no e-mail column"))
                        )
                    )
                    return result
                columns = header
                result.warnings += ignored_column_warnings(header, line_no, raw)
                continue
        count += 1
        if count > limit:
            result.errors.append(
                LineIssue(
                    line_no,
                    "",
                    str(
                        _(
                            "Too many lines: at most %(limit)s per import; "
                            "the rest was not read."
                        )
                        % {"limit": limit}
                    ),
                )
            )
            result.over_limit = True
            break
        outcome = _validate_row(line_no, raw, cells, columns)
        if isinstance(outcome, LineIssue):
            result.errors.append(outcome)
            continue
        key = outcome.email_normalized
        if key in seen:
            result.duplicates.append(
                LineIssue(
                    line_no,
                    raw,
                    str(
                        _("the same e-mail address as line %(line)s")
                        % {"line": seen[key]}
                    ),
                )
            )
            continue
        seen[key] = line_no
        result.rows.append(outcome)
    return result


def _validate_row(
    line_no: int, raw: str, cells: list[str], columns: Columns
) -> ImportRow | LineIssue:
    name = columns.name_from(cells)
    email = columns.cell(cells, columns.email)
    lists = columns.cell(cells, columns.extra.get("lists"))
    if "@" not in email and len(cells) == 1 and "@" in name:
        # A bare list of addresses, one a line.
        name, email = "", name
    if not email.strip():
        return LineIssue(line_no, raw, str(_("the e-mail address is missing")))
    had_name = bool(name.strip())
    outcome = validate_entry(line_no, raw, name, email)
    if isinstance(outcome, LineIssue):
        return outcome
    list_names = _split_lists(lists)
    for list_name in list_names:
        problem = validate_entry(line_no, raw, list_name, "")
        if isinstance(problem, LineIssue):
            return LineIssue(
                line_no,
                raw,
                str(_("list name: %(problem)s") % {"problem": problem.message}),
            )
    if not isinstance(outcome, Entry):  # pragma: no cover - validate_entry's contract
        return LineIssue(line_no, raw, str(_("the line could not be read")))
    return ImportRow(
        line=line_no,
        name=outcome.name if had_name else "",
        email=outcome.email,
        lists=list_names,
    )


def _chunks(items: list, size: int = _CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def import_subscribers(
    parsed: ParsedImport,
    *,
    target_list: SubscriberList | None = None,
    new_list_name: str = "",
    source: str = "",
    skip_invalid: bool = False,
) -> ImportResult:
    """Save ``parsed`` rows as subscribers, all or nothing.

    With errors in the file nothing is written unless ``skip_invalid``. New addresses
    become subscribed subscribers; addresses already known are only added to the
    lists (an unsubscribed person stays unsubscribed: an import is not consent).
    Every row joins ``target_list``, the list called ``new_list_name`` (created if
    needed) and the lists named in its own "lists" column.
    """
    result = ImportResult(parsed=parsed)
    existing = _existing_ids(parsed)
    result.existing = _existing_issues(parsed, existing)
    if (parsed.errors and not skip_invalid) or parsed.over_limit or not parsed.rows:
        # Over the line limit the rest of the file was not read: importing the
        # first part would look like success.
        return result
    source = source or str(_("CSV import"))
    try:
        with transaction.atomic():
            _save(parsed, result, target_list, new_list_name.strip(), source)
    except IntegrityError:
        # Another import or an editor added one of these addresses at the same
        # moment; the transaction rolled back, so nothing is half-written.
        result.created = 0
        result.lists = []
        result.error = str(
            _(
                "Someone changed the subscribers at the same time. Nothing was "
                "imported; please try again."
            )
        )
        return result
    result.saved = True
    return result


def _existing_ids(parsed: ParsedImport) -> dict[str, int]:
    """Normalised e-mail -> pk of the rows' addresses that are already subscribers."""
    keys = [row.email_normalized for row in parsed.rows]
    existing: dict[str, int] = {}
    for chunk in _chunks(keys):
        existing.update(
            Subscriber.objects.filter(email_normalized__in=chunk).values_list(
                "email_normalized", "pk"
            )
        )
    return existing


def _existing_issues(parsed: ParsedImport, existing: dict[str, int]) -> list[LineIssue]:
    return [
        LineIssue(
            row.line, row.email, str(_("already a subscriber; joins the chosen lists"))
        )
        for row in parsed.rows
        if row.email_normalized in existing
    ]


def _save(
    parsed: ParsedImport,
    result: ImportResult,
    target_list: SubscriberList | None,
    new_list_name: str,
    source: str,
) -> None:
    common: list[SubscriberList] = []
    if target_list is not None:
        common.append(target_list)
    if new_list_name:
        new_list, _created = SubscriberList.objects.get_or_create(name=new_list_name)
        if new_list not in common:
            common.append(new_list)
    named: dict[str, SubscriberList] = {lst.name: lst for lst in common}
    for row in parsed.rows:
        for list_name in row.lists:
            if list_name not in named:
                named[list_name], _created = SubscriberList.objects.get_or_create(
                    name=list_name
                )
    result.lists = list(named.values())

    # Looked up again inside the transaction: the answer outside may be stale.
    existing = _existing_ids(parsed)
    new = [
        Subscriber(
            name=row.name,
            email=row.email,
            email_normalized=row.email_normalized,
            source=source[:100],
        )
        for row in parsed.rows
        if row.email_normalized not in existing
    ]
    Subscriber.objects.bulk_create(new, batch_size=_CHUNK)
    result.created = len(new)
    result.existing = _existing_issues(parsed, existing)
    # Not every database returns primary keys from bulk_create: look them up.
    ids: dict[str, int] = dict(existing)
    new_keys = [s.email_normalized for s in new]
    for chunk in _chunks(new_keys):
        ids.update(
            Subscriber.objects.filter(email_normalized__in=chunk).values_list(
                "email_normalized", "pk"
            )
        )
    through = Subscriber.lists.through
    links: list = []
    for row in parsed.rows:
        subscriber_id = ids[row.email_normalized]
        row_lists = {lst.pk for lst in common}
        row_lists.update(named[name].pk for name in row.lists)
        links.extend(
            through(subscriber_id=subscriber_id, subscriberlist_id=list_id)
            for list_id in row_lists
        )
    through.objects.bulk_create(links, batch_size=_CHUNK, ignore_conflicts=True)


def filtered_subscribers(
    *, list_id: int | None = None, subscribed: bool | None = None, search: str = ""
) -> QuerySet[Subscriber]:
    """Subscribers as the admin listing shows them: on list ``list_id``, with
    ``subscribed`` state, ``search`` in the name or e-mail (``None``/empty: any)."""
    qs = Subscriber.objects.prefetch_related("lists").order_by("email_normalized")
    if list_id is not None:
        qs = qs.filter(lists__pk=list_id)
    if subscribed is not None:
        qs = qs.filter(subscribed=subscribed)
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(email__icontains=search))
    return qs.distinct()
