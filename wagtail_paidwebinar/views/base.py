"""The base of the "Invitations" admin pages (subscribers and mailings)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views import View
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin


class InvitationsView(WagtailAdminTemplateMixin, View):
    """Base: admin furniture, a permission check, breadcrumbs under the index."""

    model_admin = None
    header_icon = "mail"
    http_method_names = ["get", "head"]

    def has_permission(self, user) -> bool:
        return self.model_admin.permission_helper.user_can_list(user)

    def dispatch(self, request, *args, **kwargs):
        # Wagtail's admin URL decorator turns PermissionDenied into a redirect with
        # a message (or a 403 for XHR, e.g. the progress poll).
        if not self.has_permission(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    @property
    def url_helper(self):
        return self.model_admin.url_helper

    def action_url(self, action: str, *args) -> str:
        return self.url_helper.get_action_url(action, *args)

    def get_breadcrumbs_items(self):
        return [
            {"url": reverse("wagtailadmin_home"), "label": _("Home")},
            {
                "url": self.url_helper.index_url,
                "label": self.model_admin.get_menu_label(),
            },
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
