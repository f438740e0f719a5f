"""Schedule changes and cancellation, told to the participants by e-mail.

``WebinarPage.announced_schedule`` holds the start, duration and timezone the
participants were last told (recorded on the first publish and by every update
mailing). A published schedule that differs from it, once someone was e-mailed
about the webinar, is a change participants should hear of: the admin offers
"notify participants" (:func:`needs_notice`, :func:`notify_schedule_change`).

Every e-mail about a webinar carries the same ``.ics`` UID with a higher
SEQUENCE (mailing/api.py numbers them, ics.py builds them), so a calendar moves
the event it has. A cancellation (:func:`cancel_webinar`) is an explicit action:
the page is marked cancelled (the gate then refuses the room and the teaser says
so), planned reminders are dropped, everyone with a live link and an address gets
a METHOD:CANCEL e-mail, and the links are revoked only when the organiser asks.
A cancellation can be undone (:func:`reopen_webinar`): the room opens, the
reminders are planned again and, if the organiser wants, the link holders get
their link again with a METHOD:PUBLISH .ics that restores the event.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone, translation
from django.utils.html import escape, linebreaks
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from wagtail.log_actions import log

from ..actions import revoke_link
from ..models import Mailing, MailingKind, PersonalLink, WebinarPage
from .api import LINK_HOLDERS, create_mailing, start_mailing
from .reminders import drop_reminders, plan_reminders
from .render import webinar_language

logger = logging.getLogger(__name__)

# Stored in audit log entries: never renamed after a release.
ACTION_CANCEL = "wagtail_paidwebinar.webinar.cancel"
ACTION_NOTIFY = "wagtail_paidwebinar.webinar.notify_schedule"
ACTION_REOPEN = "wagtail_paidwebinar.webinar.reopen"


def told_anyone(webinar: WebinarPage) -> bool:
    """Has any e-mail about the webinar been sent (or started)?"""
    return Mailing.objects.filter(
        webinar_id=webinar.pk, started_at__isnull=False
    ).exists()


def needs_notice(webinar: WebinarPage) -> bool:
    """The published start, duration or timezone differs from what participants
    were last told, someone was told, and the webinar is not cancelled."""
    page = WebinarPage.objects.filter(pk=webinar.pk).first()
    if page is None or not page.live or page.is_cancelled:
        return False
    announced = page.announced_schedule or {}
    return (
        bool(announced) and announced != page.schedule_snapshot() and told_anyone(page)
    )


def record_publish(webinar: WebinarPage) -> None:
    """On publish: remember the schedule as announced the first time, and
    whenever nobody was e-mailed yet (nobody to notify)."""
    page = WebinarPage.objects.filter(pk=webinar.pk).first()
    if page is None:
        return
    snapshot = page.schedule_snapshot()
    if page.announced_schedule == snapshot:
        return
    if not page.announced_schedule or not told_anyone(page):
        WebinarPage.objects.filter(pk=page.pk).update(announced_schedule=snapshot)


def update_text(webinar: WebinarPage, language: str) -> tuple[str, str]:
    with translation.override(language):
        subject = gettext("New time: {{ webinar }} on {{ starts_at }}")
        greeting = gettext("Hello {{ name }},")
        text = gettext(
            "{{ webinar }} has a new time: {{ starts_at }}. Your personal link "
            "stays the same. The attached calendar entry moves the event in your "
            "calendar."
        )
    return subject, f"<p>{greeting}</p><p>{text}</p>"


def cancellation_text(
    webinar: WebinarPage, language: str, message: str = ""
) -> tuple[str, str]:
    with translation.override(language):
        subject = gettext("Cancelled: {{ webinar }}")
        greeting = gettext("Hello {{ name }},")
        text = gettext(
            "we are sorry: {{ webinar }}, planned for {{ starts_at }}, is cancelled. "
            "The attached calendar entry removes the event from your calendar."
        )
    # The organiser's own words: plain text, escaped, paragraphs kept.
    extra = linebreaks(escape(message.strip())) if message.strip() else ""
    return subject, f"<p>{greeting}</p><p>{text}</p>{extra}"


def reopening_text(webinar: WebinarPage, language: str) -> tuple[str, str]:
    with translation.override(language):
        subject = gettext("It takes place: {{ webinar }} on {{ starts_at }}")
        greeting = gettext("Hello {{ name }},")
        text = gettext(
            "good news: {{ webinar }} takes place after all, on {{ starts_at }}. "
            "Your personal link and how to join are below. The attached calendar "
            "entry puts the event back in your calendar."
        )
    return subject, f"<p>{greeting}</p><p>{text}</p>"


def _locked(webinar: WebinarPage) -> WebinarPage | None:
    # The plugin's own row only ("self"), not Wagtail's page row: editors keep
    # working while a notice, cancellation or reopening is written.
    return (
        WebinarPage.objects.select_for_update(of=("self",))
        .filter(pk=webinar.pk)
        .first()
    )


def _link_holder_mailing(
    page: WebinarPage, kind: str, texts, *, user, **text_options
) -> Mailing:
    """A mailing of ``kind`` to the webinar's live link holders, in the webinar's
    language, with the subject and body ``texts(page, language, ...)`` gives."""
    language = webinar_language(page)
    subject, body = texts(page, language, **text_options)
    return create_mailing(
        page,
        subject=subject,
        body_html=body,
        audience=LINK_HOLDERS,
        user=user,
        language=language,
        kind=kind,
    )


def notify_schedule_change(webinar: WebinarPage, *, user=None) -> Mailing | None:
    """E-mail the link holders the webinar's new schedule (an update whose .ics
    moves the event) and record it as announced. Idempotent: None when there is
    nothing to tell (a second click, nothing changed, cancelled)."""
    with transaction.atomic():
        page = _locked(webinar)
        if page is None or not needs_notice(page):
            return None
        mailing = _link_holder_mailing(page, MailingKind.UPDATE, update_text, user=user)
        WebinarPage.objects.filter(pk=page.pk).update(
            announced_schedule=page.schedule_snapshot()
        )
        start_mailing(mailing, user=user)
        log(page, ACTION_NOTIFY, user=user, data={"mailing_id": mailing.pk})
    logger.info("Webinar %s: schedule change mailing %s", page.pk, mailing.pk)
    return mailing


def cancel_webinar(
    webinar: WebinarPage, *, user=None, revoke_links: bool = False, message: str = ""
) -> Mailing | None:
    """Cancel the webinar: mark it cancelled (the room closes at once), drop its
    reminders, e-mail a cancellation (METHOD:CANCEL) to every live link holder
    with an address and, only when ``revoke_links``, revoke the links after
    their e-mails were written into the ledger. Returns the mailing; None when
    it was cancelled already."""
    now = timezone.now()
    with transaction.atomic():
        page = _locked(webinar)
        if page is None or page.is_cancelled:
            return None
        WebinarPage.objects.filter(pk=page.pk).update(cancelled_at=now)
        page.cancelled_at = now
        drop_reminders(page.pk)
        mailing = _link_holder_mailing(
            page,
            MailingKind.CANCELLATION,
            cancellation_text,
            user=user,
            message=message,
        )
        # The ledger rows first, in this transaction: the audience is the live
        # links, which revoking would empty.
        start_mailing(mailing, user=user, background=not revoke_links)
        revoked = 0
        if revoke_links:
            # One link at a time through the one revoke rule: each gets its own
            # audit log entry, like a revoke from the links listing.
            links = PersonalLink.objects.live(now).filter(webinar_id=page.pk)
            for link in links.iterator(chunk_size=2000):
                revoked += revoke_link(link, user=user)
        log(
            page,
            ACTION_CANCEL,
            user=user,
            data={"mailing_id": mailing.pk, "links_revoked": revoked},
        )
    logger.info(
        "Webinar %s cancelled: mailing %s, %d links revoked",
        page.pk,
        mailing.pk,
        revoked,
    )
    return mailing


def reopen_webinar(
    webinar: WebinarPage, *, user=None, notify: bool = False
) -> tuple[bool, Mailing | None]:
    """Undo a cancellation: the room opens again under its usual rules, the
    reminders are planned again and, when ``notify``, every live link holder
    with an address gets their link again with a METHOD:PUBLISH .ics (same UID,
    higher SEQUENCE, STATUS:CONFIRMED) that puts the event back in their
    calendar. Links revoked at the cancellation stay revoked (re-issue them from
    the links listing). Returns (reopened, mailing); (False, None) when the
    webinar was not cancelled (a second click)."""
    with transaction.atomic():
        page = _locked(webinar)
        if page is None or not page.is_cancelled:
            return False, None
        WebinarPage.objects.filter(pk=page.pk).update(cancelled_at=None)
        page.cancelled_at = None
        mailing = None
        if notify:
            mailing = _link_holder_mailing(
                page, MailingKind.REOPENING, reopening_text, user=user
            )
            # They hear the schedule as it is now.
            WebinarPage.objects.filter(pk=page.pk).update(
                announced_schedule=page.schedule_snapshot()
            )
            start_mailing(mailing, user=user)
        log(
            page,
            ACTION_REOPEN,
            user=user,
            data={"mailing_id": mailing.pk if mailing else None, "notified": notify},
        )
    # After the commit: the reminder jobs are scheduled once the row says open.
    planned = plan_reminders(page)
    logger.info(
        "Webinar %s reopened: mailing %s, %d reminders planned",
        page.pk,
        mailing.pk if mailing else None,
        planned,
    )
    return True, mailing


def on_page_published(sender, instance, **kwargs) -> None:
    """``page_published``: remember the first schedule, plan the reminders."""
    record_publish(instance)
    plan_reminders(instance)


def on_page_unpublished(sender, instance, **kwargs) -> None:
    """``page_unpublished``: no reminders for a page nobody can see."""
    drop_reminders(instance.pk)


def on_page_deleted(sender, instance, **kwargs) -> None:
    """``pre_delete``: remove the scheduled jobs (the rows go with the page)."""
    drop_reminders(instance.pk)


def connect_signals() -> None:
    """Called from the app's ready(): publishing from the admin, a scheduled
    go-live and code all send these signals (``after_publish_page`` is the
    admin's only)."""
    from django.db.models.signals import pre_delete
    from wagtail.signals import page_published, page_unpublished

    page_published.connect(on_page_published, sender=WebinarPage)
    page_unpublished.connect(on_page_unpublished, sender=WebinarPage)
    pre_delete.connect(on_page_deleted, sender=WebinarPage)


def register_log_actions(actions) -> None:
    """Labels of the audit log actions (``register_log_actions`` hook)."""
    actions.register_action(ACTION_CANCEL, _("Cancel webinar"), _("Webinar cancelled"))
    actions.register_action(
        ACTION_NOTIFY,
        _("Notify participants of a new time"),
        _("Participants notified of a new time"),
    )
    actions.register_action(ACTION_REOPEN, _("Reopen webinar"), _("Webinar reopened"))


__all__ = [
    "ACTION_CANCEL",
    "ACTION_NOTIFY",
    "ACTION_REOPEN",
    "cancel_webinar",
    "needs_notice",
    "notify_schedule_change",
    "record_publish",
    "register_log_actions",
    "reopen_webinar",
]
