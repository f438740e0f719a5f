"""CSV in and out: safe cells, downloadable responses and uploaded text files.

Shared by the personal links export and the subscribers import/export.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.utils.formats import get_format
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

# A spreadsheet treats a cell starting with one of these as a formula (or, for TAB
# and CR, strips them and then looks again). Prefixing a quote makes it plain text.
# This is the OWASP "CSV injection" advice; '-' and '+' also catch "-2+3" and
# "+48 600..." phone numbers, which then show with a leading apostrophe in a text
# editor but stay text in Excel/LibreOffice, a fair price for safety.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """``value`` as text that a spreadsheet will not evaluate as a formula."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


# The query parameter that asks an export view for the spreadsheet variant.
EXCEL_PARAM = "format"
EXCEL_VALUE = "excel"


def uses_decimal_comma() -> bool:
    """Whether the active language writes ``1,5`` (Polish, German...): its Excel
    then splits CSV cells on ``;``, and a comma-separated file lands in column A."""
    return get_format("DECIMAL_SEPARATOR") == ","


def excel_delimiter() -> str:
    """The separator a spreadsheet in the active language expects."""
    return ";" if uses_decimal_comma() else ","


def wants_excel(request: HttpRequest) -> bool:
    """Whether an export request asked for the "CSV (Excel)" variant."""
    return request.GET.get(EXCEL_PARAM) == EXCEL_VALUE


def excel_url(url: str) -> str:
    """``url`` (which may carry a query already) asking for "CSV (Excel)"."""
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}{urlencode({EXCEL_PARAM: EXCEL_VALUE})}"


def csv_response(
    filename: str,
    header: Sequence[Any],
    rows: Iterable[Sequence[Any]],
    *,
    delimiter: str = ",",
) -> HttpResponse:
    """A CSV download: UTF-8 with a BOM (so Excel shows Polish letters), every cell
    passed through :func:`safe_cell`, never cached (exports may hold personal URLs).
    ``delimiter`` is ``;`` for the "CSV (Excel)" variant in decimal-comma languages
    (see :func:`excel_delimiter`).
    """
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    # Only ASCII letters, digits and a few marks in the header value: a name carrying
    # quotes, CR/LF or non-ASCII could otherwise break or inject headers.
    safe_name = "".join(
        c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in filename
    )
    response["Content-Disposition"] = (
        f'attachment; filename="{safe_name or "export.csv"}"'
    )
    response["Cache-Control"] = "private, no-store"
    response.write("\ufeff")
    writer = csv.writer(response, delimiter=delimiter)
    writer.writerow([safe_cell(cell) for cell in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return response


def csv_text(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """The same CSV as :func:`csv_response` as a string (no BOM), for CLI output."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([safe_cell(cell) for cell in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue()


def _looks_binary(raw: bytes) -> bool:
    # NUL bytes never occur in UTF-8/cp1250 text exports but do in .xlsx (a zip),
    # .xls, PDFs and UTF-16 files.
    sample = raw[:8192]
    return b"\x00" in sample or sample.startswith(
        (b"PK\x03\x04", b"%PDF", b"\xd0\xcf\x11\xe0")
    )


def decode_bytes(raw: bytes) -> str | None:
    """Decode UTF-8 (with or without BOM), falling back to cp1250 (Polish Excel
    "CSV" exports); ``None`` when it is neither."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1250")
    except UnicodeDecodeError:
        return None


def read_upload(file: Any, max_bytes: int) -> tuple[str | None, str | None]:
    """Read an uploaded .txt/.csv file into text.

    Returns ``(text, None)`` or ``(None, error message)``: the file is too large, looks
    binary (a spreadsheet, a PDF) or is in an unknown encoding. ``file`` is a Django
    ``UploadedFile`` or any binary file object.
    """
    size = getattr(file, "size", None)
    if size is not None and size > max_bytes:
        return None, too_large_message(max_bytes, size=size)
    if hasattr(file, "seek"):
        try:
            file.seek(0)
        except (OSError, ValueError):
            pass
    # Read one byte more than allowed to detect an oversize file without a size.
    raw = file.read(max_bytes + 1)
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if len(raw) > max_bytes:
        return None, too_large_message(max_bytes, size=size)
    if _looks_binary(raw):
        return None, str(
            _(
                "This does not look like a text file. Save the list as CSV (UTF-8) "
                "or plain text (.txt) and upload that."
            )
        )
    text = decode_bytes(raw)
    if text is None:
        return None, str(
            _("The file's encoding was not recognised. Save it as UTF-8 and try again.")
        )
    return text, None


def too_large_message(
    max_bytes: int, *, pasted: bool = False, size: int | None = None
) -> str:
    """The message shown when an upload (or, with ``pasted``, a pasted list sent in
    the form's body) is over the limit of ``max_bytes``; ``size`` (bytes), when
    known, is named too."""
    if size is not None and not pasted:
        return str(
            _(
                "The file is too large: %(size)s, the limit is %(limit)s. Nothing "
                "was read; split the list into smaller parts and upload them one "
                "by one."
            )
            % {"size": filesizeformat(size), "limit": filesizeformat(max_bytes)}
        )
    size = str(filesizeformat(max_bytes))
    if pasted:
        # The paste never reached the form, so point to the way that has a
        # higher limit: a file.
        return str(
            _(
                "The pasted list is too large to send in one form (the limit is "
                "%(size)s). Upload it as a .txt or .csv file instead, or split it."
            )
            % {"size": size}
        )
    return str(
        _(
            "The file is too large (the limit is %(size)s). Split the list into "
            "smaller parts and upload them one by one."
        )
        % {"size": size}
    )


def too_many_lines_message(count: int, limit: int) -> str:
    """The message refusing a list of ``count`` participants over ``limit``."""
    return str(
        _(
            "Too many lines: the list has %(count)s, at most %(limit)s are accepted "
            "at once. Nothing was created; split the list into smaller parts."
        )
        % {"count": count, "limit": limit}
    )
