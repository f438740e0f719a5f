"""The base of the "Invitations" admin pages (subscribers and mailings)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views import View
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin

from ..models import WebinarPage
from ..utils import MAX_PK


class InvitationsView(WagtailAdminTemplateMixin, View):
    """Base: admin furniture, a permission check, breadcrumbs under the index.

    Independent of the admin framework that lists the models: the registering
    module mixes in an adapter (``modeladmin.ModelAdminViewMixin`` today) that
    answers :meth:`user_can`, :meth:`index_url`, :meth:`index_label`,
    :meth:`action_url` and :meth:`listing_filters`.
    """

    header_icon = "mail"
    http_method_names = ["get", "head"]

    def has_permission(self, user) -> bool:
        return self.user_can(user, "list")

    def dispatch(self, request, *args, **kwargs):
        # Wagtail's admin URL decorator turns PermissionDenied into a redirect with
        # a message (or a 403 for XHR, e.g. the progress poll).
        if not self.has_permission(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    # --- supplied by the admin adapter --------------------------------------------

    def user_can(self, user, action: str, obj=None) -> bool:
        """May ``user`` do ``action`` ("list", "create", "edit", "delete") on the
        model (or on ``obj``)?"""
        raise NotImplementedError

    def index_url(self) -> str:
        raise NotImplementedError

    def index_label(self) -> str:
        raise NotImplementedError

    def action_url(self, action: str, *args) -> str:
        raise NotImplementedError

    def listing_filters(self) -> dict:
        """The listing's filters and search in this request, as keyword arguments
        for the domain's query function."""
        raise NotImplementedError

    # -------------------------------------------------------------------------------

    def get_breadcrumbs_items(self):
        return [
            {"url": reverse("wagtailadmin_home"), "label": _("Home")},
            {"url": self.index_url(), "label": self.index_label()},
            *self.extra_breadcrumbs(),
            {"url": "", "label": self.get_page_title()},
        ]

    def extra_breadcrumbs(self) -> list[dict]:
        return []

    def render(self, context: dict, status: int = 200) -> TemplateResponse:
        return TemplateResponse(
            self.request,
            self.template_name,
            self.get_context_data(**context),
            status=status,
        )


def webinar_or_404(page_id: int) -> WebinarPage:
    """The webinar a URL's page id names, or 404 (an id beyond any key included)."""
    if page_id > MAX_PK:
        raise Http404
    return get_object_or_404(WebinarPage, pk=page_id)
