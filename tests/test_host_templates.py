"""The visitor pages carry the Wagtail user bar for editors (issue 11, item 12)."""

from __future__ import annotations

from django.test import Client


def test_userbar_for_editors_only(admin_client, webinar):
    assert "<wagtail-userbar>" in admin_client.get(webinar.url).content.decode()
    assert "<wagtail-userbar>" not in Client().get(webinar.url).content.decode()
