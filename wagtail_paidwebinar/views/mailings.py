"""Admin views of one mailing: its page and progress, preview, test send, send,
pause/resume/cancel/retry, recipients export and ready-to-copy messages.

Thin: each view checks a permission, validates input and calls
:mod:`wagtail_paidwebinar.mailing` or :mod:`.mailing_audience`. The URLs are
registered by ``modeladmin.py``.
"""

from __future__ import annotations

import logging
import smtplib
from urllib.parse import quote

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from wagtail.admin import messages

from .. import mailing as api
from .. import permissions
from ..csvutils import csv_response
from ..mailing import health
from ..mailing.render import build_template
from ..models import Mailing, MailingStatus, RecipientStatus
from . import mailing_audience as audience
from .base import InvitationsView

logger = logging.getLogger(__name__)

# Errors a test send may meet at the SMTP boundary (shown, never a 500); send_test
# wraps them in MailingError, the rest is belt and braces.
SEND_ERRORS = (api.MailingError, smtplib.SMTPException, OSError, ValueError)
LOG_PAGE_SIZE = 50
MESSAGES_PAGE_SIZE = 20


class MailingView(InvitationsView):
    """A view about one mailing (``instance_pk`` from the URL)."""

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        pk = str(kwargs.get("instance_pk", ""))
        if not (pk.isascii() and pk.isdigit()):
            raise Http404
        self.mailing = (
            Mailing.objects.select_related(
                "webinar", "subscriber_list", "signature", "created_by"
            )
            .filter(pk=int(pk))
            .first()
        )
        if self.mailing is None:
            raise Http404

    def get_page_subtitle(self):
        return self.mailing.subject

    def extra_breadcrumbs(self) -> list[dict]:
        return [
            {
                "url": self.action_url("detail", self.mailing.pk),
                "label": self.mailing.subject,
            }
        ]

    def back(self):
        return redirect(self.action_url("detail", self.mailing.pk))

    def mailing_urls(self) -> dict[str, str]:
        return {
            name: self.action_url(name, self.mailing.pk)
            for name in (
                "detail",
                "edit",
                "delete",
                "preview",
                "test_send",
                "send",
                "pause",
                "resume",
                "cancel",
                "retry",
                "export",
                "messages",
                "progress",
            )
        }

    def queue_state(self) -> dict | None:
        """The queue notice's data (no worker, Redis down, stalled), or None for a
        finished mailing, where the queue no longer matters."""
        if self.mailing.is_finished:
            return None
        return health.queue_state(self.mailing)

    def queue_unreachable(self, request, exc: Exception | str):
        """After Redis refused a job: say so; nothing was lost (see the callers)."""
        logger.warning(
            "Queueing mailing %s failed, Redis is unreachable: %s",
            self.mailing.pk,
            exc,
        )
        messages.error(
            request,
            _(
                "The queue (Redis) cannot be reached, so nothing was sent. Start "
                "Redis (or fix RQ_QUEUES), then press “Send” or “Re-queue if "
                "stuck” again."
            ),
        )
        return self.back()

    def get_context_data(self, **kwargs):
        user = self.request.user
        context = super().get_context_data(**kwargs)
        context.update(
            mailing=self.mailing,
            urls=self.mailing_urls(),
            can_compose=permissions.can_compose_mailing(user),
            can_send=permissions.can_send_mailing(user),
            can_export=permissions.can_export_mailing(user),
        )
        return context


class MailingDetailView(MailingView):
    """Status, live progress bar, audience and the per-recipient log."""

    template_name = "wagtail_paidwebinar/admin/invitations/mailing_detail.html"
    page_title = _("Mailing")

    def extra_breadcrumbs(self):
        return []

    def get_page_title(self):
        return self.mailing.subject

    def get_page_subtitle(self):
        return ""

    def get(self, request, instance_pk):
        mailing = self.mailing
        status_filter = request.GET.get("status", "")
        rows = mailing.recipients.order_by("pk")
        if status_filter in RecipientStatus.values:
            rows = rows.filter(status=status_filter)
        else:
            status_filter = ""
        page = Paginator(rows, LOG_PAGE_SIZE).get_page(request.GET.get("p"))
        is_draft = mailing.status == MailingStatus.DRAFT
        return self.render(
            {
                "progress": mailing.progress_summary(),
                "queue": self.queue_state(),
                "is_draft": is_draft,
                "summary": audience.summarize(mailing) if is_draft else None,
                "page_obj": page,
                "status_filter": status_filter,
                "status_choices": RecipientStatus.choices,
                "can_edit": is_draft and self.user_can(request.user, "edit", mailing),
                "can_delete": mailing.status
                not in (
                    MailingStatus.PREPARING,
                    MailingStatus.QUEUED,
                    MailingStatus.SENDING,
                )
                and self.user_can(request.user, "delete", mailing),
            }
        )


class MailingProgressView(MailingView):
    """JSON for the progress bar (polled every 2 s)."""

    def get(self, request, instance_pk):
        response = JsonResponse(
            {**self.mailing.progress_summary(), "queue": self.queue_state()}
        )
        response["Cache-Control"] = "private, no-store"
        return response


