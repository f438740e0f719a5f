"""manage.py paidwebinar_links."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.utils import make_webinar
from wagtail_paidwebinar.models import PersonalLink

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("paidwebinar_links", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def names_file(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text(
        "\ufeffZażółć Gęślą Jaźń\r\nAnna Nowak <anna@example.com>\r\n\r\n", "utf-8"
    )
    return path


def test_csv_output_by_id(webinar, names_file):
    out, err = run(str(webinar.pk), "--names-file", str(names_file))
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["Name", "E-mail", "Link", "Expires at", "Status"]
    links = list(PersonalLink.objects.order_by("pk"))
    assert [r[0] for r in rows[1:]] == ["Zażółć Gęślą Jaźń", "Anna Nowak"]
    assert rows[1][2] == links[0].get_url()
    assert "2 created" in err


def test_json_output_by_slug_with_valid_for(webinar, names_file):
    out, _err = run(
        webinar.slug,
        "--names-file",
        str(names_file),
        "--format",
        "json",
        "--valid-for",
        "7d",
    )
    data = json.loads(out)
    assert [d["name"] for d in data] == ["Zażółć Gęślą Jaźń", "Anna Nowak"]
    assert data[1]["email"] == "anna@example.com"
    assert data[0]["url"].startswith("https://webinars.example.com/")
    link = PersonalLink.objects.get(pk=data[0]["id"])
    expected = timezone.now() + dt.timedelta(days=7)
    assert abs((link.expires_at - expected).total_seconds()) < 60


def test_expires_at(webinar, names_file):
    run(
        str(webinar.pk),
        "--names-file",
        str(names_file),
        "--expires-at",
        "2099-05-01T18:00",
    )
    link = PersonalLink.objects.first()
    assert timezone.localtime(link.expires_at).hour == 18


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["999999"], "No webinar"),
        (["no-such-slug"], "No webinar"),
        (["WEBINAR", "--expires-at", "tomorrow"], "not an ISO date"),
        (["WEBINAR", "--expires-at", "2001-01-01"], "in the past"),
        (["WEBINAR", "--expires-at", "2026-13-45"], "not an ISO date"),
        (["WEBINAR", "--valid-for", "soon"], "not a duration"),
        (["WEBINAR", "--valid-for", "0d"], "not a duration"),
    ],
)
def test_bad_arguments_fail_with_a_clear_error(webinar, names_file, args, fragment):
    args = [str(webinar.pk) if a == "WEBINAR" else a for a in args]
    with pytest.raises(CommandError, match=fragment) as info:
        run(*args[:1], "--names-file", str(names_file), *args[1:])
    assert info.value.returncode != 0
    assert not PersonalLink.objects.exists()


def test_missing_and_binary_files(webinar, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run(str(webinar.pk), "--names-file", str(tmp_path / "missing.txt"))
    binary = tmp_path / "list.xlsx"
    binary.write_bytes(b"PK\x03\x04\x00\x00")
    with pytest.raises(CommandError, match="text file"):
        run(str(webinar.pk), "--names-file", str(binary))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", "utf-8")
    with pytest.raises(CommandError, match="no names"):
        run(str(webinar.pk), "--names-file", str(empty))


def test_bad_lines_are_reported_and_exit_non_zero(webinar, tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("Good\nEvil \u202eName\nGood\n", "utf-8")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command(
            "paidwebinar_links",
            str(webinar.pk),
            "--names-file",
            str(path),
            stdout=out,
            stderr=err,
        )
    assert info.value.returncode == 2
    assert "line 2" in err.getvalue() and "U+202E" in err.getvalue()
    assert "duplicate: line 3" in err.getvalue()
    assert [r[0] for r in csv.reader(io.StringIO(out.getvalue()))][1:] == ["Good"]


def test_all_or_nothing(webinar, tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("Good\nBad\x00\n", "utf-8")
    with pytest.raises(CommandError):
        run(str(webinar.pk), "--names-file", str(path), "--all-or-nothing")
    assert not PersonalLink.objects.exists()


def test_cp1250_file_and_formula_names(webinar, tmp_path):
    path = tmp_path / "names.csv"
    path.write_bytes("Łucja Żak\n=cmd|' /C calc'!A0\n".encode("cp1250"))
    out, _err = run(str(webinar.pk), "--names-file", str(path))
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[1][0] == "Łucja Żak"
    assert rows[2][0].startswith("'=")


def test_ambiguous_slug_needs_the_id(index, webinar, names_file):
    from tests.utils import make_index

    other_index = make_index(title="Archive", slug="archive")
    make_webinar(other_index, title="Django performance")
    with pytest.raises(CommandError, match="more than one"):
        run(webinar.slug, "--names-file", str(names_file))
