"""Webinar page types: admin creation/editing, rendering, schedule, search and API."""

import datetime as dt
import zoneinfo

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from wagtail.models import Page
from wagtail.test.utils.form_data import nested_form_data, rich_text, streamfield

from tests.utils import make_index, make_user, make_webinar
from wagtail_paidwebinar.models import WebinarIndexPage, WebinarPage

pytestmark = pytest.mark.django_db


def _add_url(model, parent):
    return reverse(
        "wagtailadmin_pages:add",
        args=[model._meta.app_label, model._meta.model_name, parent.pk],
    )


def webinar_form(**overrides):
    data = {
        "title": "Wagtail dla redaktorów",
        "slug": "wagtail-dla-redaktorow",
        "intro": rich_text("<p>Publiczny opis.</p>"),
        "starts_at": "2031-03-14 18:00",
        "duration_minutes": "90",
        "timezone": "Europe/Warsaw",
        "presenter": "Anna Nowak",
        "cta_url": "https://shop.example.com/p/1",
        "cta_label": "",
        "room": streamfield([("text", rich_text("<p>Tajne materiały pokoju</p>"))]),
        "room_password": "sekret",
        "max_devices_per_link": "1",
        "max_device_moves": "3",
        "opens_minutes_before": "30",
        "closes_minutes_after": "",
        "replay": streamfield([]),
        "replay_until": "",
    }
    data.update(overrides)
    return nested_form_data(data)


class TestAdmin:
    def test_editor_creates_webinar_through_admin(self, admin_client, index):
        response = admin_client.post(
            _add_url(WebinarPage, index),
            {**webinar_form(), "action-publish": "action-publish"},
        )
        assert response.status_code == 302, response.context["form"].errors
        page = WebinarPage.objects.get(slug="wagtail-dla-redaktorow")
        assert page.live
        assert page.get_parent().specific == index
        assert page.room_password == "sekret"
        assert page.allow_link_sharing is False  # unchecked box = default off
        assert page.opens_minutes_before == 30
        assert page.closes_minutes_after is None
        # Entered in the admin user's timezone (settings.TIME_ZONE here).
        assert page.starts_at == dt.datetime(
            2031, 3, 14, 18, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Warsaw")
        )
        assert page.room[0].block_type == "text"

    def test_add_form_has_tabs_and_timezone_select(self, admin_client, index):
        response = admin_client.get(_add_url(WebinarPage, index))
        html = response.content.decode()
        assert response.status_code == 200
        for tab in ("Teaser", "Room", "Access"):
            assert tab in html
        assert '<option value="Europe/Warsaw"' in html
        assert 'name="allow_link_sharing"' in html

    def test_unknown_timezone_is_a_form_error(self, admin_client, index):
        response = admin_client.post(
            _add_url(WebinarPage, index),
            {**webinar_form(timezone="Mars/Olympus"), "action-publish": "1"},
        )
        assert response.status_code == 200
        assert not WebinarPage.objects.filter(slug="wagtail-dla-redaktorow").exists()
        assert "timezone" in response.context["form"].errors

    def test_editor_edits_webinar(self, admin_client, webinar):
        url = reverse("wagtailadmin_pages:edit", args=[webinar.pk])
        data = webinar_form(
            title="Nowy tytuł", slug=webinar.slug, allow_link_sharing="on"
        )
        response = admin_client.post(url, {**data, "action-publish": "1"})
        assert response.status_code == 302
        webinar.refresh_from_db()
        assert webinar.title == "Nowy tytuł"
        assert webinar.allow_link_sharing is True

    def test_editor_offers_a_replay(self, admin_client, webinar):
        url = reverse("wagtailadmin_pages:edit", args=[webinar.pk])
        recording = "https://vimeo.com/123456"
        data = webinar_form(
            slug=webinar.slug,
            replay=streamfield([("stream", {"url": recording, "title": ""})]),
            replay_until="2031-03-21 23:00",
        )
        response = admin_client.post(url, {**data, "action-publish": "1"})
        assert response.status_code == 302
        webinar.refresh_from_db()
        assert webinar.has_replay
        assert webinar.replay[0].value["url"] == recording
        assert webinar.replay_until == dt.datetime(
            2031, 3, 21, 23, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Warsaw")
        )

    def test_replay_until_before_the_end_is_a_form_error(self, admin_client, webinar):
        url = reverse("wagtailadmin_pages:edit", args=[webinar.pk])
        data = webinar_form(slug=webinar.slug, replay_until="2031-03-14 19:00")
        response = admin_client.post(url, {**data, "action-publish": "1"})
        assert response.status_code == 200
        assert "replay_until" in response.context["form"].errors
        webinar.refresh_from_db()
        assert webinar.replay_until is None

    def test_user_without_page_permissions_cannot_add(self, client, index):
        client.force_login(make_user("nobody"))
        response = client.get(_add_url(WebinarPage, index))
        assert response.status_code in (302, 403)

    def test_webinar_only_under_index(self):
        assert WebinarPage.parent_page_types == ["wagtail_paidwebinar.WebinarIndexPage"]
        assert WebinarPage.can_create_at(Page.get_first_root_node()) is False


