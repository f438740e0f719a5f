"""The "Personal links" admin, as an editor and as users lacking each permission."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse
from wagtail.models import ModelLogEntry

from tests.fixtures_links import LINK_PERMS
from tests.utils import admin_url, make_user, make_webinar
from wagtail_paidwebinar.actions import generate_links
from wagtail_paidwebinar.models import LinkDevice, LinkStatus, PersonalLink

pytestmark = pytest.mark.django_db


def url(name, *args, **kwargs):
    return admin_url(PersonalLink, name, *args, **kwargs)


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def assert_denied(response):
    """Wagtail answers a permission error with a redirect to the dashboard."""
    assert response.status_code in (302, 403)
    if response.status_code == 302:
        assert response["Location"] == reverse("wagtailadmin_home")


def read_csv(response):
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


def generate(client, webinar, names, **extra):
    data = {"webinar": webinar.pk, "names": names, **extra}
    return client.post(url("generate"), data)


# --- listing --------------------------------------------------------------------------


def test_listing_as_editor_shows_links_and_copy_buttons(links_editor, links):
    PersonalLink.objects.filter(pk=links[0].pk).update(claimed_at="2026-01-01T10:00Z")
    LinkDevice.objects.create(link=links[0], secret_hash="x" * 64)
    response = login(links_editor).get(url("list"))
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("Anna Nowak", "Jan Kowalski", "Zażółć Gęślą Jaźń", "anna@example.com"):
        assert name in html
    assert "In use" in html and "Unused" in html
    assert links[0].get_url() in html
    assert 'data-action="w-clipboard#copy"' in html
    assert "Generate links" in html
    assert url("revoke", links[0].pk) in html


def test_listing_as_viewer_has_no_urls_and_no_actions(links_viewer, links):
    response = login(links_viewer).get(url("list"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Anna Nowak" in html
    assert "?access=" not in html
    assert url("revoke", links[0].pk) not in html
    assert url("generate") not in html


def test_listing_needs_a_permission(links):
    nobody = make_user("nobody")
    assert_denied(login(nobody).get(url("list")))


def test_names_are_escaped_everywhere(links_editor, webinar):
    generate_links(webinar, "<script>alert(1)</script> <x@example.com>")
    response = login(links_editor).get(url("list"))
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_filters_and_search(links_editor, links, index, webinar):
    other = make_webinar(index, title="Other webinar")
    generate_links(other, "Ola Other")
    client = login(links_editor)
    links[1].revoked_at = "2026-01-01T10:00Z"
    links[1].save()

    html = client.get(url("list"), {"status": LinkStatus.REVOKED}).content.decode()
    assert "Jan Kowalski" in html and "Anna Nowak" not in html

    html = client.get(url("list"), {"status": LinkStatus.UNUSED}).content.decode()
    assert "Jan Kowalski" not in html and "Anna Nowak" in html and "Ola Other" in html

    html = client.get(url("list"), {"webinar": other.pk}).content.decode()
    assert "Ola Other" in html and "Anna Nowak" not in html

    html = client.get(url("list"), {"q": "ANNA@example"}).content.decode()
    assert "Anna Nowak" in html and "Jan Kowalski" not in html

    # Garbage in the query string is not a 500.
    for params in ({"status": "nope"}, {"webinar": "x'"}, {"ordering": "?"}):
        assert client.get(url("list"), params).status_code == 200


# --- generate -------------------------------------------------------------------------


def test_generate_flow_as_editor(links_editor, webinar):
    client = login(links_editor)
    assert client.get(url("generate")).status_code == 200
    response = generate(
        client,
        webinar,
        "Zażółć Gęślą Jaźń\r\nAnna <anna@example.com>\nanna, ANNA@example.com\n"
        "Bad \u202eName\n<b>Bold</b>",
    )
    assert response.status_code == 302
    result_url = response["Location"]
    # The result URL carries a random session key, never a token.
    assert "access" not in result_url
    html = client.get(result_url).content.decode()
    created = list(PersonalLink.objects.order_by("pk"))
    assert [x.name for x in created] == ["Zażółć Gęślą Jaźń", "Anna", "<b>Bold</b>"]
    assert all(x.created_by == links_editor for x in created)
    for link in created:
        assert link.get_url() in html
    assert "3 new links were created" in html
    assert "1 duplicate was skipped" in html
    assert "1 line has an error" in html
    assert "U+202E" in html
    assert "&lt;b&gt;Bold&lt;/b&gt;" in html and "<b>Bold</b>" not in html
    assert "Copy all" in html

    # CSV of the new links.
    rows = read_csv(client.get(result_url + "csv/"))
    assert rows[0] == ["Name", "E-mail", "Link", "Expires at", "Status"]
    assert [r[0] for r in rows[1:]] == ["Zażółć Gęślą Jaźń", "Anna", "<b>Bold</b>"]
    assert rows[1][2] == created[0].get_url()

    entry = ModelLogEntry.objects.none()  # generation is logged on the page
    assert not entry.exists()


def test_generate_all_or_nothing_and_expiry(links_editor, webinar):
    client = login(links_editor)
    response = generate(client, webinar, "Good\nBad\x00", all_or_nothing="on")
    html = client.get(response["Location"]).content.decode()
    assert "Nothing was created" in html
    assert not PersonalLink.objects.exists()

    generate(client, webinar, "Good", valid_for_days="7")
    link = PersonalLink.objects.get()
    assert link.expires_at is not None

    response = generate(client, webinar, "Late", expires_at="2001-01-01 10:00")
    assert response.status_code == 200
    assert "in the past" in response.content.decode()
    response = generate(
        client, webinar, "Both", expires_at="2099-01-01 10:00", valid_for_days="3"
    )
    assert "not both" in response.content.decode()
    assert PersonalLink.objects.count() == 1


def test_generate_from_uploaded_cp1250_file(links_editor, webinar):
    client = login(links_editor)
    upload = SimpleUploadedFile(
        "lista.csv", "Imię;E-mail\nZażółć Gęślą;zg@example.pl\n".encode("cp1250")
    )
    response = client.post(url("generate"), {"webinar": webinar.pk, "file": upload})
    assert response.status_code == 302
    assert PersonalLink.objects.get().name == "Zażółć Gęślą"


def test_generate_rejects_binary_upload_and_empty_form(links_editor, webinar):
    client = login(links_editor)
    upload = SimpleUploadedFile("lista.xlsx", b"PK\x03\x04\x00\x00binary")
    response = client.post(url("generate"), {"webinar": webinar.pk, "file": upload})
    assert response.status_code == 200
    assert "does not look like a text file" in response.content.decode()
    response = generate(client, webinar, "   \n ")
    assert "at least one name" in response.content.decode()
    response = client.post(url("generate"), {"webinar": "not-a-number", "names": "A"})
    assert response.status_code == 200
    assert not PersonalLink.objects.exists()


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2000)
def test_paste_over_the_upload_limit_gets_a_friendly_message(links_editor, webinar):
    client = Client(enforce_csrf_checks=True)
    client.force_login(links_editor)
    page = client.get(url("generate"))
    token = re.search(
        r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()
    )[1]
    names = "\n".join(f"Uczestnik {i}" for i in range(500))
    response = client.post(
        url("generate"),
        {"csrfmiddlewaretoken": token, "webinar": webinar.pk, "names": names},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "too large" in html and "Upload it as a .txt or .csv file" in html
    assert not PersonalLink.objects.exists()


def test_generate_needs_csrf(links_editor, webinar):
    client = Client(enforce_csrf_checks=True)
    client.force_login(links_editor)
    response = client.post(url("generate"), {"webinar": webinar.pk, "names": "Anna"})
    assert response.status_code == 403
    assert not PersonalLink.objects.exists()


def test_generate_needs_add_permission(links_viewer, webinar):
    client = login(links_viewer)
    assert_denied(client.get(url("generate")))
    assert_denied(generate(client, webinar, "Anna"))
    assert not PersonalLink.objects.exists()
    # The stock "add" URL leads to the generate view, with the same check.
    assert_denied(client.get(url("add")))


def test_generate_preselects_the_filtered_webinar(links_editor, index, webinar):
    other = make_webinar(index, title="Other webinar")
    client = login(links_editor)
    html = client.get(url("list"), {"webinar": other.pk}).content.decode()
    assert f"{url('generate')}?webinar={other.pk}" in html
    html = client.get(url("generate"), {"webinar": other.pk}).content.decode()
    assert f'<option value="{other.pk}" selected>' in html
    assert client.get(url("generate"), {"webinar": "x"}).status_code == 200


def test_add_url_redirects_to_generate(links_editor):
    response = login(links_editor).get(url("add"))
    assert response.status_code == 302 and response["Location"] == url("generate")


def test_result_without_url_permission_shows_no_urls(webinar):
    adder = make_user("adder", perms=[LINK_PERMS["view"], LINK_PERMS["add"]])
    client = login(adder)
    response = generate(client, webinar, "Anna\nJan")
    html = client.get(response["Location"]).content.decode()
    assert "2 new links were created" in html
    assert "?access=" not in html
    assert "not allowed to see personal link URLs" in html
    assert_denied(client.get(response["Location"] + "csv/"))


def test_result_of_another_session_or_unknown_key(links_editor, webinar):
    response = generate(login(links_editor), webinar, "Anna")
    other = login(links_editor)  # a new session of the same user
    assert other.get(response["Location"]).status_code == 302
    assert other.get(response["Location"] + "csv/").status_code == 302
    assert other.get(url("generate_result", key="nope")).status_code == 302


# --- row actions ----------------------------------------------------------------------


@pytest.mark.parametrize("action", ["revoke", "reset", "reissue"])
def test_row_actions_confirm_then_post(links_editor, links, action):
    link = links[0]
    LinkDevice.objects.create(link=link, secret_hash="x" * 64)
    old_url = link.get_url()
    client = login(links_editor)
    response = client.get(url(action, link.pk))
    assert response.status_code == 200
    assert "Anna Nowak" in response.content.decode()
    link.refresh_from_db()
    assert link.revoked_at is None and link.devices.count() == 1  # GET changes nothing

    response = client.post(url(action, link.pk))
    assert response.status_code == 302 and response["Location"] == url("list")
    link.refresh_from_db()
    if action == "revoke":
        assert link.status() == LinkStatus.REVOKED
    elif action == "reset":
        assert not link.devices.exists()
    else:
        assert link.get_url() != old_url and not link.devices.exists()
    assert ModelLogEntry.objects.filter(object_id=str(link.pk)).exists()
    entry = ModelLogEntry.objects.filter(object_id=str(link.pk)).latest("pk")
    assert entry.user == links_editor


@pytest.mark.parametrize("action", ["revoke", "reset", "reissue"])
def test_row_actions_need_change_permission(links_viewer, links, action):
    client = login(links_viewer)
    assert_denied(client.get(url(action, links[0].pk)))
    assert_denied(client.post(url(action, links[0].pk)))
    links[0].refresh_from_db()
    assert links[0].revoked_at is None


def test_row_actions_need_csrf_and_handle_unknown_ids(links_editor, links):
    client = Client(enforce_csrf_checks=True)
    client.force_login(links_editor)
    assert client.post(url("revoke", links[0].pk)).status_code == 403
    assert login(links_editor).get(url("revoke", 999999)).status_code == 404


def test_bulk_revoke(links_editor, links, links_viewer):
    bulk = reverse(
        "wagtail_bulk_action",
        args=("wagtail_paidwebinar", "personallink", "revoke_links"),
    )
    query = f"?id={links[0].pk}&id={links[1].pk}&next={url('list')}"
    client = login(links_editor)
    response = client.get(bulk + query)
    assert response.status_code == 200
    assert "Revoke 2 personal links?" in response.content.decode()
    response = client.post(bulk + query)
    assert response.status_code == 302
    statuses = [PersonalLink.objects.get(pk=x.pk).status() for x in links]
    assert statuses == [LinkStatus.REVOKED, LinkStatus.REVOKED, LinkStatus.UNUSED]
    assert (
        ModelLogEntry.objects.filter(
            action="wagtail_paidwebinar.link.revoke", user=links_editor
        ).count()
        == 2
    )

    # Someone without change permission revokes nothing.
    login(links_viewer).post(bulk + f"?id={links[2].pk}")
    assert PersonalLink.objects.get(pk=links[2].pk).status() == LinkStatus.UNUSED
    # Garbage ids are a 404, not a 500.
    assert client.get(bulk + "?id=abc").status_code == 404


# --- export ---------------------------------------------------------------------------


def test_export_as_editor(links_editor, links, webinar):
    generate_links(webinar, '=HYPERLINK("http://evil") <evil@example.com>')
    response = login(links_editor).get(url("export"), {"webinar": webinar.pk})
    assert response["Content-Type"].startswith("text/csv")
    assert "private" in response["Cache-Control"]
    assert "no-store" in response["Cache-Control"]
    assert f"personal-links-{webinar.slug}.csv" in response["Content-Disposition"]
    rows = read_csv(response)
    assert rows[0] == ["Name", "E-mail", "Link", "Expires at", "Status"]
    by_name = {r[0]: r for r in rows[1:]}
    assert by_name["Zażółć Gęślą Jaźń"][2] == links[2].get_url()
    assert '\'=HYPERLINK("http://evil")' in by_name
    assert by_name["Anna Nowak"][4] == "Unused"


def test_export_as_viewer_has_no_link_column(links_viewer, links):
    rows = read_csv(login(links_viewer).get(url("export")))
    assert rows[0] == ["Name", "E-mail", "Expires at", "Status"]
    assert all("access=" not in cell for row in rows for cell in row)


def test_export_needs_a_permission(links):
    assert_denied(login(make_user("nobody")).get(url("export")))


def test_export_respects_status_filter(links_editor, links):
    links[0].revoked_at = "2026-01-01T10:00Z"
    links[0].save()
    rows = read_csv(login(links_editor).get(url("export"), {"status": "revoked"}))
    assert [r[0] for r in rows[1:]] == ["Anna Nowak"]


# --- edit -----------------------------------------------------------------------------


def test_edit_one_link(links_editor, links):
    client = login(links_editor)
    link = links[1]
    edit = url("edit", link.pk)
    assert client.get(edit).status_code == 200
    response = client.post(edit, {"name": "Jan K.", "email": "ANNA@EXAMPLE.COM"})
    assert response.status_code == 200
    assert "already has a link" in response.content.decode()
    response = client.post(edit, {"name": "Jan \u202eK", "email": ""})
    assert "U+202E" in response.content.decode()
    response = client.post(
        edit, {"name": "  Jan  Kowalski ", "email": "Jan@Example.com"}
    )
    assert response.status_code == 302
    link.refresh_from_db()
    assert (link.name, link.email, link.email_normalized) == (
        "Jan Kowalski",
        "Jan@Example.com",
        "jan@example.com",
    )


def test_edit_needs_change_permission(links_viewer, links):
    client = login(links_viewer)
    assert_denied(client.post(url("edit", links[1].pk), {"name": "X", "email": ""}))
    links[1].refresh_from_db()
    assert links[1].name == "Jan Kowalski"


def test_result_ids_are_stored_as_ranges():
    from wagtail_paidwebinar.batches import id_ranges
    from wagtail_paidwebinar.views.links import expand_ranges

    assert id_ranges([1, 2, 3, 7, 9, 10]) == [[1, 3], [7, 7], [9, 10]]
    assert list(expand_ranges(id_ranges([5, 6, 8]))) == [5, 6, 8]
    assert id_ranges([]) == []


def test_history_shows_our_log_entries(links_editor, links, webinar):
    client = login(links_editor)
    client.post(url("revoke", links[0].pk))
    html = client.get(url("history", links[0].pk)).content.decode()
    assert "Personal link revoked" in html
    page_history = reverse("wagtailadmin_pages:history", args=[webinar.pk])
    admin = Client()
    admin.force_login(make_user("boss", superuser=True))
    html = admin.get(page_history).content.decode()
    assert "Generated 3 personal links" in html


def test_ten_thousand_line_paste_through_the_admin(
    links_editor, webinar, inline_queue, django_capture_on_commit_callbacks
):
    client = login(links_editor)
    names = "\r\n".join(
        f"Uczestnik Łódzki {i} <u{i}@example.pl>" for i in range(10_000)
    )
    # Above GENERATE_IN_BACKGROUND_ABOVE: a job, here on the inline queue when the
    # request's transaction commits (test_links_background.py has the worker).
    with django_capture_on_commit_callbacks(execute=True):
        response = generate(client, webinar, names)
    assert response.status_code == 302
    assert PersonalLink.objects.filter(webinar=webinar).count() == 10_000
    html = client.get(response["Location"]).content.decode()
    assert "10000 new links were created" in html
    assert "9800 more links" in html
    # "Copy all" carries every link, the table only the first 200 (issue 12).
    textarea = html.split('id="pw-all-links"', 1)[1].split("</textarea>", 1)[0]
    assert textarea.count("?access=") == 10_000
    rows = read_csv(client.get(response["Location"] + "csv/"))
    assert len(rows) == 10_001


@override_settings(WAGTAIL_PAIDWEBINAR_LINKS_MAX_UPLOAD_BYTES=100)
def test_upload_over_the_limit_and_paste_plus_file(links_editor, webinar):
    client = login(links_editor)
    upload = SimpleUploadedFile("big.txt", b"Anna Nowak\n" * 20)
    response = client.post(url("generate"), {"webinar": webinar.pk, "file": upload})
    assert response.status_code == 200
    assert "too large" in response.content.decode()
    upload = SimpleUploadedFile("small.txt", b"Anna Nowak\n")
    response = client.post(
        url("generate"), {"webinar": webinar.pk, "file": upload, "names": "Jan"}
    )
    assert "not both" in response.content.decode()
    assert not PersonalLink.objects.exists()


def test_names_are_escaped_on_confirm_pages_and_messages(links_editor, webinar):
    link = generate_links(webinar, "<i>Evil</i> <evil@example.com>").created[0]
    client = login(links_editor)
    for action in ("revoke", "reset", "reissue"):
        html = client.get(url(action, link.pk)).content.decode()
        assert "<i>Evil</i>" not in html and "&lt;i&gt;Evil&lt;/i&gt;" in html
    response = client.post(url("reset", link.pk), follow=True)
    html = response.content.decode()
    assert "<i>Evil</i>" not in html and "&lt;i&gt;Evil&lt;/i&gt;" in html
    bulk = reverse(
        "wagtail_bulk_action",
        args=("wagtail_paidwebinar", "personallink", "revoke_links"),
    )
    html = client.get(bulk + f"?id={link.pk}").content.decode()
    assert "<i>Evil</i>" not in html and "&lt;i&gt;Evil&lt;/i&gt;" in html


# --- no participant names to a user with admin access only ---------------------------

PARTICIPANT_TRACES = ("Anna Nowak", "Jan Kowalski", "anna@example.com")
CHOOSER_BASE = "/admin/snippets/choose/wagtail_paidwebinar/personallink/"


def _fill(pattern, link) -> dict:
    """URL kwargs for ``pattern``: every parameter gets the link's id."""
    return {
        name: link.pk if converter.regex == "[0-9]+" else str(link.pk)
        for name, converter in pattern.pattern.converters.items()
    }


