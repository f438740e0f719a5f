"""API v2 endpoint for sites that publish their pages through Wagtail's API.

The room is never in the API (it is not in ``api_fields``). This viewset also keeps
webinars marked "hide from search engines" out of listings, searches and detail
views, as the sitemap and site search do. Use it in place of Wagtail's::

    from wagtail_paidwebinar.api import PagesAPIViewSet
    api_router.register_endpoint("pages", PagesAPIViewSet)
"""

from __future__ import annotations

from wagtail.api.v2 import views


class PagesAPIViewSet(views.PagesAPIViewSet):
    def get_base_queryset(self):
        from .models import WebinarPage

        hidden = WebinarPage.objects.filter(hide_from_search_engines=True).values("pk")
        return super().get_base_queryset().exclude(pk__in=hidden)
