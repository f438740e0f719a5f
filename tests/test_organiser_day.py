"""The organiser's day in the Polish admin: what the admin says matches what happens.

Each test drives the admin views with a logged-in editor, as an organiser would.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.fixtures_links import LINK_PERMS
from tests.utils import admin_url, make_user, make_webinar
from wagtail_paidwebinar.models import PersonalLink, Subscriber

pytestmark = pytest.mark.django_db

POLISH = {"HTTP_ACCEPT_LANGUAGE": "pl"}
# What Polish Excel writes for "CSV (rozdzielany średnikami)": CP1250, ";", CRLF.
EXCEL_PL = (
    "Imię;Nazwisko;E-mail;Telefon\r\n"
    "Jan;Kowalski;jan@example.pl;600100200\r\n"
    "Łucja;Żak;lucja@example.pl;\r\n"
).encode("cp1250")


def upload(content: bytes, name: str = "uczestnicy.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


@pytest.fixture
def organiser(db):
    """Generates links, sees their URLs and manages subscribers."""
    from tests.fixtures_invitations import SUBSCRIBER_PERMS

    return make_user(
        "organiser",
        perms=[
            *[LINK_PERMS[k] for k in ("view", "add", "change", "url")],
            *SUBSCRIBER_PERMS,
        ],
    )


@pytest.fixture
def client_pl(organiser) -> Client:
    client = Client(**POLISH)
    client.force_login(organiser)
    return client


@pytest.fixture
def webinar(db):
    return make_webinar(title="Excel dla trenerów", slug="excel")


# --- 1. Polish Excel's first name + surname columns ----------------------------------


def test_subscriber_import_joins_first_name_and_surname_and_warns_ignored(client_pl):
    response = client_pl.post(
        admin_url("subscriber", "import"), {"file": upload(EXCEL_PL)}
    )
    assert response.status_code == 200
    names = dict(Subscriber.objects.values_list("email", "name"))
    assert names == {"jan@example.pl": "Jan Kowalski", "lucja@example.pl": "Łucja Żak"}
    body = response.content.decode()
    assert 'id="pw-report-warnings"' in body
    assert "Telefon" in body


def test_generate_upload_joins_surname_in_any_order(client_pl, webinar):
    content = (
        "Nazwisko;E-mail;Firma;Imię\r\nKowalski;jan@example.pl;ACME;Jan\r\n"
    ).encode("cp1250")
    response = client_pl.post(
        admin_url(PersonalLink, "generate"),
        {"webinar": webinar.pk, "file": upload(content)},
        follow=True,
    )
    assert response.status_code == 200
    link = PersonalLink.objects.get()
    assert (link.name, link.email) == ("Jan Kowalski", "jan@example.pl")
    assert "Firma" in response.content.decode()


def test_generate_paste_with_english_header(client_pl, webinar):
    client_pl.post(
        admin_url(PersonalLink, "generate"),
        {
            "webinar": webinar.pk,
            "names": "First name,Last name,Email\nAnna,Nowak,anna@example.com\n",
        },
    )
    assert PersonalLink.objects.get().name == "Anna Nowak"


# --- 2. over-limit input is refused whole; the result page stays small ---------------


def test_generate_over_the_line_limit_creates_nothing(client_pl, webinar, settings):
    settings.WAGTAIL_PAIDWEBINAR_MAX_LINES = 3
    names = "Imię;Nazwisko\n" + "".join(f"Osoba;Nr{i}\n" for i in range(5))
    response = client_pl.post(
        admin_url(PersonalLink, "generate"),
        {"webinar": webinar.pk, "file": upload(names.encode())},
    )
    assert response.status_code == 200
    assert not PersonalLink.objects.exists()
    form = response.context["form"]
    message = " ".join(form.non_field_errors())
    assert "5" in message and "3" in message


def test_generate_api_over_the_limit_creates_nothing(webinar, settings):
    from wagtail_paidwebinar.actions import generate_links

    settings.WAGTAIL_PAIDWEBINAR_MAX_LINES = 3
    result = generate_links(webinar, "A\nB\nC\nD\n")
    assert result.aborted and not result.created
    assert not PersonalLink.objects.exists()


def test_subscriber_import_over_the_limit_imports_nothing(client_pl, settings):
    settings.WAGTAIL_PAIDWEBINAR_MAX_LINES = 3
    content = b"".join(b"P%d,p%d@example.com\n" % (i, i) for i in range(5))
    response = client_pl.post(
        admin_url("subscriber", "import"),
        {"file": upload(content), "skip_invalid": "on"},
    )
    assert response.status_code == 200
    assert not Subscriber.objects.exists()
    message = " ".join(response.context["form"].non_field_errors())
    assert "5" in message and "3" in message


def test_upload_over_the_byte_limit_names_size_and_limit(client_pl, webinar, settings):
    settings.WAGTAIL_PAIDWEBINAR_LINKS_MAX_UPLOAD_BYTES = 100
    response = client_pl.post(
        admin_url(PersonalLink, "generate"),
        {"webinar": webinar.pk, "file": upload(b"Anna Nowak\n" * 30)},
    )
    message = " ".join(response.context["form"].errors["file"])
    assert "330" in message and "100" in message
    assert not PersonalLink.objects.exists()


def test_result_page_lists_at_most_200_links(client_pl, webinar):
    names = "\n".join(f"Uczestnik {i}" for i in range(250))
    response = client_pl.post(
        admin_url(PersonalLink, "generate"), {"webinar": webinar.pk, "names": names}
    )
    html = client_pl.get(response["Location"]).content.decode()
    assert html.count('class="pw-link-url"') == 200
    assert 'id="pw-rows-hidden"' in html
    csv_body = client_pl.get(response["Location"] + "csv/").content.decode("utf-8")
    assert csv_body.count("?access=") == 250


# --- 14. "Bob <not-an-email>" ---------------------------------------------------


def test_angle_brackets_without_an_address_warn(client_pl, webinar):
    response = client_pl.post(
        admin_url(PersonalLink, "generate"),
        {"webinar": webinar.pk, "names": "Bob <not-an-email>\nAnna"},
        follow=True,
    )
    assert PersonalLink.objects.count() == 2
    warnings = response.context["result"]["warnings"]
    assert [line for line, _raw, _message in warnings] == [1]
    assert "not-an-email" in warnings[0][2]


# --- 3. "CSV (Excel)" for a decimal-comma admin language ------------------------------


def read_excel_csv(response) -> list[list[str]]:
    import csv
    import io

    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:]), delimiter=";"))


def test_links_export_offers_excel_csv_in_polish(client_pl, webinar):
    from wagtail_paidwebinar.actions import generate_links

    generate_links(webinar, "=cmd|'/C calc'!A0 <evil@example.com>\nŁucja Żak")
    listing = client_pl.get(admin_url(PersonalLink, "list")).content.decode()
    export = admin_url(PersonalLink, "export")
    assert f"{export}?format=excel" in listing
    rows = read_excel_csv(client_pl.get(export, {"format": "excel"}))
    assert rows[0][:2] == ["Imię i nazwisko", "E-mail"]
    assert rows[1][0].startswith("'=") and rows[2][0] == "Łucja Żak"
    assert all(len(row) == len(rows[0]) for row in rows)


def test_no_excel_variant_in_english(organiser, webinar):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(organiser)
    listing = client.get(admin_url(PersonalLink, "list")).content.decode()
    assert "format=excel" not in listing


def test_generate_result_offers_excel_csv(client_pl, webinar):
    response = client_pl.post(
        admin_url(PersonalLink, "generate"),
        {"webinar": webinar.pk, "names": "Anna Nowak, anna@example.com"},
    )
    html = client_pl.get(response["Location"]).content.decode()
    assert "csv/?format=excel" in html
    rows = read_excel_csv(client_pl.get(response["Location"] + "csv/?format=excel"))
    assert rows[1][:2] == ["Anna Nowak", "anna@example.com"]


def test_subscribers_export_offers_excel_csv(client_pl):
    Subscriber.objects.create(
        name="+48 Nowak", email="a@example.com", email_normalized="a@example.com"
    )
    index = client_pl.get(admin_url("subscriber", "index")).content.decode()
    assert "export_all/?format=excel" in index
    response = client_pl.get(admin_url("subscriber", "export_all"), {"format": "excel"})
    rows = read_excel_csv(response)
    assert len(rows[0]) == 6 and rows[0][1] == "E-mail"
    assert rows[1][0] == "'+48 Nowak"
    # The plain CSV keeps its machine-readable header.
    plain = client_pl.get(admin_url("subscriber", "export_all")).content.decode()
    assert plain.startswith("\ufeffname,email,lists")


# --- 4. names-only links meet their e-mails ------------------------------------------


def test_pasting_emails_for_names_only_links_attaches_them_after_confirmation(
    client_pl, webinar
):
    from wagtail_paidwebinar.actions import generate_links

    anna, jan = generate_links(webinar, "Anna Nowak\nJan Kowalski").created
    url = admin_url(PersonalLink, "generate")
    response = client_pl.post(
        url,
        {
            "webinar": webinar.pk,
            "names": "Anna Nowak, anna@example.com\nEwa Lis, ewa@example.com",
        },
    )
    # Step one: nothing created yet, the match listed.
    assert response.status_code == 200
    assert PersonalLink.objects.count() == 2
    html = response.content.decode()
    assert 'id="pw-confirm-matches"' in html and "anna@example.com" in html
    form = response.context["form"]
    assert form["confirmed"].value() == "True"
    # Step two: confirm with "attach" (on by default).
    response = client_pl.post(
        url,
        {
            "webinar": webinar.pk,
            "names": form["names"].value(),
            "confirmed": "True",
            "attach_emails": "on",
        },
        follow=True,
    )
    anna.refresh_from_db()
    assert anna.email == "anna@example.com"
    assert PersonalLink.objects.filter(name="Anna Nowak").count() == 1
    assert PersonalLink.objects.get(name="Ewa Lis").email == "ewa@example.com"
    assert 'id="pw-attached"' in response.content.decode()


def test_declining_attach_creates_a_second_link(client_pl, webinar):
    from wagtail_paidwebinar.actions import generate_links

    generate_links(webinar, "Anna Nowak")
    client_pl.post(
        admin_url(PersonalLink, "generate"),
        {
            "webinar": webinar.pk,
            "names": "Anna Nowak, anna@example.com",
            "confirmed": "True",
        },
    )
    assert PersonalLink.objects.filter(name="Anna Nowak").count() == 2


def test_a_name_that_already_has_a_link_is_confirmed_before_creation(
    client_pl, webinar
):
    from wagtail_paidwebinar.actions import generate_links

    generate_links(webinar, "Jan Kowalski <jan@example.com>")
    url = admin_url(PersonalLink, "generate")
    response = client_pl.post(url, {"webinar": webinar.pk, "names": "jan kowalski"})
    assert PersonalLink.objects.count() == 1
    assert 'id="pw-confirm-matches"' in response.content.decode()
    assert "attach_emails" in response.context["form"].fields
    client_pl.post(
        url, {"webinar": webinar.pk, "names": "jan kowalski", "confirmed": "True"}
    )
    assert PersonalLink.objects.count() == 2


# --- 5./6. one definition of "who is invited" -----------------------------------


@pytest.fixture
def link_holder_mailing(webinar):
    from django.utils import timezone

    from wagtail_paidwebinar.actions import generate_links
    from wagtail_paidwebinar.mailing import create_mailing
    from wagtail_paidwebinar.models import SubscriberList

    links = generate_links(
        webinar,
        "Anna Nowak <anna@example.com>\nRevoked Rita <rita@example.com>\nJan Bez Maila",
    ).created
    PersonalLink.objects.filter(pk=links[1].pk).update(revoked_at=timezone.now())
    members = SubscriberList.objects.create(name="Klienci")
    for name, email in (("Rita", "rita@example.com"), ("Ewa", "ewa@example.com")):
        members.subscribers.create(name=name, email=email, email_normalized=email)
    return create_mailing(
        webinar,
        subject="Zaproszenie",
        body_html="<p>Dzień dobry</p>",
        audience=["link_holders", members],
    )


def test_own_mailbox_export_leaves_out_revoked_and_lists_names_only(
    mailing_editor_client, link_holder_mailing
):
    import csv
    import io

    response = mailing_editor_client.get(
        admin_url("mailing", "export", link_holder_mailing.pk)
    )
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8")[1:])))
    by_name = {row[0]: row for row in rows[1:]}
    assert set(by_name) == {"Anna Nowak", "Ewa", "Jan Bez Maila"}
    assert by_name["Jan Bez Maila"][1] == ""
    assert "?access=" in by_name["Jan Bez Maila"][2]
    messages_page = mailing_editor_client.get(
        admin_url("mailing", "messages", link_holder_mailing.pk)
    ).content.decode()
    assert "Jan Bez Maila" in messages_page and "Revoked Rita" not in messages_page


def test_send_confirmation_counts_like_the_engine_and_lists_the_skipped(
    mailing_editor_client, link_holder_mailing, django_capture_on_commit_callbacks
):
    from wagtail_paidwebinar.models import RecipientStatus

    url = admin_url("mailing", "send", link_holder_mailing.pk)
    response = mailing_editor_client.get(url)
    summary = response.context["summary"]
    assert summary.total == 2  # Anna (link holder) and Ewa (member, link issued)
    html = response.content.decode()
    assert 'id="pw-skipped"' in html and "rita@example.com" in html
    assert "revoked or expired" in html
    with django_capture_on_commit_callbacks(execute=False):
        mailing_editor_client.post(url)
    rows = link_holder_mailing.recipients.all()
    sendable = rows.exclude(status=RecipientStatus.FAILED).count()
    assert sendable == summary.total
    assert rows.get(email_normalized="rita@example.com").status == (
        RecipientStatus.FAILED
    )


# --- 10. after the event ----------------------------------------------------------


def test_past_webinar_teaser_says_it_took_place(client):
    import datetime as dt

    from django.utils import timezone

    past = make_webinar(
        title="Past one",
        starts_at=timezone.now() - dt.timedelta(days=3),
        closes_minutes_after=60,
    )
    still_open = make_webinar(
        title="Still open",
        starts_at=timezone.now() - dt.timedelta(hours=3),
        closes_minutes_after=60 * 24 * 7,
    )
    upcoming = make_webinar(title="Upcoming one")
    html = client.get(past.url).content.decode()
    assert "took place" in html and "The room is closed." in html
    assert "room is open to participants" not in html
    html = client.get(still_open.url).content.decode()
    # No recording offered: the room is open, no replay is promised (test_replay.py
    # covers a webinar offering one).
    assert "took place" in html and "can open the room" in html
    assert "replay" not in html
    html = client.get(upcoming.url).content.decode()
    assert "room is open to participants" in html and "took place" not in html


# --- 11./12. public room warning, drafts --------------------------------------------


def test_access_tab_warns_about_a_public_room_and_explains_drafts(admin_client):
    from django.urls import reverse

    public = make_webinar(title="Open room", allow_link_sharing=True, room_password="")
    closed = make_webinar(title="Closed room", room_password="kawa")
    edit = "wagtailadmin_pages:edit"
    html = admin_client.get(reverse(edit, args=[public.pk])).content.decode()
    assert 'id="pw-public-room-warning"' in html
    assert "takes effect only when the page is published" in html
    html = admin_client.get(reverse(edit, args=[closed.pk])).content.decode()
    assert 'id="pw-public-room-warning"' not in html


def test_publishing_a_public_room_warns(admin_client):
    from django.urls import reverse

    page = make_webinar(title="Open room", allow_link_sharing=True, room_password="")
    response = admin_client.post(
        reverse("wagtailadmin_pages:edit", args=[page.pk]),
        _edit_form_data(admin_client, page, {"action-publish": "action-publish"}),
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert any("no room password" in m for m in messages), messages


def _edit_form_data(client, page, extra):
    """The edit form's current values as POST data (what the browser would send)."""
    from django.urls import reverse

    response = client.get(reverse("wagtailadmin_pages:edit", args=[page.pk]))
    form = response.context["form"]
    data = {}
    for name, field in form.fields.items():
        bound = form[name]
        if field.__class__.__name__ == "BlockField":
            data[f"{bound.html_name}-count"] = "0"  # an empty room
            continue
        value = bound.value()
        widget_data = field.widget.format_value(value) if value is not None else ""
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[bound.html_name] = widget_data if widget_data is not None else ""
    for formset in form.formsets.values():
        data.update(
            {
                f"{formset.prefix}-TOTAL_FORMS": "0",
                f"{formset.prefix}-INITIAL_FORMS": "0",
            }
        )
    data.update(extra)
    return data


