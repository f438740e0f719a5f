"""Fixtures of the personal links area."""

from __future__ import annotations

import pytest

from tests.utils import make_user
from wagtail_paidwebinar.actions import generate_links

APP = "wagtail_paidwebinar"
LINK_PERMS = {
    "view": f"{APP}.view_personallink",
    "add": f"{APP}.add_personallink",
    "change": f"{APP}.change_personallink",
    "delete": f"{APP}.delete_personallink",
    "url": f"{APP}.view_personal_link_url",
}


@pytest.fixture
def links(webinar):
    """Three links on ``webinar``: Anna (with e-mail), Jan, Zażółć Gęślą Jaźń."""
    result = generate_links(
        webinar,
        "Anna Nowak <anna@example.com>\n"
        "Jan Kowalski\n"
        "Zażółć Gęślą Jaźń, zgj@example.pl",
    )
    assert result.ok and len(result.created) == 3
    return result.created


@pytest.fixture
def links_editor(db):
    """Can generate, change and see link URLs."""
    return make_user(
        "links_editor",
        perms=[LINK_PERMS[k] for k in ("view", "add", "change", "url")],
    )


@pytest.fixture
def links_viewer(db):
    """Can list links but not see their URLs or change them."""
    return make_user("links_viewer", perms=[LINK_PERMS["view"]])
