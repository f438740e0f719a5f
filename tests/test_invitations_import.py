"""Subscriber CSV import and export through the admin (and the parser behind it)."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.utils import admin_url
from wagtail_paidwebinar.models import Subscriber, SubscriberList
from wagtail_paidwebinar.subscribers import parse_subscriber_csv

IMPORT_URL = ("subscriber", "import")
EXPORT_URL = ("subscriber", "export_all")
INDEX_URL = ("subscriber", "index")


def upload(content: bytes, name: str = "people.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def post_import(client, content: bytes | None = None, text: str = "", **extra):
    data = {"text": text, **extra}
    if content is not None:
        data["file"] = upload(content)
    return client.post(admin_url(*IMPORT_URL), data)


# --- the parser -----------------------------------------------------------------


def test_parse_with_header_bom_and_semicolons():
    parsed = parse_subscriber_csv(
        "\ufeffE-mail;Imię i nazwisko;Listy\n"
        "anna@example.com;Anna Nowak;VIP|Newsletter\n"
        "\n"
        "zgj@example.pl;Zażółć Gęślą Jaźń;\n"
    )
    assert parsed.errors == []
    assert [(r.line, r.name, r.email, r.lists) for r in parsed.rows] == [
        (2, "Anna Nowak", "anna@example.com", ("VIP", "Newsletter")),
        (4, "Zażółć Gęślą Jaźń", "zgj@example.pl", ()),
    ]


def test_parse_reports_bad_lines_and_duplicates_with_line_numbers():
    parsed = parse_subscriber_csv(
        "Anna,anna@example.com\n"
        "Bad,not-an-email\n"
        "NoMail,\n"
        "ANNA again,ANNA@Example.COM\n"
        "Evil\u202eName,evil@example.com\n" + "Long," + "x" * 250 + "@example.com\n"
        "bare@example.com\n"
    )
    assert [r.email for r in parsed.rows] == ["anna@example.com", "bare@example.com"]
    assert parsed.rows[1].name == ""
    errors = {issue.line: issue.message for issue in parsed.errors}
    assert set(errors) == {2, 3, 5, 6}
    assert "not a valid" in errors[2]
    assert "missing" in errors[3]
    assert "text-direction" in errors[5]
    assert "too long" in errors[6]
    assert [(d.line, d.message) for d in parsed.duplicates] == [
        (4, "the same e-mail address as line 1")
    ]


# --- the admin view -------------------------------------------------------------


def test_import_good_file_creates_subscribers_in_one_list(mailing_editor_client):
    response = post_import(
        mailing_editor_client,
        (
            "name,email\nAnna Nowak,anna@example.com\n"
            "Zażółć Gęślą Jaźń,zgj@example.pl\n"
        ).encode(),
        new_list_name="Webinar 2026",
    )
    assert response.status_code == 200
    assert Subscriber.objects.count() == 2
    lst = SubscriberList.objects.get(name="Webinar 2026")
    assert set(lst.subscribers.values_list("email", flat=True)) == {
        "anna@example.com",
        "zgj@example.pl",
    }
    zgj = Subscriber.objects.get(email="zgj@example.pl")
    assert zgj.name == "Zażółć Gęślą Jaźń"
    assert zgj.subscribed and zgj.email_normalized == "zgj@example.pl"
    assert "2 new subscribers added" in response.content.decode()


def test_import_cp1250_file(mailing_editor_client):
    content = "Zażółć Gęślą Jaźń,zgj@example.pl\nŁucja Żak,lucja@example.pl\n".encode(
        "cp1250"
    )
    post_import(mailing_editor_client, content)
    assert Subscriber.objects.get(email="lucja@example.pl").name == "Łucja Żak"
    assert Subscriber.objects.get(email="zgj@example.pl").name == "Zażółć Gęślą Jaźń"


def test_import_utf8_bom_file(mailing_editor_client):
    post_import(
        mailing_editor_client, "\ufeffname,email\nŁucja,lucja@example.pl\n".encode()
    )
    assert Subscriber.objects.get().name == "Łucja"


def test_file_with_errors_imports_nothing_and_lists_lines(mailing_editor_client):
    response = post_import(
        mailing_editor_client,
        b"Anna,anna@example.com\nBad,bad@\nJan,jan@example.com\n",
    )
    body = response.content.decode()
    assert Subscriber.objects.count() == 0
    assert "Nothing was imported" in body
    assert "bad@" in body  # the offending line is shown...
    assert "<td>2</td>" in body  # ...with its line number


def test_skip_invalid_imports_the_rest_in_one_go(mailing_editor_client):
    post_import(
        mailing_editor_client,
        b"Anna,anna@example.com\nBad,bad@\nJan,jan@example.com\n",
        skip_invalid="on",
    )
    assert set(Subscriber.objects.values_list("email", flat=True)) == {
        "anna@example.com",
        "jan@example.com",
    }


def test_existing_addresses_are_reported_and_join_the_list(
    mailing_editor_client, subscriber_list
):
    target = SubscriberList.objects.create(name="Autumn")
    response = post_import(
        mailing_editor_client,
        b"Ewa,EWA@example.com\nGone,gone@example.com\nNew,new@example.com\n",
        target_list=str(target.pk),
    )
    body = response.content.decode()
    assert "2 addresses were already subscribers" in body
    assert Subscriber.objects.filter(email_normalized="ewa@example.com").count() == 1
    assert set(target.subscribers.values_list("email_normalized", flat=True)) == {
        "ewa@example.com",
        "gone@example.com",
        "new@example.com",
    }
    # An import is not consent: who unsubscribed stays unsubscribed.
    assert not Subscriber.objects.get(email_normalized="gone@example.com").subscribed


def test_lists_column_creates_lists(mailing_editor_client):
    post_import(
        mailing_editor_client,
        b"name,email,lists\nAnna,anna@example.com,VIP|Autumn\nJan,jan@example.com,Autumn\n",
    )
    assert SubscriberList.objects.get(name="Autumn").subscribers.count() == 2
    assert SubscriberList.objects.get(name="VIP").subscribers.count() == 1


def test_binary_and_empty_uploads_are_refused_politely(mailing_editor_client):
    response = post_import(mailing_editor_client, b"PK\x03\x04\x00\x00binary")
    assert response.status_code == 200
    assert "does not look like a text file" in response.content.decode()
    response = post_import(mailing_editor_client)
    assert response.status_code == 200
    assert "Choose a CSV file or paste the rows" in response.content.decode()
    assert Subscriber.objects.count() == 0


def test_paste_import(mailing_editor_client):
    response = post_import(mailing_editor_client, text="Anna,anna@example.com")
    assert Subscriber.objects.filter(email="anna@example.com").exists()
    # The report is shown; the form is empty again, so "Import" twice sends nothing.
    assert "Imported 1 new subscriber" in response.content.decode()
    assert not response.context["form"].is_bound


# --- export ---------------------------------------------------------------------


def read_csv(response) -> list[list[str]]:
    content = (
        b"".join(response.streaming_content) if response.streaming else response.content
    )
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def test_export_neutralises_formulas_and_keeps_polish_letters(
    mailing_editor_client, subscriber_list
):
    Subscriber.objects.create(name='=HYPERLINK("http://evil")', email="f@example.com")
    Subscriber.objects.create(name="Zażółć Gęślą Jaźń", email="z@example.com")
    response = mailing_editor_client.get(admin_url(*EXPORT_URL))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = read_csv(response)
    assert rows[0][:4] == ["name", "email", "lists", "subscribed"]
    by_email = {row[1]: row for row in rows[1:]}
    assert by_email["f@example.com"][0] == '\'=HYPERLINK("http://evil")'
    assert by_email["z@example.com"][0] == "Zażółć Gęślą Jaźń"
    assert by_email["ewa@example.com"][2] == "Newsletter"
    assert by_email["gone@example.com"][3] == "no"


def test_export_follows_the_listing_filters(mailing_editor_client, subscriber_list):
    Subscriber.objects.create(name="Outside", email="out@example.com")
    response = mailing_editor_client.get(
        admin_url(*EXPORT_URL),
        {"lists__id__exact": subscriber_list.pk, "subscribed__exact": "1"},
    )
    emails = {row[1] for row in read_csv(response)[1:]}
    assert emails == {"ewa@example.com", "piotr@example.com"}


@pytest.mark.parametrize("url", [IMPORT_URL, EXPORT_URL, INDEX_URL])
def test_subscriber_pages_refuse_users_without_permission(client, plain_editor, url):
    client.force_login(plain_editor)
    response = client.get(admin_url(*url))
    assert response.status_code == 302
    assert response.url == reverse("wagtailadmin_home")


def test_import_needs_add_permission(client, db):
    from tests.utils import make_user

    viewer = make_user("viewer", perms=["wagtail_paidwebinar.view_subscriber"])
    client.force_login(viewer)
    assert client.get(admin_url(*INDEX_URL)).status_code == 200
    assert (
        client.post(admin_url(*IMPORT_URL), {"text": "a,a@example.com"}).status_code
        == 302
    )
    assert Subscriber.objects.count() == 0
    assert client.get(admin_url(*EXPORT_URL)).status_code == 200


# --- add / edit one subscriber ----------------------------------------------------

CREATE_URL = ("subscriber", "create")


def test_add_subscriber_rejects_a_duplicate_email_case_insensitively(
    mailing_editor_client, subscriber_list
):
    response = mailing_editor_client.post(
        admin_url(*CREATE_URL),
        {
            "name": "Ewa Again",
            "email": "EWA@Example.com",
            "subscribed": "on",
            "source": "",
        },
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Subscriber.objects.filter(email_normalized="ewa@example.com").count() == 1


def test_add_subscriber_rejects_bidi_controls_and_saves_good_ones(
    mailing_editor_client,
):
    response = mailing_editor_client.post(
        admin_url(*CREATE_URL),
        {"name": "Evil\u202eName", "email": "evil@example.com", "subscribed": "on"},
    )
    assert response.status_code == 200
    assert not Subscriber.objects.exists()
    response = mailing_editor_client.post(
        admin_url(*CREATE_URL),
        {"name": "  Łucja   Żak ", "email": "Lucja@Example.pl", "subscribed": "on"},
    )
    assert response.status_code == 302
    lucja = Subscriber.objects.get()
    assert lucja.name == "Łucja Żak"
    assert lucja.email_normalized == "lucja@example.pl"


def test_report_escapes_what_the_file_says(mailing_editor_client):
    response = post_import(
        mailing_editor_client,
        b'<script>alert(1)</script>,not-an-email\n"Multi\nline",m@example.com\n',
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "line break" in body
    assert Subscriber.objects.count() == 0


def test_too_many_lines_is_reported(mailing_editor_client, settings):
    settings.WAGTAIL_PAIDWEBINAR_MAX_LINES = 3
    response = post_import(
        mailing_editor_client,
        b"".join(b"P%d,p%d@example.com\n" % (i, i) for i in range(5)),
    )
    assert "Too many lines" in response.content.decode()
    assert Subscriber.objects.count() == 0
