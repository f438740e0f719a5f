"""Admin views of the personal links (wired up by viewsets.PersonalLinkViewSet).

Thin: each checks a permission, validates input and calls
:mod:`wagtail_paidwebinar.actions`.
"""

from __future__ import annotations

import secrets
import time

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.generic import FormView, TemplateView, View
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.views.generic.permissions import PermissionCheckedMixin

from .. import actions, batches
from ..csvutils import (
    csv_response,
    excel_delimiter,
    excel_url,
    too_large_message,
    uses_decimal_comma,
    wants_excel,
)
from ..filters import filtered_links
from ..forms.links import GenerateLinksForm
from ..mailing import InvitationStatus, send_invitation
from ..models import LinkBatch, LinkBatchStatus, PersonalLink, WebinarPage
from ..models.links import with_urls
from ..permissions import can_see_link_urls, can_send_mailing

SESSION_KEY = "wagtail_paidwebinar_generated"
# How long a result page (and its CSV download) stays available, and how many
# results one session keeps; ids only, the URLs are recomputed on display.
RESULT_TTL_SECONDS = 60 * 60
RESULTS_KEPT = 3
# Rows shown on the result page: a page of 100,000 rows weighs megabytes and
# nobody reads it. "Copy all" holds up to COPY_ALL_MAX links (about 100 bytes
# each); the CSV always holds every link.
ROWS_SHOWN = 200
COPY_ALL_MAX = 10_000

LINK_ACTIONS = ("revoke", "reset", "reissue")
# The confirmation step re-posts the list in the form; a list larger than what a
# form may carry (a big uploaded file) is generated without it, warnings after.
CONFIRM_MAX_CHARS = 1024 * 1024


class LinkAdminMixin(PermissionCheckedMixin, WagtailAdminTemplateMixin):
    """Common furniture: model, permission policy, breadcrumbs back to the listing."""

    viewset = None
    model = PersonalLink
    header_icon = "link"

    @cached_property
    def permission_policy(self):
        # Wagtail 8's PermissionCheckedMixin finds the policy from the model; Wagtail
        # 7.4's defaults to None, which skips every permission check.
        return self.viewset.permission_policy

    def index_url(self) -> str:
        return reverse(self.viewset.get_url_name("list"))

    def get_breadcrumbs_items(self):
        return [
            *self.breadcrumbs_items,
            {"url": self.index_url(), "label": _("Personal links")},
            {"url": "", "label": self.get_page_title()},
        ]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["index_url"] = self.index_url()
        return context


# --- generate -------------------------------------------------------------------------


def expand_ranges(ranges):
    for first, last in ranges:
        yield from range(first, last + 1)


def _keep(request, entry: dict) -> str:
    """Keep ``entry`` among the session's few recent results; returns its key."""
    key = secrets.token_urlsafe(12)
    results = {
        k: v
        for k, v in request.session.get(SESSION_KEY, {}).items()
        if v.get("at", 0) > time.time() - RESULT_TTL_SECONDS
    }
    # Keep the newest few; a session is not a database.
    for old in sorted(results, key=lambda k: results[k]["at"])[: -RESULTS_KEPT + 1]:
        del results[old]
    results[key] = {"at": time.time(), **entry}
    request.session[SESSION_KEY] = results
    return key


def store_result(request, webinar, result) -> str:
    """Keep a generation's outcome in the session; returns the key of its result page.

    Only ids and messages are stored; never a token.
    """
    return _keep(request, batches.result_summary(webinar, result))


def store_batch(request, batch: LinkBatch) -> str:
    """A background batch's result page: the session points at the batch row (whose
    outcome the job writes)."""
    return _keep(request, {"webinar": batch.webinar_id, "batch": batch.pk})


def load_result(request, key: str) -> dict | None:
    data = request.session.get(SESSION_KEY, {}).get(key)
    if not data or data.get("at", 0) <= time.time() - RESULT_TTL_SECONDS:
        return None
    if "batch" in data:
        batch = LinkBatch.objects.filter(
            pk=data["batch"], created_by_id=request.user.pk
        ).first()
        if batch is None:
            return None
        if batch.status != LinkBatchStatus.DONE or not batch.result:
            return {**data, "pending": batch}
        return {**batch.result, "at": data["at"], "batch": batch.pk}
    return data