def _assert_refused_without_names(response, what):
    body = response.content.decode("utf-8", "replace")
    assert response.status_code in (302, 403, 404, 405), (what, response.status_code)
    for trace in PARTICIPANT_TRACES:
        assert trace not in body, (what, trace)


def test_admin_access_alone_sees_no_participant_in_any_view_of_the_viewset(links):
    """Every URL the links viewset registers (iterated, so a future view is covered
    too) refuses a user who has admin access and nothing else, GET and POST."""
    from wagtail_paidwebinar.viewsets import PersonalLinkViewSet

    viewset = PersonalLink.snippet_viewset
    assert isinstance(viewset, PersonalLinkViewSet)
    client = login(make_user("admin_only"))
    patterns = viewset.get_urlpatterns()
    assert len(patterns) > 10
    for pattern in patterns:
        target = reverse(
            viewset.get_url_name(pattern.name), kwargs=_fill(pattern, links[0])
        )
        for method in ("get", "post"):
            response = getattr(client, method)(target)
            _assert_refused_without_names(response, (method, target))
    assert PersonalLink.objects.count() == 3
    assert all(
        link.status() == LinkStatus.UNUSED for link in PersonalLink.objects.all()
    )


def test_admin_access_alone_gets_no_chooser(links):
    """Wagtail's snippet chooser does not check permissions: it must not list, search,
    pick or create personal links for a user with admin access only (create used to
    answer 500)."""
    client = login(make_user("admin_only"))
    pk = links[0].pk
    for target, method in (
        (CHOOSER_BASE, "get"),
        (CHOOSER_BASE + "?q=Anna", "get"),
        (CHOOSER_BASE + "results/", "get"),
        (CHOOSER_BASE + "results/?q=Anna", "get"),
        (CHOOSER_BASE + f"chosen/{pk}/", "get"),
        (CHOOSER_BASE + f"chosen-multiple/?id={pk}", "get"),
        (CHOOSER_BASE + "create/", "get"),
        (CHOOSER_BASE + "create/", "post"),
    ):
        response = getattr(client, method)(target, follow=False)
        _assert_refused_without_names(response, (method, target))
    assert PersonalLink.objects.count() == 3


def test_bulk_actions_name_no_link_to_users_without_permission(links, links_viewer):
    """Every bulk action registered for personal links (ours and Wagtail's) refuses a
    user without its permission before its confirmation lists anyone by name."""
    from wagtail.admin.views.bulk_action.registry import bulk_action_registry

    actions = list(
        bulk_action_registry.get_bulk_actions_for_model(
            "wagtail_paidwebinar", "personallink"
        )
    )
    assert {"revoke_links", "delete"} <= {a.action_type for a in actions}
    query = f"?id={links[0].pk}&id={links[1].pk}"
    for user in (make_user("admin_only"), links_viewer):
        client = login(user)
        for action in actions:
            bulk = reverse(
                "wagtail_bulk_action",
                args=("wagtail_paidwebinar", "personallink", action.action_type),
            )
            for method in ("get", "post"):
                response = getattr(client, method)(bulk + query)
                _assert_refused_without_names(
                    response, (user.username, action.action_type, method)
                )
    assert PersonalLink.objects.count() == 3
    assert all(
        link.status() == LinkStatus.UNUSED for link in PersonalLink.objects.all()
    )
