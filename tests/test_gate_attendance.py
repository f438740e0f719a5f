"""Attendance records and the admin attendance view."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from wagtail.models import GroupPagePermission

from tests.fixtures_gate import claim, link_path, make_link
from tests.utils import make_user
from wagtail_paidwebinar.models import AccessEvent, AccessEventKind
from wagtail_paidwebinar.models.attendance import truncate_ip

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clear_gate_cache")]


def kinds():
    return list(AccessEvent.objects.order_by("pk").values_list("kind", flat=True))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:abcd:12::1", "2001:db8:abcd::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("not an ip", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_truncate_ip(raw, expected):
    assert truncate_ip(raw) == expected


def test_claim_refusals_and_entries_are_recorded(browser, anna, room_webinar):
    first = browser(REMOTE_ADDR="203.0.113.77")
    claim(first, anna)
    assert kinds() == [AccessEventKind.CLAIM]
    event = AccessEvent.objects.get()
    assert event.link == anna and event.webinar_id == room_webinar.pk
    assert event.ip == "203.0.113.0/24"
    assert "GateTest" in event.user_agent

    # Views right after the claim write nothing (hot path).
    for _ in range(3):
        first.get(room_webinar.url)
    assert kinds() == [AccessEventKind.CLAIM]

    browser(REMOTE_ADDR="198.51.100.5").get(link_path(anna))
    assert kinds()[-1] == AccessEventKind.REFUSED_IN_USE
    assert AccessEvent.objects.last().link == anna

    # A forged token is recorded without a link: it must not frame a real one.
    browser().get(f"{room_webinar.url}?access={anna.pk}.{'A' * 24}")
    forged = AccessEvent.objects.order_by("pk").last()
    assert forged.kind == AccessEventKind.REFUSED_INVALID
    assert forged.link is None

    # Coming back after ENTRY_INTERVAL records one entry, then nothing again.
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=11), tick=False):
        first.get(room_webinar.url)
        first.get(room_webinar.url)
    assert kinds().count(AccessEventKind.ENTRY) == 1
    anna.refresh_from_db()
    assert anna.last_seen_at > anna.claimed_at


def test_attendance_view_for_superuser(admin_client, anna, room_webinar, browser):
    claim(browser(), anna)
    make_link(room_webinar, "Jan <b>Kowalski</b>")
    browser().get(link_path(anna))  # refused: possible sharing
    url = reverse("wagtail_paidwebinar_attendance", args=[room_webinar.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Anna Nowak" in body
    assert "Possible sharing" in body
    assert "Jan &lt;b&gt;Kowalski&lt;/b&gt;" in body
    assert "1 of 2 personal links" in body


def test_attendance_view_empty(admin_client, room_webinar):
    url = reverse("wagtail_paidwebinar_attendance", args=[room_webinar.pk])
    body = admin_client.get(url).content.decode()
    assert "No personal links for this webinar yet." in body


def test_attendance_view_unknown_page(admin_client, index):
    for page_id in (999999, 99999999999999999999, index.pk):
        url = reverse("wagtail_paidwebinar_attendance", args=[page_id])
        assert admin_client.get(url).status_code == 404


def test_attendance_view_denied_without_permission(client, room_webinar):
    make_link(room_webinar, "Secret Name")
    client.force_login(make_user("nobody"))
    url = reverse("wagtail_paidwebinar_attendance", args=[room_webinar.pk])
    response = client.get(url)
    # Wagtail's admin turns PermissionDenied into a redirect home with a message.
    assert response.status_code == 302
    assert response["Location"] == reverse("wagtailadmin_home")
    assert "Secret Name" not in client.get(response["Location"]).content.decode()


def test_attendance_view_anonymous_redirects_to_login(client, room_webinar):
    url = reverse("wagtail_paidwebinar_attendance", args=[room_webinar.pk])
    response = client.get(url)
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_attendance_view_for_page_editor(client, room_webinar, index):
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.create(name="Webinar editors")
    GroupPagePermission.objects.create(
        group=group,
        page=index,
        permission=Permission.objects.get(
            content_type__app_label="wagtailcore", codename="change_page"
        ),
    )
    user = make_user("pageeditor")
    user.groups.add(group)
    client.force_login(user)
    url = reverse("wagtail_paidwebinar_attendance", args=[room_webinar.pk])
    assert client.get(url).status_code == 200
    # The page header offers the view.
    edit = client.get(reverse("wagtailadmin_pages:edit", args=[room_webinar.pk]))
    assert url in edit.content.decode()


def test_attendance_view_with_model_permission(client, room_webinar):
    client.force_login(
        make_user("auditor", perms=["wagtail_paidwebinar.view_accessevent"])
    )
    url = reverse("wagtail_paidwebinar_attendance", args=[room_webinar.pk])
    assert client.get(url).status_code == 200


def test_explorer_more_button(admin_client, room_webinar, index):
    url = reverse("wagtail_paidwebinar_attendance", args=[room_webinar.pk])
    listing = admin_client.get(reverse("wagtailadmin_explore", args=[index.pk]))
    assert url in listing.content.decode()
    # Not offered for pages that are not webinars.
    index_url = reverse("wagtail_paidwebinar_attendance", args=[index.pk])
    assert index_url not in listing.content.decode()


def test_attendance_csv(admin_client, room_webinar, browser):
    link = make_link(room_webinar, "=HYPERLINK(1)", email="anna@example.com")
    claim(browser(), link)
    url = reverse("wagtail_paidwebinar_attendance", args=[room_webinar.pk])
    response = admin_client.get(url, {"export": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "no-store" in response["Cache-Control"]
    text = response.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Name,E-mail,Status")
    assert "'=HYPERLINK(1),anna@example.com,In use" in text


def test_attendance_csv_denied_without_permission(client, room_webinar):
    make_link(room_webinar, "Secret Name")
    client.force_login(make_user("nobody2"))
    url = reverse("wagtail_paidwebinar_attendance", args=[room_webinar.pk])
    response = client.get(url, {"export": "csv"})
    assert response.status_code == 302
    assert b"Secret Name" not in response.content
