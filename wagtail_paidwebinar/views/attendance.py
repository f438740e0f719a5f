"""Admin: who joined a webinar, when, and which links were refused elsewhere."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Max, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.widgets import Button

from ..csvutils import csv_response
from ..models import (
    AccessEvent,
    AccessEventKind,
    DeviceMove,
    LinkDevice,
    PersonalLink,
    WebinarPage,
)
from ..permissions import (
    attendance_webinars,
    can_view_any_attendance,
    can_view_attendance,
)
from .base import webinar_or_404

PER_PAGE = 100
RECENT_EVENTS = 50


def attendance_rows(page: WebinarPage):
    """The page's links with device, entry, refusal and move counts; suspects
    first."""
    # A subquery, not one more join: the joins above already multiply rows.
    moves = (
        DeviceMove.objects.filter(link=OuterRef("pk"), moved_at__isnull=False)
        .order_by()
        .values("link")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        PersonalLink.objects.filter(webinar=page)
        .annotate(
            move_count=Coalesce(Subquery(moves), 0),
            device_count=Count("devices", distinct=True),
            entry_count=Count(
                "access_events",
                filter=Q(
                    access_events__kind__in=[
                        AccessEventKind.CLAIM,
                        AccessEventKind.ENTRY,
                    ]
                ),
                distinct=True,
            ),
            refused_count=Count(
                "access_events",
                filter=Q(access_events__kind=AccessEventKind.REFUSED_IN_USE),
                distinct=True,
            ),
            last_refused_at=Max(
                "access_events__time",
                filter=Q(access_events__kind=AccessEventKind.REFUSED_IN_USE),
            ),
            reuse_count=Count(
                "access_events",
                filter=Q(access_events__kind=AccessEventKind.REUSE_DETECTED),
                distinct=True,
            ),
        )
        .order_by("-reuse_count", "-refused_count", "claimed_at", "name", "pk")
    )


def two_browsers(rows) -> None:
    """For rows flagged "used from two browsers": ``row.browsers``, the browser
    holding the link now (its device rows) and the ones refused with a copy of its
    cookie (the reuse events), as (user agent, truncated network) pairs."""
    flagged = {row.pk: row for row in rows if row.reuse_count}
    if not flagged:
        return
    for row in flagged.values():
        row.browsers = []
    devices = LinkDevice.objects.filter(link_id__in=flagged).values_list(
        "link_id", "user_agent", "ip"
    )
    reuses = (
        AccessEvent.objects.filter(
            link_id__in=flagged, kind=AccessEventKind.REUSE_DETECTED
        )
        .values_list("link_id", "user_agent", "ip")
        .distinct()
    )
    for link_id, agent, ip in [*devices, *reuses]:
        if (agent, ip) not in flagged[link_id].browsers:
            flagged[link_id].browsers.append((agent, ip))


class AttendanceView(WagtailAdminTemplateMixin, TemplateView):
    template_name = "wagtail_paidwebinar/admin/attendance.html"
    header_icon = "group"

    def dispatch(self, request, page_id):
        self.page = webinar_or_404(page_id)
        if not can_view_attendance(request.user, self.page):
            raise PermissionDenied
        return super().dispatch(request, page_id)

    def get(self, request, *args, **kwargs):
        if request.GET.get("export") == "csv":
            return attendance_csv(self.page)
        return super().get(request, *args, **kwargs)

    def get_page_title(self):
        return _("Attendance")

    def get_page_subtitle(self):
        return self.page.get_admin_display_title()

    def get_breadcrumbs_items(self):
        return [
            *self.breadcrumbs_items,
            {
                "url": reverse("wagtailadmin_pages:edit", args=[self.page.pk]),
                "label": self.page.get_admin_display_title(),
            },
            {"url": "", "label": _("Attendance")},
        ]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        rows = attendance_rows(self.page)
        paginator = Paginator(rows, PER_PAGE)
        page_obj = paginator.get_page(self.request.GET.get("p"))
        two_browsers(page_obj.object_list)
        links = PersonalLink.objects.filter(webinar=self.page)
        context.update(
            webinar=self.page,
            page_obj=page_obj,
            rows=page_obj.object_list,
            total_links=links.count(),
            joined=links.filter(claimed_at__isnull=False).count(),
            flagged=AccessEvent.objects.filter(
                webinar=self.page,
                kind__in=[
                    AccessEventKind.REFUSED_IN_USE,
                    AccessEventKind.REUSE_DETECTED,
                ],
            )
            .exclude(link=None)
            .values("link")
            .distinct()
            .count(),
            events=AccessEvent.objects.filter(webinar=self.page).select_related("link")[
                :RECENT_EVENTS
            ],
        )
        return context


def attendance_csv(page: WebinarPage):
    """Every link of the webinar with its attendance figures, as a CSV download."""
    header = [
        _("Name"),
        _("E-mail"),
        _("Status"),
        _("Joined"),
        _("Last seen"),
        _("Devices"),
        _("Visits"),
        _("Refused elsewhere"),
        _("Moved to a new browser"),
    ]

    def when(value):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""

    rows = (
        [
            row.name,
            row.email,
            row.get_status_display(),
            when(row.claimed_at),
            when(row.last_seen_at),
            row.device_count,
            row.entry_count,
            row.refused_count,
            row.move_count,
        ]
        for row in attendance_rows(page).iterator(chunk_size=2000)
    )
    return csv_response(f"attendance-{page.slug}.csv", header, rows)


def attendance_buttons(page, user, *, priority: int = 45) -> list[Button]:
    """An "Attendance" button for webinar pages the user may see it for."""
    if not issubclass(page.specific_class or object, WebinarPage):
        return []
    if not can_view_attendance(user, page):
        return []
    return [
        Button(
            _("Attendance"),
            url=reverse("wagtail_paidwebinar_attendance", args=[page.pk]),
            icon_name="group",
            priority=priority,
        )
    ]


class AttendanceIndexView(WagtailAdminTemplateMixin, TemplateView):
    """The webinars whose attendance the user may see (the "Attendance" menu item):
    each one's links claimed and the way to its attendance page."""

    template_name = "wagtail_paidwebinar/admin/attendance_index.html"
    header_icon = "group"
    page_title = _("Attendance")

    def dispatch(self, request, *args, **kwargs):
        if not can_view_any_attendance(request.user):
            raise PermissionDenied
        self.webinars = attendance_webinars(request.user)
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        webinars = self.webinars.annotate(
            link_count=Count("personal_links", distinct=True),
            joined_count=Count(
                "personal_links",
                filter=Q(personal_links__claimed_at__isnull=False),
                distinct=True,
            ),
        )
        page_obj = Paginator(webinars, PER_PAGE).get_page(self.request.GET.get("p"))
        context.update(page_obj=page_obj, webinars=page_obj.object_list)
        return context


urlpatterns = [
    path(
        "paidwebinar/attendance/",
        AttendanceIndexView.as_view(),
        name="wagtail_paidwebinar_attendance_index",
    ),
    path(
        "paidwebinar/attendance/<int:page_id>/",
        AttendanceView.as_view(),
        name="wagtail_paidwebinar_attendance",
    ),
]
