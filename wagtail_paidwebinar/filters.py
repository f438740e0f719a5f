"""Filters of the personal links listing, shared by the listing and its CSV export,
and the kind filter of the mailings listing.

Beside the viewset, as Wagtail's redirects app keeps its ``filters.py``: the views
import this module and the viewset imports the views, with no cycle.
"""

from __future__ import annotations

import django_filters
from django.contrib import admin
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _
from wagtail.admin.filters import WagtailFilterSet

from .models import LinkStatus, MailingKind, PersonalLink, WebinarPage

# The mailings listing's kind filter: the stored kinds, one-person invitations
# (kind "message" with an invitation link) apart, and one choice that hides them.
INVITATION = "invitation"
NOT_INVITATION = "not_invitation"


class PersonalLinkFilterSet(WagtailFilterSet):
    webinar = django_filters.ModelChoiceFilter(
        label=_("Webinar"),
        queryset=lambda request: WebinarPage.objects.order_by("-starts_at", "title"),
    )
    status = django_filters.ChoiceFilter(
        label=_("Status"),
        choices=LinkStatus.choices,
        method="filter_status",
        empty_label=_("Any"),
    )

    from_payments = django_filters.BooleanFilter(
        label=_("From payments"),
        method="filter_from_payments",
    )

    class Meta:
        model = PersonalLink
        fields = ["webinar", "status", "from_payments"]

    def filter_status(self, queryset, name, value):
        return queryset.with_status(value) if value else queryset

    def filter_from_payments(self, queryset, name, value):
        # Issued by a purchase webhook or Stripe: they carry the order reference.
        if value is None:
            return queryset
        if value:
            return queryset.filter(payment__isnull=False)
        return queryset.filter(payment__isnull=True)


def filtered_links(request) -> tuple[QuerySet, WebinarPage | None]:
    """The links the listing shows for ``request.GET`` (its filters and ``q``
    search), in export order, and the webinar filtered on (or ``None``)."""
    queryset = PersonalLink.objects.select_related("webinar").order_by(
        "webinar__title", "name", "pk"
    )
    filterset = PersonalLinkFilterSet(request.GET, queryset=queryset, request=request)
    webinar = None
    if filterset.is_valid():
        queryset = filterset.qs
        webinar = filterset.form.cleaned_data.get("webinar")
    query = (request.GET.get("q") or "").strip()
    if query:
        queryset = queryset.filter(Q(name__icontains=query) | Q(email__icontains=query))
    return queryset, webinar


class MailingKindFilter(admin.SimpleListFilter):
    """Kind of mailing; "All but one-person invitations" hides the re-issue,
    webhook and lost-link invitations in one click."""

    title = _("kind")
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [
            (NOT_INVITATION, _("All but one-person invitations")),
            (INVITATION, _("Invitation (one person)")),
            *MailingKind.choices,
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == NOT_INVITATION:
            return queryset.filter(invitation_link__isnull=True)
        if value == INVITATION:
            return queryset.filter(invitation_link__isnull=False)
        if value in MailingKind.values:
            return queryset.filter(kind=value, invitation_link__isnull=True)
        return queryset