class MailingPreviewView(MailingView):
    """The real rendered e-mail for a chosen recipient."""

    template_name = "wagtail_paidwebinar/admin/invitations/mailing_preview.html"
    page_title = _("Preview")
    # How many audience entries the recipient picker offers.
    CHOICES = 200

    def has_permission(self, user) -> bool:
        return permissions.can_preview_mailing(user)

    def get(self, request, instance_pk):
        choices = []
        for entry in audience.iter_audience(self.mailing):
            choices.append(entry)
            if len(choices) >= self.CHOICES:
                break
        key = request.GET.get("recipient", "")
        entry = audience.find_entry(self.mailing, key) if key else None
        if entry is None and choices:
            entry = choices[0]
        rendered = render_for(self.mailing, entry, request.user) if entry else None
        frame_url = ""
        if entry is not None:
            frame_url = self.action_url("preview_frame", self.mailing.pk)
            frame_url += f"?recipient={quote(entry.key)}"
        return self.render(
            {
                "choices": choices,
                "entry": entry,
                "rendered": rendered,
                "frame_url": frame_url,
                "sample_links": not permissions.can_see_link_urls(request.user),
            }
        )


def render_for(mailing: Mailing, entry, user):
    """The rendered e-mail for ``entry`` as ``user`` may see it: a user who may not
    see personal URLs gets every part rendered with a placeholder link the gate
    refuses (never the real one masked afterwards: a merge field in the subject or a
    link target would slip past a mask). Returns None when rendering fails (shown as
    a message)."""
    try:
        return api.render_preview(
            mailing,
            audience.preview_target(entry),
            real_link=permissions.can_see_link_urls(user),
        )
    except Exception:
        # Rendering runs editor-written templates and rich text; show a message
        # instead of a 500 and keep the traceback in the log.
        logger.exception("Rendering the preview of mailing %s failed", mailing.pk)
        return None


class MailingPreviewFrameView(MailingPreviewView):
    """The e-mail's HTML alone, for the preview page's iframe."""

    def get(self, request, instance_pk):
        entry = audience.find_entry(self.mailing, request.GET.get("recipient", ""))
        if entry is None:
            raise Http404
        rendered = render_for(self.mailing, entry, request.user)
        if rendered is None:
            return HttpResponse(
                _("The preview could not be rendered."),
                content_type="text/plain",
                status=200,
            )
        response = HttpResponse(rendered.html, content_type="text/html; charset=utf-8")
        # Framed only by our own admin; 'sandbox' runs the e-mail as an opaque origin
        # with no scripts, so HTML pasted into a message cannot act as the editor.
        response["X-Frame-Options"] = "SAMEORIGIN"
        response["Content-Security-Policy"] = "sandbox; frame-ancestors 'self'"
        response["Cache-Control"] = "private, no-store"
        return response


class MailingTestSendView(MailingView):
    http_method_names = ["post"]

    def has_permission(self, user) -> bool:
        return permissions.can_compose_mailing(user)

    def post(self, request, instance_pk):
        to_email = (request.user.email or "").strip()
        if not to_email:
            messages.error(
                request,
                _(
                    "Your account has no e-mail address; add one in your "
                    "account settings."
                ),
            )
            return self.back()
        try:
            api.send_test(
                self.mailing,
                to_email,
                user=request.user,
            )
        except SEND_ERRORS as exc:
            logger.warning("Test send of mailing %s failed: %s", self.mailing.pk, exc)
            messages.error(
                request,
                _("The test message could not be sent: %(error)s") % {"error": exc},
            )
        else:
            messages.success(
                request,
                _("A test message was sent to %(email)s.") % {"email": to_email},
            )
        return self.back()


class MailingSendView(MailingView):
    """GET: a confirmation with counts. POST: start (idempotent)."""

    template_name = "wagtail_paidwebinar/admin/invitations/mailing_send.html"
    page_title = _("Send")
    http_method_names = ["get", "head", "post"]

    def has_permission(self, user) -> bool:
        return permissions.can_send_mailing(user)

    def refused(self, request):
        """A mailing of a cancelled webinar (other than its cancellation) is not
        started: the room is closed, and its links would lead nowhere."""
        if self.mailing.webinar.is_cancelled and not self.mailing.is_cancellation:
            messages.error(
                request,
                _(
                    "This webinar is cancelled, so this mailing cannot be sent: "
                    "its links would lead to a closed room. Reopen the webinar "
                    "first (on its page in the admin)."
                ),
            )
            return self.back()
        return None

    def get(self, request, instance_pk):
        if self.mailing.status != MailingStatus.DRAFT:
            messages.info(request, _("This mailing has already been started."))
            return self.back()
        refused = self.refused(request)
        if refused is not None:
            return refused
        return self.render(
            {
                "summary": audience.summarize(self.mailing),
                "queue": self.queue_state(),
            }
        )

    def post(self, request, instance_pk):
        refused = self.refused(request)
        if refused is not None:
            return refused
        # Ask Redis first: with it down the mailing stays a draft, as before Send.
        status = health.worker_status()
        if not status.reachable:
            return self.queue_unreachable(request, status.error)
        try:
            queued = api.start_mailing(self.mailing, user=request.user)
        except health.QUEUE_ERRORS as exc:
            # Redis went away between the check and the commit: the mailing is
            # started but its jobs are not queued; "Re-queue" queues them.
            return self.queue_unreachable(request, exc)
        if queued:
            messages.success(
                request,
                ngettext(
                    "Sending started: %(count)s recipient queued.",
                    "Sending started: %(count)s recipients queued.",
                    queued,
                )
                % {"count": queued},
            )
        elif self.mailing.status == MailingStatus.PREPARING:
            messages.success(
                request,
                _(
                    "Sending started: the recipient list is being prepared in "
                    "the background; the progress appears on this page."
                ),
            )
        else:
            messages.info(
                request,
                _(
                    "Nothing new was queued: the mailing was already started "
                    "or has no recipients."
                ),
            )
        return self.back()