class TestModel:
    def test_timezone_validator(self, webinar):
        webinar.timezone = "Europe/Atlantis"
        with pytest.raises(ValidationError) as exc:
            webinar.full_clean()
        assert "timezone" in exc.value.message_dict

    def test_schedule_properties(self, index):
        start = dt.datetime(2031, 6, 1, 16, 0, tzinfo=dt.UTC)
        page = make_webinar(
            index,
            starts_at=start,
            duration_minutes=45,
            timezone="America/New_York",
            opens_minutes_before=15,
            closes_minutes_after=10,
        )
        assert page.ends_at == start + dt.timedelta(minutes=45)
        assert page.local_starts_at.hour == 12  # EDT is UTC-4 in June
        assert page.access_opens_at == start - dt.timedelta(minutes=15)
        assert page.access_closes_at == start + dt.timedelta(minutes=55)

    def test_no_window_by_default(self, webinar):
        assert webinar.access_opens_at is None
        assert webinar.access_closes_at is None
        assert webinar.allow_link_sharing is False
        assert webinar.max_devices_per_link == 1


class TestRendering:
    def test_teaser_shows_time_in_webinar_timezone(self, client, index):
        page = make_webinar(
            index,
            title="Tokyo talk",
            starts_at=dt.datetime(2031, 1, 10, 9, 0, tzinfo=dt.UTC),
            timezone="Asia/Tokyo",
            presenter="Zażółć <Gęślą> Jaźń",
        )
        html = client.get(page.url).content.decode()
        assert "Tokyo talk" in html
        assert "Jan. 10, 2031, 6 p.m." in html  # 09:00 UTC = 18:00 in Tokyo
        assert "Asia/Tokyo" in html
        assert 'datetime="2031-01-10T09:00:00+00:00"' in html
        assert "Zażółć &lt;Gęślą&gt; Jaźń" in html
        assert "<Gęślą>" not in html
        assert '<html lang="en">' in html

    def test_page_loads_no_third_party_assets(self, client, webinar):
        html = client.get(webinar.url).content.decode()
        assert '<script src="http' not in html
        assert '<link rel="stylesheet" href="http' not in html

    def test_polish_rendering(self, client, webinar):
        html = client.get(webinar.url, HTTP_ACCEPT_LANGUAGE="pl").content.decode()
        assert '<html lang="pl">' in html

    def test_index_lists_upcoming_first_then_past(self, client, index):
        now = timezone.now()
        make_webinar(index, title="Past old", starts_at=now - dt.timedelta(days=30))
        make_webinar(index, title="Past recent", starts_at=now - dt.timedelta(days=2))
        make_webinar(index, title="Soon", starts_at=now + dt.timedelta(days=1))
        make_webinar(index, title="Later", starts_at=now + dt.timedelta(days=20))
        html = client.get(index.url).content.decode()
        positions = [
            html.index(t) for t in ("Soon", "Later", "Past recent", "Past old")
        ]
        assert positions == sorted(positions)

    def test_index_paginates(self, client, index, settings):
        settings.WAGTAIL_PAIDWEBINAR_INDEX_PAGE_SIZE = 2
        now = timezone.now()
        for day in range(1, 6):
            make_webinar(
                index, title=f"Webinar {day}", starts_at=now + dt.timedelta(days=day)
            )
        first = client.get(index.url).content.decode()
        third = client.get(index.url + "?page=3").content.decode()
        assert "Webinar 1" in first and "Webinar 3" not in first
        assert "Page 1 of 3" in first
        assert "Webinar 5" in third and "Webinar 1" not in third
        # Garbage page numbers fall back instead of failing.
        assert client.get(index.url + "?page=abc").status_code == 200

    def test_index_empty_state(self, client, index):
        html = client.get(index.url).content.decode()
        assert "No webinars yet" in html

    def test_unpublished_webinar_not_listed(self, client, index):
        page = make_webinar(index, title="Draft webinar")
        page.unpublish()
        assert "Draft webinar" not in client.get(index.url).content.decode()


class TestSearchAndApi:
    def test_teaser_searchable_room_not(self, index):
        make_webinar(
            index,
            title="Searchable",
            intro="<p>Publiczny zwiastun kapibara</p>",
            room=[{"type": "text", "value": "<p>tajnehaslopokoju</p>"}],
        )
        assert Page.objects.live().search("kapibara").count() == 1
        assert Page.objects.live().search("tajnehaslopokoju").count() == 0

    def test_room_not_in_search_or_api_fields(self):
        searched = {f.field_name for f in WebinarPage.search_fields}
        api = {f.name for f in WebinarPage.api_fields}
        assert "intro" in searched and "intro" in api
        for private in ("room", "room_password"):
            assert private not in searched
            assert private not in api

    def test_api_shows_teaser_not_room(self, client, index):
        page = make_webinar(
            index,
            intro="<p>teaser text</p>",
            room=[{"type": "text", "value": "<p>room secret words</p>"}],
        )
        response = client.get(
            f"/api/v2/pages/{page.pk}/", {"fields": "*"}, HTTP_ACCEPT="application/json"
        )
        assert response.status_code == 200
        body = response.content.decode()
        assert "teaser text" in body
        assert "room secret words" not in body
        assert "room_password" not in body


def test_index_page_only_allows_webinars():
    assert WebinarIndexPage.subpage_types == ["wagtail_paidwebinar.WebinarPage"]


def test_make_index_helper_is_under_site_root(db):
    index = make_index(title="Other", slug="other")
    assert index.url == "/other/"
