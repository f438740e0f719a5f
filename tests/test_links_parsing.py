"""Parsing a paste of participants (pure) and the CSV helpers."""

from __future__ import annotations

import io
import unicodedata

import pytest
from django.test import override_settings

from wagtail_paidwebinar.csvutils import csv_response, read_upload, safe_cell
from wagtail_paidwebinar.parsing import parse_entries, parse_text


def names(result):
    return [(e.name, e.email) for e in result.entries]


def test_three_formats_blank_lines_and_trimming():
    result = parse_text(
        "  Anna Nowak  \n\n Jan Kowalski <JAN@Example.com> \n"
        "Zażółć Gęślą Jaźń, zgj@example.pl\nEwa;ewa@example.pl\nOla\tola@example.pl\n"
    )
    assert names(result) == [
        ("Anna Nowak", ""),
        ("Jan Kowalski", "JAN@Example.com"),
        ("Zażółć Gęślą Jaźń", "zgj@example.pl"),
        ("Ewa", "ewa@example.pl"),
        ("Ola", "ola@example.pl"),
    ]
    assert result.entries[1].email_normalized == "jan@example.com"
    assert [e.line for e in result.entries] == [1, 3, 4, 5, 6]
    assert not result.errors and not result.duplicates


def test_crlf_lone_cr_and_bom():
    result = parse_text("\ufeffAnna\r\nJan\rEwa\r\n")
    assert names(result) == [("Anna", ""), ("Jan", ""), ("Ewa", "")]


def test_bare_email_and_quoted_csv_and_comma_in_name():
    result = parse_text(
        'ola@example.pl\n"Nowak, Anna",anna@example.com\nAnna Nowak, ACME Sp. z o.o.'
    )
    assert names(result) == [
        ("ola@example.pl", "ola@example.pl"),
        ("Nowak, Anna", "anna@example.com"),
        ("Anna Nowak, ACME Sp. z o.o.", ""),
    ]


def test_header_row_is_skipped_with_a_warning():
    result = parse_text("Imię i nazwisko;E-mail\nAnna;anna@example.com")
    assert names(result) == [("Anna", "anna@example.com")]
    assert result.warnings[0].line == 1


def test_nfc_normalisation_and_nfd_duplicate():
    nfd = unicodedata.normalize("NFD", "Zażółć Gęślą Jaźń")
    nfc = unicodedata.normalize("NFC", "Zażółć Gęślą Jaźń")
    assert nfd != nfc
    result = parse_text(f"{nfc}\n{nfd}\nzażółć   gęślą jaźń")
    assert names(result) == [(nfc, "")]
    assert [d.line for d in result.duplicates] == [2, 3]
    assert "line 1" in result.duplicates[0].message


def test_duplicate_email_across_case_keeps_the_first():
    result = parse_text("Anna <anna@example.com>\nAnia, ANNA@EXAMPLE.COM\nAnna")
    assert names(result) == [("Anna", "anna@example.com"), ("Anna", "")]
    assert [(d.line, d.raw) for d in result.duplicates] == [
        (2, "Ania, ANNA@EXAMPLE.COM")
    ]


def test_html_in_names_is_kept_as_text():
    result = parse_text("<script>alert(1)</script>\n<b>Bold</b> <b@example.com>")
    assert names(result) == [
        ("<script>alert(1)</script>", ""),
        ("<b>Bold</b>", "b@example.com"),
    ]


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("Anna\x00Nowak", "NUL"),
        ("Anna \u202eNowak", "U+202E"),
        ("Anna \u2066Nowak", "U+2066"),
        ("Anna\x0bNowak", "control character"),
        ("Anna\u2028Nowak", "control character"),
        ("Anna <not-an-email@>", "not a valid e-mail"),
        ("Anna, anna@@example.com", "not a valid e-mail"),
        ("Anna <" + "a" * 250 + "@example.com>", "too long"),
        ("A" * 201, "too long"),
    ],
)
def test_bad_lines_are_reported_with_line_numbers(line, fragment):
    result = parse_text(f"Good One\n{line}\nGood Two")
    assert names(result) == [("Good One", ""), ("Good Two", "")]
    assert len(result.errors) == 1
    assert result.errors[0].line == 2
    assert fragment in result.errors[0].message
    assert result.errors[0].raw == line


def test_name_limit_setting_can_lower_the_limit():
    with override_settings(WAGTAIL_PAIDWEBINAR_MAX_NAME_LENGTH=10):
        result = parse_text("Short\nA much longer name")
    assert names(result) == [("Short", "")]
    assert "at most 10" in result.errors[0].message


def test_max_lines():
    with override_settings(WAGTAIL_PAIDWEBINAR_MAX_LINES=3):
        result = parse_text("\n".join(f"P{i}" for i in range(10)))
    assert len(result.entries) == 3
    assert len(result.errors) == 1 and "at most 3" in result.errors[0].message


def test_entries_tuples():
    result = parse_entries(
        [
            ("Anna", "anna@example.com"),
            ("Jan", None),
            ("Bad\nName", ""),
            ("X", "ANNA@example.com"),
        ]
    )
    assert names(result) == [("Anna", "anna@example.com"), ("Jan", "")]
    assert result.errors[0].line == 3 and "line break" in result.errors[0].message
    assert result.duplicates[0].line == 4


def test_ten_thousand_lines_parse():
    text = "\n".join(f"Uczestnik {i} <u{i}@example.pl>" for i in range(10_000))
    result = parse_text(text)
    assert len(result.entries) == 10_000 and not result.errors


# --- csvutils ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
        ("+48 600", "'+48 600"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Anna", "Anna"),
        (None, ""),
        (5, "5"),
    ],
)
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


def test_csv_response_has_bom_headers_and_neutralised_cells():
    response = csv_response('lista "x"\r\n.csv', ["Name"], [["=1+1"], ["Zażółć"]])
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    assert "'=1+1" in body and "Zażółć" in body
    assert response["Content-Type"].startswith("text/csv")
    assert response["Cache-Control"] == "private, no-store"
    assert "\r" not in response["Content-Disposition"]
    assert response["Content-Disposition"].startswith("attachment;")


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("Zażółć".encode(), "Zażółć"),
        ("\ufeffZażółć".encode(), "Zażółć"),
        ("Zażółć".encode("cp1250"), "Zażółć"),
    ],
)
def test_read_upload_encodings(raw, text):
    assert read_upload(io.BytesIO(raw), 1000) == (text, None)


@pytest.mark.parametrize(
    "raw",
    [b"PK\x03\x04xlsx", "Anna".encode("utf-16"), b"%PDF-1.4"],
)
def test_read_upload_binary(raw):
    text, error = read_upload(io.BytesIO(raw), 1000)
    assert text is None and "text file" in error


def test_read_upload_too_large():
    text, error = read_upload(io.BytesIO(b"a" * 1001), 1000)
    assert text is None and "too large" in error
