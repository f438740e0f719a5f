"""The "Personal links" snippet admin: listing, filters, row actions, bulk revoke.

The views only check permissions and call :mod:`wagtail_paidwebinar.actions`. Links
are created with "Generate links" (one or many lines) rather than the stock snippet
create form, so that every link goes through the same parsing, normalisation and
duplicate checks; the stock edit form stays for fixing a name, e-mail or expiry.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Count, F
from django.shortcuts import get_list_or_404
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from wagtail.admin.panels import FieldPanel, ObjectList
from wagtail.admin.ui.tables import Column, DateColumn, StatusTagColumn
from wagtail.admin.widgets import HeaderButton
from wagtail.admin.widgets.button import Button
from wagtail.snippets.bulk_actions.delete import DeleteBulkAction
from wagtail.snippets.bulk_actions.snippet_bulk_action import SnippetBulkAction
from wagtail.snippets.views.snippets import IndexView, SnippetViewSet

from . import actions
from .csvutils import excel_url, uses_decimal_comma
from .filters import PersonalLinkFilterSet
from .forms.links import PersonalLinkEditForm
from .mailing.invitations import with_invitation_sent_at
from .menu import MENU_HOOK, ORDER
from .models import LinkStatus, PersonalLink
from .paginators import CountedPaginator
from .permissions import can_see_link_urls
from .views import links as link_views


class LinkUrlColumn(Column):
    """A "Copy link" button; only added for users allowed to see URLs."""

    cell_template_name = "wagtail_paidwebinar/admin/links/copy_cell.html"

    def get_cell_context_data(self, instance, parent_context):
        context = super().get_cell_context_data(instance, parent_context)
        context["url"] = (
            instance.get_url()
            if instance.status()
            in (
                LinkStatus.UNUSED,
                LinkStatus.IN_USE,
            )
            else ""
        )
        return context


class PersonalLinkIndexView(IndexView):
    viewset = None
    paginator_class = CountedPaginator

    def get_base_queryset(self):
        queryset = (
            super()
            .get_base_queryset()
            .select_related("webinar")
            .annotate(
                device_count=Count("devices"),
                payment_reference=F("payment__reference"),
            )
        )
        return with_invitation_sent_at(queryset)

    @cached_property
    def columns(self):
        columns = super().columns
        if can_see_link_urls(self.request.user):
            columns.append(LinkUrlColumn("link", label=_("Link")))
        return columns

    @cached_property
    def header_buttons(self):
        buttons = []
        if self.user_has_permission("add"):
            url = reverse(self.viewset.get_url_name("generate"))
            webinar = self.request.GET.get("webinar", "")
            if webinar.isdigit():
                # Filtered to one webinar: generate for that one.
                url += f"?webinar={webinar}"
            buttons.append(
                HeaderButton(
                    _("Generate links"),
                    url=url,
                    icon_name="plus",
                )
            )
        return buttons

    @cached_property
    def header_more_buttons(self):
        query = self.request.GET.urlencode()
        url = reverse(self.viewset.get_url_name("export"))
        url = f"{url}?{query}" if query else url
        buttons = [
            Button(_("Download CSV"), url=url, icon_name="download", priority=10)
        ]
        if uses_decimal_comma():
            buttons.append(
                Button(
                    _("CSV (Excel)"),
                    url=excel_url(url),
                    icon_name="download",
                    priority=11,
                )
            )
        return buttons

    def get_list_more_buttons(self, instance):
        buttons = []
        if self.user_has_permission("change"):
            for name, label, icon in (
                ("reissue", _("Re-issue (new URL)"), "rotate"),
                ("reset", _("Reset devices"), "resubmit"),
                ("revoke", _("Revoke"), "cross"),
            ):
                if name == "revoke" and instance.revoked_at:
                    continue
                buttons.append(
                    Button(
                        label,
                        url=reverse(
                            self.viewset.get_url_name(name), args=[instance.pk]
                        ),
                        icon_name=icon,
                        priority=15,
                    )
                )
        return [*super().get_list_more_buttons(instance), *buttons]


class RefuseBeforeListing:
    """A bulk action on personal links that refuses a user without its permission
    before anything is listed.

    Wagtail's bulk actions check permissions per object and show the objects a user
    may not act on by name ("you don't have permission to ... these"), so any user
    with admin access could read participants' names by guessing ids. Refusing at
    dispatch names nobody.
    """

    #: The model permission (``add``/``change``/``delete``) the action needs.
    permission_needed = "change"

    def dispatch(self, request, *args, **kwargs):
        # The snippet viewset's policy: Wagtail 7.4's bulk actions have no
        # permission_policy attribute of their own.
        policy = PersonalLink.snippet_viewset.permission_policy
        if not policy.user_has_permission(request.user, self.permission_needed):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


class RevokeBulkAction(RefuseBeforeListing, SnippetBulkAction):
    """Revoke the selected links (needs change permission)."""

    display_name = _("Revoke")
    action_type = "revoke_links"
    aria_label = _("Revoke the selected personal links")
    template_name = "wagtail_paidwebinar/admin/links/confirm_bulk_revoke.html"
    action_priority = 20
    models = [PersonalLink]

    def check_perm(self, obj):
        policy = PersonalLink.snippet_viewset.permission_policy
        return policy.user_has_permission_for_instance(self.request.user, "change", obj)

    @classmethod
    def get_queryset(cls, model, object_ids):
        # Ignore ids that are not numbers instead of failing with a 500.
        ids = [i for i in object_ids if str(i).isdigit()]
        return get_list_or_404(model.objects.select_related("webinar"), pk__in=ids)

    def get_execution_context(self):
        return {**super().get_execution_context(), "user": self.request.user}

    @classmethod
    def execute_action(cls, objects, user=None, **kwargs):
        revoked = sum(1 for link in objects if actions.revoke_link(link, user=user))
        return revoked, 0

    def get_success_message(self, num_parent_objects, num_child_objects):
        return ngettext(
            "%(count)d personal link revoked.",
            "%(count)d personal links revoked.",
            num_parent_objects,
        ) % {"count": num_parent_objects}


class PersonalLinkDeleteBulkAction(RefuseBeforeListing, DeleteBulkAction):
    """Wagtail's bulk delete for personal links, refusing before it lists anyone
    (registered after Wagtail's so it replaces it for this model only)."""

    permission_needed = "delete"
    models = [PersonalLink]


class PersonalLinkViewSet(SnippetViewSet):
    model = PersonalLink
    icon = "link"
    menu_label = _("Personal links")
    menu_name = "personal-links"
    # An entry of the "Webinars" group (menu.py), not a top-level item.
    menu_hook = MENU_HOOK
    menu_order = ORDER["links"]
    list_per_page = 50
    copy_view_enabled = False
    index_view_class = PersonalLinkIndexView
    filterset_class = PersonalLinkFilterSet
    search_fields = ["name", "email"]
    search_backend_name = None
    list_display = [
        "name",
        "email",
        Column("webinar", label=_("Webinar"), accessor="webinar.title"),
        StatusTagColumn(
            "status",
            label=_("Status"),
            accessor="get_status_display",
            primary=lambda link: link.status() == LinkStatus.IN_USE,
        ),
        Column("device_count", label=_("Devices"), sort_key="device_count"),
        DateColumn("last_seen_at", label=_("Last seen"), sort_key="last_seen_at"),
        DateColumn(
            "invitation_sent_at",
            label=_("Invitation sent"),
            sort_key="invitation_sent_at",
        ),
        Column("payment_reference", label=_("Payment reference")),
    ]
    edit_handler = ObjectList(
        [FieldPanel("name"), FieldPanel("email"), FieldPanel("expires_at")],
        base_form_class=PersonalLinkEditForm,
    )

    def register_chooser_viewset(self):
        # No chooser: nothing in the admin picks a personal link, and Wagtail's
        # snippet chooser checks no model permission, so its views (choose, search,
        # chosen, create) would list every participant of every webinar to any user
        # with admin access.
        pass

    def get_index_view_kwargs(self, **kwargs):
        return super().get_index_view_kwargs(viewset=self, **kwargs)

    @property
    def add_view(self):
        # Links are created through "Generate links" (see the module docstring).
        return link_views.AddRedirectView.as_view(viewset=self)

    def get_urlpatterns(self):
        kwargs = {"viewset": self}
        return [
            *super().get_urlpatterns(),
            path(
                "generate/",
                link_views.generate_view(**kwargs),
                name="generate",
            ),
            path(
                "generate/<str:key>/",
                link_views.GenerateResultView.as_view(**kwargs),
                name="generate_result",
            ),
            path(
                "generate/<str:key>/progress/",
                link_views.GenerateProgressView.as_view(**kwargs),
                name="generate_progress",
            ),
            path(
                "generate/<str:key>/csv/",
                link_views.GenerateResultCSVView.as_view(**kwargs),
                name="generate_result_csv",
            ),
            path("export/", link_views.ExportView.as_view(**kwargs), name="export"),
            *[
                path(
                    f"<int:pk>/{name}/",
                    link_views.LinkActionView.as_view(action=name, **kwargs),
                    name=name,
                )
                for name in link_views.LINK_ACTIONS
            ],
        ]
