"""No room leaks (search, API v2, sitemap, materials); previews still show it."""

from __future__ import annotations

import pytest

from tests.fixtures_gate import ROOM_WORD, claim, make_link, material_url, room_blocks
from tests.utils import make_user, make_webinar

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clear_gate_cache")]

TEASER_WORD = "Quasarteaser"


@pytest.fixture
def searchable(index):
    return make_webinar(
        index,
        title="Searchable",
        slug="searchable",
        intro=f"<p>{TEASER_WORD} public text</p>",
        room=room_blocks(),
    )


def search(client, word):
    response = client.get("/search/", {"query": word})
    assert response.status_code == 200
    return [page.specific.pk for page in response.context["search_results"]]


def test_site_search_finds_teaser_not_room(client, searchable):
    assert searchable.pk in search(client, TEASER_WORD)
    assert search(client, ROOM_WORD) == []


def test_hidden_webinar_leaves_site_search(client, searchable):
    assert searchable.pk in search(client, TEASER_WORD)
    searchable.hide_from_search_engines = True
    searchable.save_revision().publish()
    assert search(client, TEASER_WORD) == []


def test_hidden_draft_does_not_change_live_index(client, searchable):
    searchable.hide_from_search_engines = True
    searchable.save_revision()  # not published
    assert searchable.pk in search(client, TEASER_WORD)


def test_api_v2_has_no_room(client, searchable):
    response = client.get(
        "/api/v2/pages/", {"type": "wagtail_paidwebinar.WebinarPage", "fields": "*"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert TEASER_WORD in body
    assert ROOM_WORD not in body
    assert '"room"' not in body
    assert "room_password" not in body
    detail = client.get(f"/api/v2/pages/{searchable.pk}/").content.decode()
    assert ROOM_WORD not in detail
    assert "room_password" not in detail
    query = {"search": ROOM_WORD, "type": "wagtail_paidwebinar.WebinarPage"}
    found = client.get("/api/v2/pages/", query).json()
    assert found["meta"]["total_count"] == 0


def test_sitemap_lists_visible_webinars_only(client, searchable, index):
    hidden = make_webinar(
        index, title="Hidden one", slug="hidden-one", hide_from_search_engines=True
    )
    body = client.get("/sitemap.xml").content.decode()
    assert "/searchable/" in body
    assert "/hidden-one/" not in body
    assert hidden.pk


def test_preview_shows_the_room(searchable):
    """serve_preview bypasses on_serve_page; the room must be visible to editors."""
    response = searchable.make_preview_request()
    assert response.status_code == 200
    assert ROOM_WORD in response.content.decode()


def test_room_not_shown_without_gate_verdict(rf, searchable):
    """Rendering the page outside the gate (no verdict on the request) hides it."""
    request = rf.get(searchable.url)
    context = searchable.get_context(request)
    assert context["room_visible"] is False


# --- materials -----------------------------------------------------------------------


def test_materials_only_through_the_gate(browser, material_webinar, document):
    url = material_url(material_webinar, document)
    assert browser().get(url).status_code == 404

    link = make_link(material_webinar)
    b = browser()
    claim(b, link)
    room = b.get(material_webinar.url).content.decode()
    assert url in room
    assert document.url not in room  # no direct document URL in the room
    response = b.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4 secret slides"
    assert "attachment" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]

    # Revoked: out on the next download too.
    from wagtail_paidwebinar import actions

    actions.revoke_link(link)
    assert b.get(url).status_code == 404


def test_materials_only_for_documents_of_the_room(
    browser, material_webinar, other_document
):
    link = make_link(material_webinar)
    b = browser()
    claim(b, link)
    assert b.get(material_url(material_webinar, other_document)).status_code == 404
    assert b.get("/webinars/999999/materials/1/").status_code == 404


def test_materials_for_editors(client, material_webinar, document):
    client.force_login(make_user("boss", superuser=True))
    assert client.get(material_url(material_webinar, document)).status_code == 200


def test_materials_for_other_webinar_grant_refused(
    browser, material_webinar, document, room_webinar
):
    link = make_link(room_webinar)  # a grant for another webinar
    b = browser()
    claim(b, link)
    assert b.get(material_url(material_webinar, document)).status_code == 404


@pytest.mark.urls("tests.gate_api_urls")
def test_plugin_api_endpoint_hides_hidden_webinars(client, searchable, index):
    hidden = make_webinar(
        index,
        title="Hidden API",
        slug="hidden-api",
        intro=f"<p>{TEASER_WORD} hidden</p>",
        hide_from_search_engines=True,
    )
    query = {"type": "wagtail_paidwebinar.WebinarPage", "fields": "*"}
    listing = client.get("/api/v2/pages/", query).json()
    ids = [item["id"] for item in listing["items"]]
    assert searchable.pk in ids
    assert hidden.pk not in ids
    assert ROOM_WORD not in str(listing)
    assert client.get(f"/api/v2/pages/{hidden.pk}/").status_code == 404
    assert client.get(f"/api/v2/pages/{searchable.pk}/").status_code == 200
    untyped = client.get("/api/v2/pages/").json()
    assert hidden.pk not in [item["id"] for item in untyped["items"]]
