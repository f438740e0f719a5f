"""Admin views of the subscribers: import a CSV, export the filtered listing.

Thin: each checks a permission, validates input and calls
:mod:`wagtail_paidwebinar.subscribers`. The URLs are registered by
``modeladmin.py``.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from wagtail.admin import messages

from ..csvutils import csv_response, excel_delimiter, wants_excel
from ..forms.invitations import SubscriberImportForm
from ..subscribers import (
    filtered_subscribers,
    import_subscribers,
    parse_subscriber_csv,
)
from .base import InvitationsView


class SubscriberImportView(InvitationsView):
    template_name = "wagtail_paidwebinar/admin/invitations/subscriber_import.html"
    page_title = _("Import subscribers")
    http_method_names = ["get", "head", "post"]

    def has_permission(self, user) -> bool:
        return self.user_can(user, "create")

    def get(self, request):
        return self.render({"form": SubscriberImportForm()})

    def post(self, request):
        form = SubscriberImportForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.render({"form": form}, status=200)
        parsed = parse_subscriber_csv(form.cleaned_data["csv_text"])
        result = import_subscribers(
            parsed,
            target_list=form.cleaned_data.get("target_list"),
            new_list_name=form.cleaned_data.get("new_list_name", ""),
            skip_invalid=form.cleaned_data.get("skip_invalid", False),
        )
        if result.saved:
            messages.success(
                request,
                ngettext(
                    "Imported %(created)s new subscriber; %(existing)s already known.",
                    "Imported %(created)s new subscribers; %(existing)s already known.",
                    result.created,
                )
                % {"created": result.created, "existing": len(result.existing)},
            )
            # The report stays on the page; the form starts empty so a second click
            # on "Import" does not send the same rows again.
            form = SubscriberImportForm()
        elif result.error:
            messages.error(request, result.error)
        elif parsed.errors:
            count = len(parsed.errors)
            messages.error(
                request,
                ngettext(
                    "Nothing was imported: %(count)s line has errors (see below).",
                    "Nothing was imported: %(count)s lines have errors (see below).",
                    count,
                )
                % {"count": count},
            )
        else:
            messages.warning(request, _("The file has no subscribers to import."))
        return self.render({"form": form, "result": result})


class SubscriberExportView(InvitationsView):
    def get(self, request):
        # The plain CSV keeps machine-readable English headers (scripts read it);
        # "CSV (Excel)" is for people: translated headers, yes/no in their language.
        excel = wants_excel(request)
        yes, no = (_("yes"), _("no")) if excel else ("yes", "no")
        rows = (
            (
                s.name,
                s.email,
                " | ".join(lst.name for lst in s.lists.all()),
                yes if s.subscribed else no,
                s.source,
                s.created_at.isoformat(),
            )
            for s in filtered_subscribers(**self.listing_filters()).iterator(
                chunk_size=1000
            )
        )
        header = ["name", "email", "lists", "subscribed", "source", "created_at"]
        if excel:
            header = [
                _("Name"),
                _("E-mail"),
                _("Lists"),
                _("Subscribed"),
                _("Source"),
                _("Created at"),
            ]
        return csv_response(
            "subscribers.csv",
            header,
            rows,
            delimiter=excel_delimiter() if excel else ",",
        )
