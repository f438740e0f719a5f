"""Small helpers shared by links, mailing and the gate."""

from __future__ import annotations

import logging

from wagtail.models import Page, Site

from .conf import get_setting

# The largest primary key any database gives; an id in a URL beyond it names
# nothing (and SQLite would raise OverflowError on it).
MAX_PK = 2**63 - 1

logger = logging.getLogger(__name__)


def base_url() -> str:
    """WAGTAIL_PAIDWEBINAR_BASE_URL, else the default Wagtail Site's root URL; never
    the request's Host header (a forged Host would land in every e-mail)."""
    base = get_setting("BASE_URL").rstrip("/")
    if not base:
        site = Site.objects.filter(is_default_site=True).first()
        base = site.root_url.rstrip("/") if site else ""
    return base


def absolute_url(path: str) -> str:
    """``path`` (starting with "/") made absolute with :func:`base_url`."""
    return base_url() + path


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