class MailingActionView(MailingView):
    """POST-only state changes: pause, resume, cancel, retry failed."""

    http_method_names = ["post"]
    action = ""

    def has_permission(self, user) -> bool:
        return permissions.can_send_mailing(user)

    def post(self, request, instance_pk):
        if self.action in ("resume", "retry"):
            status = health.worker_status()
            if not status.reachable:
                return self.queue_unreachable(request, status.error)
            try:
                return self.act(request)
            except health.QUEUE_ERRORS as exc:
                return self.queue_unreachable(request, exc)
        return self.act(request)

    def act(self, request):
        mailing = self.mailing
        if self.action == "pause":
            ok = api.pause_mailing(mailing)
            text = _("Paused.") if ok else _("The mailing was not sending.")
        elif self.action == "resume":
            preparing = mailing.status == MailingStatus.PREPARING
            count = api.resume_mailing(mailing)
            ok = True
            if preparing:
                # "0 recipients queued" would read as "nobody will get it".
                text = _(
                    "This mailing is still being prepared: its recipient list is "
                    "put together in the background, then sending starts by "
                    "itself. The preparation was queued again in case a worker "
                    "lost it."
                )
            else:
                text = ngettext(
                    "Resumed: %(count)s recipient queued.",
                    "Resumed: %(count)s recipients queued.",
                    count,
                ) % {"count": count}
        elif self.action == "cancel":
            ok = api.cancel_mailing(mailing)
            text = _("Cancelled.") if ok else _("The mailing had already finished.")
        else:
            count = api.retry_failed(mailing)
            ok = bool(count)
            text = (
                ngettext(
                    "%(count)s failed recipient queued again.",
                    "%(count)s failed recipients queued again.",
                    count,
                )
                % {"count": count}
                if count
                else _("No failed recipients to retry.")
            )
        (messages.success if ok else messages.warning)(request, text)
        return self.back()


class MailingExportView(MailingView):
    """CSV of name, e-mail, personal link and password (send from your own mailbox)."""

    def has_permission(self, user) -> bool:
        return permissions.can_export_mailing(user)

    def get(self, request, instance_pk):
        mailing = self.mailing
        build = audience.link_url_builder(mailing)
        password = mailing.webinar.room_password
        rows = (
            (entry.name, entry.email, build(entry.link), password)
            for entry in audience.iter_invited(mailing)
        )
        return csv_response(
            f"mailing-{mailing.pk}-recipients.csv",
            ["name", "email", "personal_link", "password"],
            rows,
        )


def mailto_url(email: str, subject: str, body: str) -> str:
    """A mailto: URL that opens the message ready to send in the editor's mail app."""
    return (
        f"mailto:{quote(email, safe='@')}?subject={quote(subject)}&body={quote(body)}"
    )


class MailingMessagesView(MailingView):
    """One ready message per recipient, with a copy button."""

    template_name = "wagtail_paidwebinar/admin/invitations/mailing_messages.html"
    page_title = _("Copy messages")

    def has_permission(self, user) -> bool:
        return permissions.can_export_mailing(user)

    def get(self, request, instance_pk):
        entries, number, has_next = audience.page_of(
            self.mailing, request.GET.get("p", 1), MESSAGES_PAGE_SIZE
        )
        if not self.mailing.frozen_render:
            # A draft has no stored template: build it once for the page (in memory
            # only, never saved) instead of running premailer per message.
            try:
                self.mailing.frozen_render = build_template(self.mailing).to_dict()
            except Exception:
                logger.exception("Rendering mailing %s failed", self.mailing.pk)
        items = []
        for entry in entries:
            rendered = render_for(self.mailing, entry, request.user)
            text = rendered.text if rendered else ""
            subject = rendered.subject if rendered else self.mailing.subject
            items.append(
                {
                    "entry": entry,
                    "subject": subject,
                    "text": text,
                    "mailto": mailto_url(entry.email, subject, text),
                }
            )
        response = self.render(
            {
                "items": items,
                "page_number": number,
                "previous_page": number - 1 if number > 1 else None,
                "next_page": number + 1 if has_next else None,
            }
        )
        response["Cache-Control"] = "private, no-store"
        return response