@method_decorator(never_cache, name="dispatch")
class GenerateView(LinkAdminMixin, FormView):
    permission_required = "add"
    page_title = _("Generate personal links")
    template_name = "wagtail_paidwebinar/admin/links/generate.html"
    form_class = GenerateLinksForm
    too_big = False

    def get_initial(self):
        initial = super().get_initial()
        webinar = self.request.GET.get("webinar", "")
        if webinar.isdigit():
            initial["webinar"] = int(webinar)
        else:
            webinars = list(WebinarPage.objects.values_list("pk", flat=True)[:2])
            if len(webinars) == 1:
                initial["webinar"] = webinars[0]
        return initial

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["confirming"] = self.request.POST.get("confirmed") == "True"
        return kwargs

    def get_form(self, form_class=None):
        if self.too_big:
            # The body was not read: show an empty form with the explanation.
            return GenerateLinksForm(initial=self.get_initial())
        return super().get_form(form_class)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["extra_errors"] = (
            [too_large_message(settings.DATA_UPLOAD_MAX_MEMORY_SIZE, pasted=True)]
            if self.too_big
            else []
        )
        return context

    def post(self, request, *args, **kwargs):
        if self.too_big:
            return self.render_to_response(self.get_context_data())
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        webinar = form.cleaned_data["webinar"]
        text = form.cleaned_data["text"]
        if not form.cleaned_data["confirmed"] and len(text) <= CONFIRM_MAX_CHARS:
            # Before creating anything: say which lines meet links this webinar
            # already has, and let the organiser attach e-mails instead.
            matches = actions.preview_generation(webinar, text)
            if matches.needs_confirmation:
                return self.render_to_response(
                    self.get_context_data(
                        form=self.confirmation_form(text), matches=matches
                    )
                )
        if batches.runs_in_background(text):
            batch = batches.start_batch(
                webinar,
                text,
                expires_at=form.cleaned_data["expires"],
                user=self.request.user,
                all_or_nothing=form.cleaned_data["all_or_nothing"],
                attach_emails=form.cleaned_data.get("attach_emails", False),
            )
            key = store_batch(self.request, batch)
            return redirect(self.viewset.get_url_name("generate_result"), key=key)
        result = actions.generate_links(
            webinar,
            text,
            expires_at=form.cleaned_data["expires"],
            user=self.request.user,
            all_or_nothing=form.cleaned_data["all_or_nothing"],
            attach_emails=form.cleaned_data.get("attach_emails", False),
        )
        key = store_result(self.request, webinar, result)
        return redirect(self.viewset.get_url_name("generate_result"), key=key)

    def confirmation_form(self, text: str) -> GenerateLinksForm:
        """The same choices again, the list pasted (an upload cannot be re-sent)."""
        data = self.request.POST.copy()
        data.update({"names": text, "confirmed": "True", "attach_emails": "on"})
        return GenerateLinksForm(data=data, confirming=True)


def generate_view(viewset):
    """The generate view, able to answer a paste over DATA_UPLOAD_MAX_MEMORY_SIZE.

    Django raises RequestDataTooBig the first time ``request.POST`` is read, and the
    CSRF middleware reads it before any view, turning the error into a bare 400. So
    this view is exempt from the middleware's check, reads the body itself, shows a
    friendly message when it is too big (nothing is changed then), and otherwise runs
    the real view under ``csrf_protect``.
    """
    inner = csrf_protect(GenerateView.as_view(viewset=viewset))

    @csrf_exempt
    def view(request, *args, **kwargs):
        if request.method == "POST":
            try:
                request.POST  # noqa: B018 - parse now to catch the size error here
            except RequestDataTooBig:
                too_big = GenerateView.as_view(viewset=viewset, too_big=True)
                # Only renders the form with a message; CSRF is not needed for that.
                return too_big(request, *args, **kwargs)
        return inner(request, *args, **kwargs)

    return view


