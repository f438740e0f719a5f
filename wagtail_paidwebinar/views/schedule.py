"""Admin: "notify participants" of a new time, "cancel webinar" and "reopen
webinar" (confirmation pages; the work is in mailing/schedule.py)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.generic import FormView
from wagtail.admin import messages
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.widgets import Button

from ..mailing import audience, schedule
from ..models import WebinarPage
from ..permissions import can_change_schedule
from .base import webinar_or_404


class CancelForm(forms.Form):
    revoke_links = forms.BooleanField(
        label=_("Also revoke every personal link"),
        required=False,
        help_text=_(
            "Revoked links no longer admit anyone, even if the webinar is held "
            "later. Leave unticked to keep them (for example, to move the webinar "
            "to another date)."
        ),
    )
    message = forms.CharField(
        label=_("Message to participants (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Added to the cancellation e-mail, e.g. about refunds."),
    )


class NotifyForm(forms.Form):
    pass


class ReopenForm(forms.Form):
    notify = forms.BooleanField(
        label=_("E-mail participants that the webinar takes place"),
        required=False,
        initial=True,
        help_text=_(
            "Everyone with a live link and an e-mail address gets their personal "
            "link again; the attached calendar entry puts the event back in their "
            "calendar."
        ),
    )


class ScheduleActionView(WagtailAdminTemplateMixin, FormView):
    header_icon = "date"

    def dispatch(self, request, page_id):
        self.page = webinar_or_404(page_id)
        if not can_change_schedule(request.user, self.page):
            raise PermissionDenied
        return super().dispatch(request, page_id)

    def edit_url(self) -> str:
        return reverse("wagtailadmin_pages:edit", args=[self.page.pk])

    def get_page_subtitle(self):
        return self.page.get_admin_display_title()

    def get_breadcrumbs_items(self):
        return [
            *self.breadcrumbs_items,
            {"url": self.edit_url(), "label": self.page.get_admin_display_title()},
            {"url": "", "label": self.get_page_title()},
        ]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            webinar=self.page,
            recipients=audience.valid_links(self.page.pk, None).count(),
            edit_url=self.edit_url(),
        )
        return context


class NotifyView(ScheduleActionView):
    template_name = "wagtail_paidwebinar/admin/schedule/notify.html"
    form_class = NotifyForm

    def get_page_title(self):
        return _("Notify participants of the new time")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["needs_notice"] = schedule.needs_notice(self.page)
        return context

    def form_valid(self, form):
        mailing = schedule.notify_schedule_change(self.page, user=self.request.user)
        if mailing is None:
            messages.info(self.request, _("There is no new time to tell anyone about."))
        else:
            count = mailing.progress()["total"]
            messages.success(
                self.request,
                ngettext(
                    "The new time is being e-mailed to %(count)d participant.",
                    "The new time is being e-mailed to %(count)d participants.",
                    count,
                )
                % {"count": count},
            )
        return HttpResponseRedirect(self.edit_url())


class CancelView(ScheduleActionView):
    template_name = "wagtail_paidwebinar/admin/schedule/cancel.html"
    form_class = CancelForm

    def get_page_title(self):
        return _("Cancel webinar")

    def form_valid(self, form):
        mailing = schedule.cancel_webinar(
            self.page,
            user=self.request.user,
            revoke_links=form.cleaned_data["revoke_links"],
            message=form.cleaned_data["message"],
        )
        if mailing is None:
            messages.info(self.request, _("This webinar was already cancelled."))
        else:
            messages.success(
                self.request,
                _("“%(title)s” is cancelled; participants are being told by e-mail.")
                % {"title": self.page.title},
            )
        return HttpResponseRedirect(self.edit_url())


class ReopenView(ScheduleActionView):
    template_name = "wagtail_paidwebinar/admin/schedule/reopen.html"
    form_class = ReopenForm

    def get_page_title(self):
        return _("Reopen webinar")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["revoked"] = self.page.personal_links.filter(
            revoked_at__isnull=False
        ).count()
        return context

    def form_valid(self, form):
        reopened, mailing = schedule.reopen_webinar(
            self.page, user=self.request.user, notify=form.cleaned_data["notify"]
        )
        if not reopened:
            messages.info(self.request, _("This webinar is not cancelled."))
        elif mailing is None:
            messages.success(
                self.request,
                _("“%(title)s” is open again; nobody was e-mailed.")
                % {"title": self.page.title},
            )
        else:
            count = mailing.progress()["total"]
            messages.success(
                self.request,
                ngettext(
                    "“%(title)s” is open again; %(count)d participant is being "
                    "told by e-mail.",
                    "“%(title)s” is open again; %(count)d participants are being "
                    "told by e-mail.",
                    count,
                )
                % {"title": self.page.title, "count": count},
            )
        return HttpResponseRedirect(self.edit_url())


def notify_url(page) -> str:
    return reverse("wagtail_paidwebinar_notify_schedule", args=[page.pk])


def cancel_buttons(page, user, *, priority: int = 60) -> list[Button]:
    """A "Cancel webinar" button for webinar pages the user may cancel, or
    "Reopen webinar" on a cancelled one."""
    if not issubclass(page.specific_class or object, WebinarPage):
        return []
    specific = page.specific
    if not can_change_schedule(user, page):
        return []
    if specific.is_cancelled:
        return [
            Button(
                _("Reopen webinar"),
                url=reverse("wagtail_paidwebinar_reopen_webinar", args=[page.pk]),
                icon_name="rotate",
                priority=priority,
            )
        ]
    return [
        Button(
            _("Cancel webinar"),
            url=reverse("wagtail_paidwebinar_cancel_webinar", args=[page.pk]),
            icon_name="cross",
            priority=priority,
        )
    ]


def after_publish(request, page) -> None:
    """After publishing in the admin: offer "notify participants" when the start,
    duration or timezone changed since participants were last told."""
    specific = page.specific
    if not isinstance(specific, WebinarPage) or not schedule.needs_notice(specific):
        return
    text = _(
        "The start, duration or timezone of “%(title)s” changed since participants "
        "were last e-mailed."
    ) % {"title": specific.title}
    buttons = []
    if can_change_schedule(request.user, specific):
        buttons.append(messages.button(notify_url(specific), _("Notify participants")))
    messages.warning(request, text, buttons=buttons)


urlpatterns = [
    path(
        "paidwebinar/webinar/<int:page_id>/notify/",
        NotifyView.as_view(),
        name="wagtail_paidwebinar_notify_schedule",
    ),
    path(
        "paidwebinar/webinar/<int:page_id>/cancel/",
        CancelView.as_view(),
        name="wagtail_paidwebinar_cancel_webinar",
    ),
    path(
        "paidwebinar/webinar/<int:page_id>/reopen/",
        ReopenView.as_view(),
        name="wagtail_paidwebinar_reopen_webinar",
    ),
]
