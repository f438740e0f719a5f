"""Small helpers shared by links, mailing and the gate."""

from __future__ import annotations

from wagtail.models import Page

from .conf import get_setting


def absolute_page_url(page: Page) -> str:
    """The absolute URL of ``page``, built from WAGTAIL_PAIDWEBINAR_BASE_URL or the
    Wagtail Site's root URL, never from a request's Host header."""
    base = get_setting("BASE_URL").rstrip("/")
    if base:
        _site_id, _root_url, path = page.get_url_parts()
        return base + path
    return page.get_full_url()