class GenerateResultMixin(LinkAdminMixin):
    def dispatch(self, request, *args, **kwargs):
        self.result = load_result(request, kwargs["key"])
        if self.result is None:
            messages.warning(
                request,
                _(
                    "That result is no longer available; "
                    "find the links in the list below."
                ),
            )
            return HttpResponseRedirect(self.index_url())
        return super().dispatch(request, *args, **kwargs)

    @property
    def pending(self) -> LinkBatch | None:
        """The background batch this result waits for (or that failed)."""
        return self.result.get("pending")

    def get_links(self):
        ids = list(expand_ranges(self.result["ids"]))
        links = PersonalLink.objects.filter(pk__in=ids).select_related("webinar")
        by_id = {link.pk: link for link in links}
        return [by_id[pk] for pk in ids if pk in by_id]


@method_decorator(never_cache, name="dispatch")
class GenerateResultView(GenerateResultMixin, TemplateView):
    permission_required = "add"
    page_title = _("New personal links")
    template_name = "wagtail_paidwebinar/admin/links/generate_result.html"

    def get_template_names(self):
        if self.pending is not None:
            return ["wagtail_paidwebinar/admin/links/generate_progress.html"]
        return super().get_template_names()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if self.pending is not None:
            context.update(self.progress_context())
            return context
        links = self.get_links()
        show_urls = can_see_link_urls(self.request.user)
        rows = list(with_urls(links)) if show_urls else [(x, "") for x in links]
        can_copy_all = show_urls and len(rows) <= COPY_ALL_MAX
        csv_url = reverse(
            self.viewset.get_url_name("generate_result_csv"),
            kwargs={"key": self.kwargs["key"]},
        )
        duplicates, errors, warnings = self.result["counts"]
        context.update(
            {
                "result": self.result,
                "created_count": len(links),
                "rows": rows[:ROWS_SHOWN],
                "rows_shown": min(len(rows), ROWS_SHOWN),
                "rows_hidden": max(0, len(rows) - ROWS_SHOWN),
                "show_urls": show_urls,
                "can_copy_all": can_copy_all,
                "all_links_text": "\n".join(f"{link.name}\t{url}" for link, url in rows)
                if can_copy_all
                else "",
                "duplicates_count": duplicates,
                "errors_count": errors,
                "warnings_count": warnings,
                "csv_url": csv_url,
                "excel_csv_url": excel_url(csv_url) if uses_decimal_comma() else "",
                "generate_url": reverse(self.viewset.get_url_name("generate")),
            }
        )
        return context

    def progress_context(self) -> dict:
        batch = self.pending
        return {
            "batch": batch,
            "progress": batches.batch_progress(batch),
            "progress_url": reverse(
                self.viewset.get_url_name("generate_progress"),
                kwargs={"key": self.kwargs["key"]},
            ),
            "generate_url": reverse(self.viewset.get_url_name("generate")),
        }


@method_decorator(never_cache, name="dispatch")
class GenerateProgressView(GenerateResultMixin, View):
    """JSON for the background batch's progress bar (polled every 2 s)."""

    permission_required = "add"

    def get(self, request, *args, **kwargs):
        batch = self.pending
        if batch is None:
            # Done: the result page shows it.
            return JsonResponse({"finished": True, "status": LinkBatchStatus.DONE})
        return JsonResponse(batches.batch_progress(batch))


class GenerateResultCSVView(GenerateResultMixin, View):
    """The new links as CSV. The URL holds a random session-bound key, never a token."""

    permission_required = "add"

    def get(self, request, *args, **kwargs):
        if not can_see_link_urls(request.user):
            raise PermissionDenied
        if self.pending is not None:
            raise Http404
        links = self.get_links()
        return csv_response(
            "personal-links-new.csv",
            actions.export_header(),
            actions.export_rows(links),
            delimiter=excel_delimiter() if wants_excel(request) else ",",
        )


# --- export ---------------------------------------------------------------------------


class ExportView(LinkAdminMixin, View):
    """CSV of the links matching the listing's filters and search; URLs only for
    users with ``view_personal_link_url``."""

    any_permission_required = ["add", "change", "delete", "view"]

    def get(self, request, *args, **kwargs):
        queryset, webinar = filtered_links(request)
        with_urls = can_see_link_urls(request.user)
        filename = "personal-links.csv"
        if webinar is not None:
            filename = f"personal-links-{webinar.slug}.csv"
        return csv_response(
            filename,
            actions.export_header(with_urls=with_urls),
            actions.export_rows(
                queryset.iterator(chunk_size=2000), with_urls=with_urls
            ),
            delimiter=excel_delimiter() if wants_excel(request) else ",",
        )


