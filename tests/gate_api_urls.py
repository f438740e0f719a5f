"""URLconf for the gate's API tests: the example site's, with the plugin's API
endpoint in place of Wagtail's stock one."""

from config.urls import urlpatterns as site_urlpatterns
from django.urls import path
from wagtail.api.v2.router import WagtailAPIRouter

from wagtail_paidwebinar.api import PagesAPIViewSet

api_router = WagtailAPIRouter("wagtailapi")
api_router.register_endpoint("pages", PagesAPIViewSet)

urlpatterns = [path("api/v2/", api_router.urls), *site_urlpatterns]