# --- 8. consent: access e-mails are transactional ---------------------------------


def test_link_holder_mail_is_transactional_and_list_mail_can_unsubscribe(
    mailing_editor_client,
    link_holder_mailing,
    webinar,
    invitations_queue,
    django_capture_on_commit_callbacks,
):
    from django.core import mail

    from wagtail_paidwebinar.mailing import create_mailing
    from wagtail_paidwebinar.models import SubscriberList

    compose = mailing_editor_client.get(admin_url("mailing", "create")).content
    assert "access e-mail, not marketing" in compose.decode()
    send_url = admin_url("mailing", "send", link_holder_mailing.pk)
    page = mailing_editor_client.get(send_url).content.decode()
    assert 'id="pw-transactional-note"' in page
    holders_only = create_mailing(
        webinar, subject="Dostęp", body_html="<p>Link</p>", audience="link_holders"
    )
    members = create_mailing(
        webinar,
        subject="Nowości",
        body_html="<p>News</p>",
        audience=[SubscriberList.objects.get(name="Klienci")],
    )
    for mailing in (holders_only, members):
        with django_capture_on_commit_callbacks(execute=True):
            mailing_editor_client.post(admin_url("mailing", "send", mailing.pk))
    by_subject = {}
    for message in mail.outbox:
        by_subject.setdefault(message.subject, []).append(message)
    for message in by_subject["Dostęp"]:
        assert "List-Unsubscribe" not in message.extra_headers
        assert "nsubscribe" not in message.body
    list_messages = by_subject["Nowości"]
    assert list_messages
    for message in list_messages:
        assert "List-Unsubscribe" in message.extra_headers
    # The unsubscribe page says what still arrives.
    link = message.extra_headers["List-Unsubscribe"].split(",")[0].strip("<> ")
    path = link.split("://", 1)[1].split("/", 1)[1]
    html = Client(**POLISH).get("/" + path).content.decode()
    assert 'class="pw-transactional"' in html


