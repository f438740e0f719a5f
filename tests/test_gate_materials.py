"""Room materials: refused in every state the room is refused in, editors' exception
only for users who may edit the page, and the same documents at Wagtail's own
``/documents/<id>/<filename>`` URL gated alike."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import checks
from django.utils import timezone
from wagtail.models import GroupPagePermission, Page

from tests.fixtures_gate import claim, enter_password, make_link, material_url
from tests.utils import editors_group, make_user
from wagtail_paidwebinar import actions
from wagtail_paidwebinar.models import PersonalLink, WebinarPage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clear_gate_cache")]

SLIDES = b"%PDF-1.4 secret slides"


@pytest.fixture(autouse=True)
def serve_view(settings, tmp_path):
    """Documents on the file system, served through Wagtail's view: the set-up the
    README asks for (autouse fixtures run before the document fixtures)."""
    settings.WAGTAILDOCS_SERVE_METHOD = "serve_view"
    settings.MEDIA_ROOT = str(tmp_path)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }


def served(response) -> bool:
    if response.status_code != 200:
        return False
    content = b"".join(response.streaming_content)
    return content == SLIDES


def update_page(page: WebinarPage, **fields) -> None:
    """Change the live page row (what the gate reads), as a publish would."""
    WebinarPage.objects.filter(pk=page.pk).update(**fields)


def admitted(browser, webinar, document) -> tuple:
    """A browser holding a claimed link of ``webinar`` that is served the slides."""
    link = make_link(webinar)
    b = browser()
    assert claim(b, link).status_code == 302
    assert served(b.get(material_url(webinar, document)))
    return b, link


# --- every refused state of the room refuses its materials -----------------------


def test_materials_refused_without_the_password_pass(
    browser, material_webinar, document
):
    b, _link = admitted(browser, material_webinar, document)
    update_page(material_webinar, room_password="kawa123")
    assert b.get(material_url(material_webinar, document)).status_code == 404
    assert enter_password(b, material_webinar, "kawa123").status_code == 302
    assert served(b.get(material_url(material_webinar, document)))


@pytest.mark.parametrize("edge", ["not_open_yet", "closed"])
def test_materials_refused_outside_the_access_window(
    browser, material_webinar, edge, document
):
    b, _link = admitted(browser, material_webinar, document)
    now = timezone.now()
    if edge == "not_open_yet":
        fields = {"starts_at": now + dt.timedelta(days=2), "opens_minutes_before": 30}
    else:
        fields = {
            "starts_at": now - dt.timedelta(days=2),
            "duration_minutes": 60,
            "closes_minutes_after": 30,
        }
    update_page(material_webinar, **fields)
    assert b.get(material_url(material_webinar, document)).status_code == 404


def test_materials_refused_for_an_expired_link(browser, material_webinar, document):
    b, link = admitted(browser, material_webinar, document)
    PersonalLink.objects.filter(pk=link.pk).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    assert b.get(material_url(material_webinar, document)).status_code == 404


def test_materials_refused_for_a_revoked_link(browser, material_webinar, document):
    b, link = admitted(browser, material_webinar, document)
    actions.revoke_link(link)
    assert b.get(material_url(material_webinar, document)).status_code == 404


def test_materials_with_link_sharing_need_the_password(
    browser, material_webinar, document
):
    update_page(material_webinar, allow_link_sharing=True, room_password="kawa123")
    b = browser()
    assert b.get(material_url(material_webinar, document)).status_code == 404
    assert enter_password(b, material_webinar, "wrong").status_code == 200
    assert b.get(material_url(material_webinar, document)).status_code == 404
    assert enter_password(b, material_webinar, "kawa123").status_code == 302
    assert served(b.get(material_url(material_webinar, document)))


# --- the editors' exception is for editors of the page ----------------------------


def test_materials_refused_to_a_logged_in_user_who_may_not_edit(
    client, material_webinar, document
):
    client.force_login(make_user("reader"))  # admin access, no page permission
    assert client.get(material_url(material_webinar, document)).status_code == 404
    client.force_login(make_user("visitor", admin_access=False))
    assert client.get(material_url(material_webinar, document)).status_code == 404


def test_materials_served_to_an_editor_with_edit_permission(
    client, material_webinar, document
):
    editor = make_user("page_editor")
    editor.groups.add(editors_group())
    assert not editor.is_superuser
    assert material_webinar.permissions_for_user(editor).can_edit()
    client.force_login(editor)
    assert served(client.get(material_url(material_webinar, document)))


def test_materials_refused_to_an_editor_of_another_branch(
    client, index, material_webinar, document
):
    """Edit permission somewhere else in the tree is not edit permission here."""
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.create(name="Other branch")
    other = Page.get_first_root_node().add_child(
        instance=Page(title="Elsewhere", slug="elsewhere")
    )
    GroupPagePermission.objects.create(
        group=group,
        page=other,
        permission=Permission.objects.get(codename="change_page"),
    )
    user = make_user("branch_editor")
    user.groups.add(group)
    client.force_login(user)
    assert client.get(material_url(material_webinar, document)).status_code == 404


# --- Wagtail's document URL of a room material ------------------------------------


def test_room_document_url_refused_to_anonymous(client, material_webinar, document):
    response = client.get(document.url)
    assert response.status_code == 403
    assert SLIDES not in response.content
    assert "no-store" in response["Cache-Control"]


def test_room_document_url_served_to_an_admitted_browser(
    browser, material_webinar, document
):
    b, link = admitted(browser, material_webinar, document)
    first = b.get(document.url)
    assert "no-store" in first["Cache-Control"]
    response = b.get(document.url, follow=True)
    assert served(response)
    assert "no-store" in response["Cache-Control"]
    actions.revoke_link(link)
    assert b.get(document.url).status_code == 403


def test_room_document_url_refused_for_another_webinar_grant(
    browser, material_webinar, room_webinar, document
):
    b = browser()
    assert claim(b, make_link(room_webinar)).status_code == 302
    assert b.get(document.url).status_code == 403


def test_room_document_url_served_to_an_editor(client, material_webinar, document):
    editor = make_user("page_editor")
    editor.groups.add(editors_group())
    client.force_login(editor)
    assert served(client.get(document.url, follow=True))
    client.force_login(make_user("reader"))
    assert client.get(document.url).status_code == 403


def test_unrelated_document_url_stays_public(client, material_webinar, other_document):
    response = client.get(other_document.url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4 other"


def test_serve_method_that_bypasses_the_hook_is_a_warning(settings):
    from wagtail_paidwebinar.checks import check_document_serving

    for method in ("direct", "redirect"):
        settings.WAGTAILDOCS_SERVE_METHOD = method
        found = check_document_serving(None)
        assert [w.id for w in found] == ["wagtail_paidwebinar.W010"], method
        assert isinstance(found[0], checks.Warning)
        assert "serve_view" in found[0].hint
    settings.WAGTAILDOCS_SERVE_METHOD = "serve_view"
    assert check_document_serving(None) == []


def test_finding_room_documents_costs_one_query_for_other_documents(
    material_webinar, document, other_document, django_assert_num_queries
):
    from wagtail_paidwebinar.views.materials import webinars_using

    assert webinars_using(document) == [material_webinar]  # warms the content types
    with django_assert_num_queries(1):
        assert webinars_using(other_document) == []
    with django_assert_num_queries(2):
        assert webinars_using(document) == [material_webinar]
