"""One "Webinars" group in the admin menu with every part of the plugin (issue 11,
item 13), for the users who may see them; nothing for the others."""

from __future__ import annotations

import json
import re

import pytest

from tests.fixtures_invitations import (
    LINK_URLS,
    MAILING_COMPOSE,
    MAILING_EXPORT,
    MAILING_SEND,
    SUBSCRIBER_PERMS,
)
from tests.utils import make_user

ALL_ITEMS = [
    "Personal links",
    "Mailings",
    "Subscribers",
    "Subscriber lists",
    "Signatures",
    "Attendance",
]
APP = "wagtail_paidwebinar"


def main_menu(client) -> list[dict]:
    """The admin sidebar's main menu items as Wagtail serialises them."""
    html = client.get("/admin/").content.decode()
    match = re.search(
        r'<script id="wagtail-sidebar-props" type="application/json">(.*?)</script>',
        html,
        re.S,
    )
    assert match, "no sidebar in the admin page"
    modules = json.loads(match.group(1))["modules"]
    main = next(m for m in modules if m["_type"] == "wagtail.sidebar.MainMenuModule")
    return main["_args"][0]


def top_labels(items) -> list[str]:
    return [item["_args"][0]["label"] for item in items]


def webinars_group(client) -> list[str] | None:
    """The labels inside the "Webinars" group, or None when it is not shown."""
    for item in main_menu(client):
        if item["_args"][0]["label"] == "Webinars":
            assert item["_type"] == "wagtail.sidebar.SubMenuItem"
            return top_labels(item["_args"][1])
    return None


@pytest.fixture
def full_editor(db):
    return make_user(
        "webinar_editor",
        perms=[
            *SUBSCRIBER_PERMS,
            *MAILING_COMPOSE,
            MAILING_SEND,
            MAILING_EXPORT,
            LINK_URLS,
            f"{APP}.view_personallink",
            f"{APP}.change_personallink",
            f"{APP}.add_signature",
            f"{APP}.change_signature",
            f"{APP}.view_accessevent",
        ],
    )


def test_one_webinars_group_with_every_item(client, full_editor, webinar):
    client.force_login(full_editor)
    assert webinars_group(client) == ALL_ITEMS
    labels = top_labels(main_menu(client))
    assert labels.count("Webinars") == 1
    assert "Invitations" not in labels
    assert "Personal links" not in labels


def test_superuser_sees_the_group(admin_client):
    assert webinars_group(admin_client) == ALL_ITEMS


def test_user_without_permissions_sees_no_group(client, plain_editor):
    client.force_login(plain_editor)
    assert webinars_group(client) is None
    assert client.get("/admin/paidwebinar/attendance/").status_code in (302, 403)


def test_partial_permissions_show_only_their_items(client, db):
    user = make_user("list_keeper", perms=list(SUBSCRIBER_PERMS))
    client.force_login(user)
    assert webinars_group(client) == ["Subscribers", "Subscriber lists"]


def test_attendance_index_lists_webinars(client, full_editor, webinar):
    client.force_login(full_editor)
    response = client.get("/admin/paidwebinar/attendance/")
    assert response.status_code == 200
    body = response.content.decode()
    assert webinar.title in body
    assert f"/admin/paidwebinar/attendance/{webinar.pk}/" in body