# --- 13. whole sentences in the Polish listings ------------------------------------


@pytest.fixture
def pl_mailing_client(mailing_editor):
    client = Client(**POLISH)
    client.force_login(mailing_editor)
    return client


@pytest.mark.parametrize(
    "model, texts",
    [
        ("subscriber", ("Add subscriber", "There are no subscribers yet.")),
        ("mailing", ("Add mailing", "There are no mailings yet.")),
    ],
)
def test_listing_buttons_and_empty_states_are_whole_sentences(
    pl_mailing_client, model, texts
):
    from wagtail_paidwebinar.modeladmin import TEXTS

    by_name = {m._meta.model_name: t for m, t in TEXTS.items()}
    response = pl_mailing_client.get(admin_url(model, "index"))
    html = response.content.decode()
    assert 'id="pw-empty-state"' in html
    # Rendered from our own sentences (translated whole once the catalogue has
    # them), never from "Add %(object)s" / "No %(name)s have been created yet".
    assert str(by_name[model]["empty"]) in html
    assert str(by_name[model]["add"]) in html
    assert (
        response.context["view"].button_helper.add_button()["label"]
        == (by_name[model]["add"])
    )
    create = pl_mailing_client.get(admin_url(model, "create"))
    assert create.context["view"].get_page_title() == by_name[model]["new"]
    assert create.context["view"].get_page_subtitle() == ""


def test_no_results_and_mailing_titles_with_the_webinar(pl_mailing_client, webinar):
    from wagtail_paidwebinar.mailing import create_mailing

    create_mailing(
        webinar,
        subject="Dostęp do {{ webinar }}",
        body_html="<p>x</p>",
        audience="link_holders",
    )
    html = pl_mailing_client.get(admin_url("mailing", "index")).content.decode()
    assert "Dostęp do Excel dla trenerów" in html
    assert "{{ webinar }}" not in html
    html = pl_mailing_client.get(
        admin_url("mailing", "index"), {"q": "nic takiego"}
    ).content.decode()
    assert 'id="pw-no-results"' in html


def test_webinar_choosers_name_the_time_zone(client_pl, webinar):
    html = client_pl.get(admin_url(PersonalLink, "generate")).content.decode()
    assert "Europe/Warsaw)" in html