# --- per-link actions ---------------------------------------------------------------


ACTION_TEXTS = {
    "revoke": {
        "title": _("Revoke personal link"),
        "question": _(
            "Revoke the link of %(name)s? It stops working on the holder's next "
            "request and cannot be undone."
        ),
        "button": _("Yes, revoke"),
        "done": _("The link of %(name)s was revoked."),
        "serious": True,
    },
    "reset": {
        "title": _("Reset devices"),
        "question": _(
            "Forget the browsers bound to the link of %(name)s? The next browser that "
            "opens the link can claim it."
        ),
        "button": _("Yes, reset devices"),
        "done": _("The devices of %(name)s were reset."),
        "serious": False,
    },
    "reissue": {
        "title": _("Re-issue personal link"),
        "question": _(
            "Give %(name)s a new link? The current URL stops working at once and bound "
            "browsers are forgotten; send the new link to the person."
        ),
        "button": _("Yes, re-issue"),
        "done": _("%(name)s has a new link; the old one no longer works."),
        "serious": True,
    },
}


@method_decorator(never_cache, name="dispatch")
class LinkActionView(LinkAdminMixin, TemplateView):
    """GET: a confirmation page. POST (with CSRF): revoke / reset / re-issue."""

    permission_required = "change"
    template_name = "wagtail_paidwebinar/admin/links/confirm_action.html"
    action = None

    def dispatch(self, request, *args, **kwargs):
        if self.action not in LINK_ACTIONS:
            raise Http404
        return super().dispatch(request, *args, **kwargs)

    @property
    def texts(self):
        return ACTION_TEXTS[self.action]

    def get_object(self):
        return get_object_or_404(
            PersonalLink.objects.select_related("webinar"), pk=self.kwargs["pk"]
        )

    def get_page_title(self):
        return self.texts["title"]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        link = self.get_object()
        context.update(
            {
                "link": link,
                "question": self.texts["question"] % {"name": link.name},
                "button": self.texts["button"],
                "serious": self.texts["serious"],
                "action_url": self.request.path,
                "show_url": self.action == "reissue"
                and can_see_link_urls(self.request.user),
                "offer_email": self.offer_email(link),
            }
        )
        return context

    def offer_email(self, link: PersonalLink) -> bool:
        """Offer "e-mail the new link now" (re-issue, to users who may send)."""
        return self.action == "reissue" and can_send_mailing(self.request.user)

    def post(self, request, *args, **kwargs):
        link = self.get_object()
        if self.action == "revoke":
            if not actions.revoke_link(link, user=request.user):
                messages.info(request, _("That link was already revoked."))
                return redirect(self.index_url())
        elif self.action == "reset":
            actions.reset_link_devices(link, user=request.user)
        else:
            actions.reissue_link(link, user=request.user)
        messages.success(request, self.texts["done"] % {"name": link.name})
        if self.offer_email(link) and request.POST.get("send_invitation"):
            self.email_new_link(link)
        return redirect(self.index_url())

    def email_new_link(self, link: PersonalLink) -> None:
        status = send_invitation(link, user=self.request.user, resend=True)
        if status == InvitationStatus.QUEUED:
            messages.success(
                self.request,
                _("The new link is on its way to %(email)s.") % {"email": link.email},
            )
        elif status == InvitationStatus.CANCELLED:
            messages.warning(
                self.request,
                _("The new link was not e-mailed: the webinar is cancelled."),
            )
        else:
            messages.warning(
                self.request,
                _(
                    "The new link was not e-mailed: the link has no address or "
                    "is revoked."
                ),
            )


class AddRedirectView(LinkAdminMixin, View):
    """The stock "Add personal link" URL leads to "Generate links"."""

    permission_required = "add"

    def get(self, request, *args, **kwargs):
        return redirect(self.viewset.get_url_name("generate"))

    post = get
