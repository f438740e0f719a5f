"""Small helpers shared by links, mailing and the gate."""

from __future__ import annotations

import logging

from wagtail.models import Page

from .conf import get_setting

logger = logging.getLogger(__name__)


def absolute_page_url(page: Page) -> str:
    """The absolute URL of ``page``, built from WAGTAIL_PAIDWEBINAR_BASE_URL or the
    Wagtail Site's root URL, never from a request's Host header.

    A page outside every Wagtail Site has no URL; rather than failing every admin
    listing and export that shows its links, fall back to its tree path and warn.
    """
    base = get_setting("BASE_URL").rstrip("/")
    parts = page.get_url_parts()
    if parts is None:
        logger.warning(
            "Webinar page %s is not under any Wagtail Site; its links will not work "
            "until it is.",
            page.pk,
        )
        return base + page.url_path
    _site_id, root_url, path = parts
    return (base or root_url.rstrip("/")) + path
