"""Parse a paste of participants into entries, with per-line errors.

One participant a line: ``Name``, ``Name <email>``, ``Name, email`` (also ``;`` or a
TAB, as spreadsheets export), or a bare e-mail. Pure: no database; comparing with a
webinar's existing links happens in :mod:`wagtail_paidwebinar.actions`.

Every problem is a value (:class:`LineIssue`), never an exception, so a bad line
never costs the good ones (or a 500).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils.translation import gettext_lazy as _

from . import conf

# Email column width (RFC 5321 path limit); the model field uses the same.
MAX_EMAIL_LENGTH = 254
# The name column of PersonalLink; MAX_NAME_LENGTH may only lower it.
NAME_COLUMN_LENGTH = 200

# Characters that reorder how text is displayed (the "Trojan Source" family). In a
# name they can make "Anna" look like something else in the admin and in e-mails.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_ANGLE_RE = re.compile(r"^(?P<name>.*?)\s*<(?P<email>[^<>]*)>\s*$")
_SPACES_RE = re.compile(r"\s+")
_email_validator = EmailValidator()


@dataclass(frozen=True)
class LineIssue:
    """A duplicate, an error or a warning about one input line.

    ``raw`` is the line as given (untrusted: escape it on display).
    """

    line: int
    raw: str
    message: str


@dataclass(frozen=True)
class Entry:
    """One valid participant."""

    line: int
    raw: str
    name: str
    email: str = ""

    @property
    def email_normalized(self) -> str:
        return normalize_email(self.email)

    @property
    def name_key(self) -> str:
        return name_key(self.name)


@dataclass
class ParseResult:
    entries: list[Entry] = field(default_factory=list)
    duplicates: list[LineIssue] = field(default_factory=list)
    errors: list[LineIssue] = field(default_factory=list)
    warnings: list[LineIssue] = field(default_factory=list)
    # More participants than MAX_LINES: the rest was not read, so nothing may be
    # created from this parse.
    over_limit: bool = False


def normalize_email(email: str) -> str:
    """The key e-mails are compared by: NFC, stripped, lower-cased ("" for none)."""
    return unicodedata.normalize("NFC", email or "").strip().lower()


def mask_email(email: str) -> str:
    """ "anna.nowak@example.com" -> "a•••@example.com": enough for the owner to
    recognise their address, little for anyone else (a forwarded unsubscribe link,
    a stranger holding someone's personal link)."""
    local, sep, domain = (email or "").partition("@")
    if not sep:
        return "•••"
    return f"{local[:1]}•••@{domain}"


def normalize_name(name: str) -> str:
    """NFC, trimmed, inner runs of whitespace collapsed to one space."""
    return _SPACES_RE.sub(" ", unicodedata.normalize("NFC", name)).strip()


def name_key(name: str) -> str:
    """Names equal under this key are the same person within one paste."""
    return normalize_name(name).casefold()


def max_name_length() -> int:
    return min(int(conf.get_setting("MAX_NAME_LENGTH")), NAME_COLUMN_LENGTH)


def split_lines(text: str) -> list[str]:
    """Lines of a paste; CRLF, LF and lone CR all end a line, a leading BOM goes.

    Unlike ``str.splitlines`` this does not split on U+2028, form feed and the like;
    those stay in the line and are reported as control characters.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _split_fields(line: str) -> tuple[str, str]:
    """``(name, email)`` as written, before validation."""
    match = _ANGLE_RE.match(line)
    if match and "@" in match["email"]:
        return match["name"], match["email"]
    if line.startswith('"'):
        # A quoted CSV row: "Nowak, Anna",anna@example.com
        delimiter = ";" if ";" in line and "," not in line.split('"')[-1] else ","
        try:
            cells = next(csv.reader([line], delimiter=delimiter))
        except csv.Error:
            cells = [line]
        cells = [c.strip() for c in cells if c.strip()]
        if len(cells) >= 2 and "@" in cells[-1]:
            return " ".join(cells[:-1]), cells[-1]
        return " ".join(cells), ""
    for sep in ("\t", ";", ","):
        if sep in line:
            head, _sep, tail = line.rpartition(sep)
            if "@" in tail:
                return head, tail
    if "@" in line and " " not in line.strip():
        # A bare e-mail: the address doubles as the name.
        return line, line
    return line, ""


# Every character _bad_char_message objects to (TAB is allowed: it separates cells).
_BAD_CHARS_RE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029" + "".join(sorted(BIDI_CONTROLS)) + "]"
)


def _bad_char_message(text: str) -> str | None:
    match = _BAD_CHARS_RE.search(text)
    if match is None:
        return None
    ch = match.group()
    if ch == "\x00":
        return str(_("contains a NUL character"))
    if ch in BIDI_CONTROLS:
        return str(
            _("contains an invisible text-direction character (U+%(code)s)")
            % {"code": f"{ord(ch):04X}"}
        )
    if ch in "\r\n":
        return str(_("contains a line break"))
    return str(
        _("contains a control character (U+%(code)s)") % {"code": f"{ord(ch):04X}"}
    )


def validate_entry(line_no: int, raw: str, name: str, email: str) -> Entry | LineIssue:
    """Normalise and check one participant; an :class:`Entry` or the error."""
    problem = _bad_char_message(name) or _bad_char_message(email)
    if problem:
        return LineIssue(line_no, raw, problem)
    name = normalize_name(name).strip(" ,;\t\"'")
    email = unicodedata.normalize("NFC", email).strip().strip("<>").strip()
    if not name and email:
        name = email
    if not name:
        return LineIssue(line_no, raw, str(_("the name is missing")))
    limit = max_name_length()
    if len(name) > limit:
        return LineIssue(
            line_no,
            raw,
            str(
                _("the name is too long (%(length)s characters, at most %(limit)s)")
                % {"length": len(name), "limit": limit}
            ),
        )
    if email:
        if len(email) > MAX_EMAIL_LENGTH:
            return LineIssue(
                line_no,
                raw,
                str(
                    _("the e-mail address is too long (at most %(limit)s characters)")
                    % {"limit": MAX_EMAIL_LENGTH}
                ),
            )
        try:
            _email_validator(email)
        except ValidationError:
            return LineIssue(
                line_no,
                raw,
                str(_("“%(email)s” is not a valid e-mail address") % {"email": email}),
            )
    return Entry(line=line_no, raw=raw, name=name, email=email)


def _too_many(line_no: int, limit: int) -> LineIssue:
    return LineIssue(
        line_no,
        "",
        str(
            _(
                "Too many participants: at most %(limit)s per batch; "
                "the rest was not read."
            )
            % {"limit": limit}
        ),
    )


def _dedupe(result: ParseResult) -> ParseResult:
    """Keep the first of each e-mail (case-insensitive) and of each e-mail-less name."""
    seen_emails: dict[str, int] = {}
    seen_names: dict[str, int] = {}
    kept = []
    for entry in result.entries:
        if entry.email:
            key, seen = entry.email_normalized, seen_emails
            message = _("the same e-mail address as line %(line)s")
        else:
            key, seen = entry.name_key, seen_names
            message = _("the same name as line %(line)s")
        if key in seen:
            result.duplicates.append(
                LineIssue(entry.line, entry.raw, str(message % {"line": seen[key]}))
            )
            continue
        seen[key] = entry.line
        kept.append(entry)
    result.entries = kept
    return result


def parse_text(text: str) -> ParseResult:
    """Parse a paste or an uploaded file's text. Blank lines are skipped; line
    numbers count every line (as an editor shows them).

    A first line naming the columns (``Imię;Nazwisko;E-mail``, ``Name,Email,Phone``)
    is a header: rows with as many cells are then read by column, first name and
    surname joined, and every unused column is reported once as a warning.
    """
    result = ParseResult()
    limit = int(conf.get_setting("MAX_LINES"))
    count = 0
    first = True
    columns: Columns | None = None
    delimiter = ","
    for line_no, raw in enumerate(split_lines(text), start=1):
        line = raw.strip()
        if not line:
            continue
        if first:
            first = False
            header = _header(line)
            if header is not None:
                columns, delimiter = header
                result.warnings.append(
                    LineIssue(
                        line_no, raw, str(_("looks like a column header; skipped"))
                    )
                )
                result.warnings += ignored_column_warnings(columns, line_no, raw)
                if columns.width < 2:
                    columns = None
                continue
        count += 1
        if count > limit:
            result.errors.append(_too_many(line_no, limit))
            result.over_limit = True
            break
        if "\x00" in line:
            # Decide before splitting: a NUL could hide the separator.
            result.errors.append(
                LineIssue(line_no, raw, str(_("contains a NUL character")))
            )
            continue
        name, email = _fields(line, columns, delimiter)
        outcome = validate_entry(line_no, raw, name, email)
        if isinstance(outcome, Entry):
            result.entries.append(outcome)
            warning = _not_an_address_warning(line_no, raw, line, outcome)
            if warning is not None:
                result.warnings.append(warning)
        else:
            result.errors.append(outcome)
    return _dedupe(result)


def count_lines(text: str) -> int:
    """Participant lines in ``text``: non-blank lines, a header line not counted.

    Cheap enough to run before parsing, so a list over ``MAX_LINES`` is refused
    whole instead of being cut off at the limit.
    """
    count = 0
    header_checked = False
    for raw in split_lines(text):
        line = raw.strip()
        if not line:
            continue
        if not header_checked:
            header_checked = True
            if _header(line) is not None:
                continue
        count += 1
    return count


def _fields(line: str, columns: Columns | None, delimiter: str) -> tuple[str, str]:
    """``(name, email)`` of one line, by the header's columns when the line has
    exactly as many cells (else as a free-form line)."""
    if columns is not None:
        try:
            cells = next(csv.reader([line], delimiter=delimiter))
        except (csv.Error, StopIteration):
            cells = []
        if len(cells) == columns.width:
            return columns.name_from(cells), columns.cell(cells, columns.email).strip()
    return _split_fields(line)


def _not_an_address_warning(
    line_no: int, raw: str, line: str, entry: Entry
) -> LineIssue | None:
    """``Bob <not-an-email>`` is meant as name and address; say the address is not
    one rather than silently naming the link after the whole line."""
    match = _ANGLE_RE.match(line)
    if entry.email or match is None or not match["email"].strip():
        return None
    return LineIssue(
        line_no,
        raw,
        str(
            _(
                "“%(text)s” looks like an e-mail address but is not one; the link "
                "was named after the whole line and has no e-mail"
            )
            % {"text": match["email"].strip()}
        ),
    )


def parse_entries(entries: Iterable[tuple[str, str | None]]) -> ParseResult:
    """Validate ``(name, email_or_empty)`` pairs; "line" numbers count from 1."""
    result = ParseResult()
    limit = int(conf.get_setting("MAX_LINES"))
    for index, (name, email) in enumerate(entries, start=1):
        if index > limit:
            result.errors.append(_too_many(index, limit))
            result.over_limit = True
            break
        name, email = str(name or ""), str(email or "")
        raw = f"{name} <{email}>" if email else name
        outcome = validate_entry(index, raw, name, email)
        if isinstance(outcome, Entry):
            result.entries.append(outcome)
        else:
            result.errors.append(outcome)
    return _dedupe(result)


# Header words, compared lower-cased. A first-name and a surname column are joined
# into one name (Polish Excel exports "Imię;Nazwisko;E-mail"), in that order
# whatever order the columns come in.
FULL_NAME_HEADERS = frozenset(
    {
        "name",
        "names",
        "full name",
        "imię i nazwisko",
        "imie i nazwisko",
        "uczestnik",
        "nazwa",
    }
)
FIRST_NAME_HEADERS = frozenset(
    {"imię", "imie", "first name", "firstname", "given name", "first"}
)
SURNAME_HEADERS = frozenset(
    {"nazwisko", "last name", "lastname", "surname", "family name", "last"}
)
EMAIL_HEADERS = frozenset(
    {
        "email",
        "e-mail",
        "e-mail address",
        "email address",
        "mail",
        "adres e-mail",
        "adres email",
    }
)


@dataclass(frozen=True)
class Columns:
    """Where a header row puts the name parts, the e-mail and any extra column.

    ``name`` lists the columns joined (with a space) into the name; ``ignored`` holds
    ``(position, header text)`` of every column nothing reads.
    """

    width: int
    name: tuple[int, ...] = ()
    email: int | None = None
    extra: dict[str, int] = field(default_factory=dict)
    ignored: tuple[tuple[int, str], ...] = ()

    def name_from(self, cells: list[str]) -> str:
        return " ".join(
            cells[i].strip() for i in self.name if i < len(cells) and cells[i].strip()
        )

    def cell(self, cells: list[str], index: int | None) -> str:
        if index is None or index >= len(cells):
            return ""
        return cells[index]


def _header_cell(cell: str) -> str:
    return " ".join(cell.strip().strip("\ufeff").strip('"').strip().lower().split())


def header_columns(
    cells: list[str], extra: dict[str, frozenset[str]] | None = None
) -> Columns | None:
    """The columns of a header row, or None when ``cells`` is not a header.

    A header names at least one name or e-mail column and holds no address (a data
    row does). ``extra`` maps further keys to their header words (the subscriber
    import's "lists" column).
    """
    extra = extra or {}
    lowered = [_header_cell(c) for c in cells]
    if any("@" in c for c in lowered):
        return None
    full = first = last = email = None
    found: dict[str, int] = {}
    ignored = []
    for index, cell in enumerate(lowered):
        if cell in FULL_NAME_HEADERS and full is None:
            full = index
        elif cell in FIRST_NAME_HEADERS and first is None:
            first = index
        elif cell in SURNAME_HEADERS and last is None:
            last = index
        elif cell in EMAIL_HEADERS and email is None:
            email = index
        else:
            key = next(
                (k for k, words in extra.items() if cell in words and k not in found),
                None,
            )
            if key is not None:
                found[key] = index
            elif cell:
                ignored.append((index, cells[index].strip().strip("\ufeff")))
    if full is None and first is None and last is None and email is None:
        return None
    name: tuple[int, ...]
    if full is not None:
        name = (full,)
        # A full-name column wins; first/surname columns beside it are not read.
        ignored += [(i, cells[i].strip()) for i in (first, last) if i is not None]
    else:
        name = tuple(i for i in (first, last) if i is not None)
    return Columns(
        width=len(cells),
        name=name,
        email=email,
        extra=found,
        ignored=tuple(sorted(ignored)),
    )


def ignored_column_warnings(
    columns: Columns, line_no: int, raw: str
) -> list[LineIssue]:
    """One warning per header column that nothing reads."""
    return [
        LineIssue(
            line_no,
            raw,
            str(
                _("the column “%(column)s” is not used; its values were ignored")
                % {"column": header}
            ),
        )
        for _index, header in columns.ignored
    ]


def detect_delimiter(line: str) -> str:
    """The separator a spreadsheet used for ``line``: ``,``, ``;`` or TAB."""
    counts = {sep: line.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _header(line: str) -> tuple[Columns, str] | None:
    delimiter = detect_delimiter(line)
    try:
        cells = next(csv.reader([line], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return None
    columns = header_columns(cells)
    return (columns, delimiter) if columns is not None else None
