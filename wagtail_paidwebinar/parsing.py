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


def normalize_email(email: str) -> str:
    """The key e-mails are compared by: NFC, stripped, lower-cased ("" for none)."""
    return unicodedata.normalize("NFC", email or "").strip().lower()


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
    numbers count every line (as an editor shows them)."""
    result = ParseResult()
    limit = int(conf.get_setting("MAX_LINES"))
    count = 0
    first = True
    for line_no, raw in enumerate(split_lines(text), start=1):
        line = raw.strip()
        if not line:
            continue
        if first:
            first = False
            if _is_header(line):
                result.warnings.append(
                    LineIssue(
                        line_no, raw, str(_("looks like a column header; skipped"))
                    )
                )
                continue
        count += 1
        if count > limit:
            result.errors.append(_too_many(line_no, limit))
            break
        if "\x00" in line:
            # Decide before splitting: a NUL could hide the separator.
            result.errors.append(
                LineIssue(line_no, raw, str(_("contains a NUL character")))
            )
            continue
        name, email = _split_fields(line)
        outcome = validate_entry(line_no, raw, name, email)
        if isinstance(outcome, Entry):
            result.entries.append(outcome)
        else:
            result.errors.append(outcome)
    return _dedupe(result)


def parse_entries(entries: Iterable[tuple[str, str | None]]) -> ParseResult:
    """Validate ``(name, email_or_empty)`` pairs; "line" numbers count from 1."""
    result = ParseResult()
    limit = int(conf.get_setting("MAX_LINES"))
    for index, (name, email) in enumerate(entries, start=1):
        if index > limit:
            result.errors.append(_too_many(index, limit))
            break
        name, email = str(name or ""), str(email or "")
        raw = f"{name} <{email}>" if email else name
        outcome = validate_entry(index, raw, name, email)
        if isinstance(outcome, Entry):
            result.entries.append(outcome)
        else:
            result.errors.append(outcome)
    return _dedupe(result)


_HEADER_WORDS = {
    "name",
    "names",
    "full name",
    "imię",
    "imie",
    "imię i nazwisko",
    "imie i nazwisko",
    "nazwisko",
    "email",
    "e-mail",
    "e-mail address",
    "email address",
    "mail",
    "adres e-mail",
    "adres email",
}


def _is_header(line: str) -> bool:
    cells = [c.strip().strip('"').strip().lower() for c in re.split(r"[,;\t]", line)]
    cells = [c for c in cells if c]
    return bool(cells) and all(c in _HEADER_WORDS for c in cells)
