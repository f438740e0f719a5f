"""Subscribers, subscriber lists, signatures, mailings and the per-recipient ledger.

The logic that fills and drains these tables lives in ``wagtail_paidwebinar.mailing``;
these models only hold state and small read-only helpers.
"""

from __future__ import annotations

import re
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel
from wagtail.fields import RichTextField

from ..parsing import normalize_email


def new_unsubscribe_salt() -> str:
    """A fresh random per-subscriber salt for unsubscribe tokens (128 bits)."""
    return secrets.token_urlsafe(16)


class SubscriberList(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    panels = [FieldPanel("name"), FieldPanel("description")]

    class Meta:
        verbose_name = _("subscriber list")
        verbose_name_plural = _("subscriber lists")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def subscribed_count(self) -> int:
        return self.subscribers.filter(subscribed=True).count()


class Subscriber(models.Model):
    """A person who may receive mailings; e-mail unique case-insensitively."""

    name = models.CharField(_("name"), max_length=200, blank=True)
    email = models.EmailField(_("e-mail"), max_length=254)
    # normalize_email(email); the unique key (case-insensitive uniqueness on every
    # database without functional indexes).
    email_normalized = models.CharField(max_length=254, unique=True, editable=False)
    lists = models.ManyToManyField(
        SubscriberList,
        verbose_name=_("lists"),
        blank=True,
        related_name="subscribers",
    )
    subscribed = models.BooleanField(_("subscribed"), default=True)
    unsubscribed_at = models.DateTimeField(_("unsubscribed at"), null=True, blank=True)
    source = models.CharField(
        _("source"),
        max_length=100,
        blank=True,
        help_text=_('Where the address came from, e.g. "CSV import" or "shop".'),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # Keys the opaque unsubscribe token (mailing/unsubscribe.py); rotating it kills
    # every unsubscribe URL already sent to this person.
    unsubscribe_salt = models.CharField(
        max_length=64, default=new_unsubscribe_salt, editable=False
    )

    panels = [
        FieldPanel("name"),
        FieldPanel("email"),
        FieldPanel("lists"),
        FieldPanel("subscribed"),
        FieldPanel("source"),
    ]

    class Meta:
        verbose_name = _("subscriber")
        verbose_name_plural = _("subscribers")
        ordering = ["email_normalized"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email

    def save(self, *args, **kwargs):
        self.email_normalized = normalize_email(self.email)
        if self.subscribed:
            self.unsubscribed_at = None
        elif self.unsubscribed_at is None:
            self.unsubscribed_at = timezone.now()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "email" in update_fields:
            kwargs["update_fields"] = {*update_fields, "email_normalized"}
        super().save(*args, **kwargs)


class Signature(models.Model):
    """A stored signature a mailing may pick instead of the site's default one.

    One notion of signature: the site's default lives in the "Webinar mailing"
    setting; these are the optional alternatives; a mailing uses its own pick or,
    when it has none, the default (README, "Signatures")."""

    name = models.CharField(_("name"), max_length=200)
    body = RichTextField(
        _("signature"),
        help_text=_(
            "An alternative to the site's default signature (Settings → Webinar "
            "mailing). A mailing that picks it is signed with it instead."
        ),
    )

    panels = [FieldPanel("name"), FieldPanel("body")]

    class Meta:
        verbose_name = _("signature")
        verbose_name_plural = _("signatures")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# The {{ webinar }} merge field (mailing/render.py merges every field when sending).
_WEBINAR_FIELD_RE = re.compile(r"\{\{\s*webinar\s*\}\}")


class MailingStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    # A big audience is being resolved into ledger rows by a job.
    PREPARING = "preparing", _("Preparing")
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    PAUSED = "paused", _("Paused")
    CANCELLED = "cancelled", _("Cancelled")
    DONE = "done", _("Done")


class MailingKind(models.TextChoices):
    MESSAGE = "message", _("Message")
    REMINDER = "reminder", _("Reminder")
    UPDATE = "update", _("Schedule change")
    CANCELLATION = "cancellation", _("Cancellation")
    REOPENING = "reopening", _("Webinar reopened")


class RecipientStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class Mailing(models.Model):
    """An invitation e-mail to a webinar's audience."""

    webinar = models.ForeignKey(
        "wagtail_paidwebinar.WebinarPage",
        verbose_name=_("webinar"),
        on_delete=models.CASCADE,
        related_name="mailings",
    )
    subject = models.CharField(_("subject"), max_length=255)
    body_html = RichTextField(
        _("message"),
        blank=True,
        help_text=_(
            "Merge fields: {{ name }}, {{ link }}, {{ password }}, {{ webinar }}, "
            "{{ starts_at }}. The personal link and the room password are always "
            "added below the message, whatever it says."
        ),
    )
    include_link_holders = models.BooleanField(
        _("send to link holders"),
        default=True,
        help_text=_("Everyone with a personal link and an e-mail for this webinar."),
    )
    subscriber_list = models.ForeignKey(
        SubscriberList,
        verbose_name=_("subscriber list"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="mailings",
        help_text=_("Subscribed members get a personal link when sending starts."),
    )
    signature = models.ForeignKey(
        Signature,
        verbose_name=_("signature"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_(
            "Empty: the site's default signature (Settings → Webinar mailing). "
            "Pick one of Webinars → Signatures to sign this mailing differently."
        ),
    )
    # The language of the whole e-mail, built-in parts included (access box, footer,
    # .ics): never the language of whoever presses Send. Blank: the webinar's
    # (mailing/render.py mailing_language).
    language = models.CharField(
        _("language"),
        max_length=15,
        blank=True,
        default="",
        help_text=_("Empty: the webinar page's language."),
    )
    # A one-recipient invitation (mailing/invitations.py): the link it goes to.
    invitation_link = models.ForeignKey(
        "wagtail_paidwebinar.PersonalLink",
        verbose_name=_("invitation to"),
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="invitations",
    )
    # A re-send asked for explicitly (re-issue, lost link): the constraint below
    # allows one invitation per link otherwise.
    invitation_resend = models.BooleanField(default=False, editable=False)
    # What the mailing is about: its .ics method and status, and which built-in
    # texts it carries (mailing/schedule.py, mailing/reminders.py).
    kind = models.CharField(
        _("kind"),
        max_length=16,
        choices=MailingKind.choices,
        default=MailingKind.MESSAGE,
        editable=False,
    )
    # A reminder's mailing: unique, so one reminder never gets a second mailing.
    reminder = models.OneToOneField(
        "wagtail_paidwebinar.Reminder",
        verbose_name=_("reminder"),
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="mailing",
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=MailingStatus.choices,
        default=MailingStatus.DRAFT,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # SEQUENCE of the attached .ics: later mailings of the same webinar carry a higher
    # number so calendars update the event instead of adding a second one.
    ics_sequence = models.PositiveIntegerField(default=0, editable=False)
    # The non-personal part rendered and CSS-inlined once when sending starts
    # (mailing/render.py): every job reuses it, and later edits of the draft fields
    # cannot make one mailing send two different texts.
    frozen_render = models.JSONField(default=dict, blank=True, editable=False)

    panels = [
        FieldPanel("webinar"),
        FieldPanel("include_link_holders"),
        FieldPanel("subscriber_list"),
        FieldPanel("subject"),
        FieldPanel("body_html"),
        FieldPanel("signature"),
        FieldPanel("language"),
    ]

    class Meta:
        verbose_name = _("mailing")
        verbose_name_plural = _("mailings")
        ordering = ["-created_at", "-pk"]
        constraints = [
            # "Never twice for the same link unless asked" (mailing/invitations.py):
            # of two simultaneous first invitations the database keeps one.
            models.UniqueConstraint(
                fields=["invitation_link"],
                condition=models.Q(invitation_resend=False),
                name="paidwebinar_one_invitation_per_link",
            )
        ]
        permissions = [
            ("send_mailing", _("Can send mailings")),
            ("export_mailing", _("Can export mailing recipients and links")),
        ]

    def __str__(self) -> str:
        return self.subject

    def display_subject(self) -> str:
        """The subject as listings show it: ``{{ webinar }}`` filled in with the
        webinar's title; personal fields (``{{ name }}``...) stay as written."""
        return _WEBINAR_FIELD_RE.sub(
            lambda _match: self.webinar.title, self.subject or ""
        )

    @property
    def is_invitation(self) -> bool:
        """A one-recipient invitation (:func:`..mailing.send_invitation`)."""
        return self.invitation_link_id is not None

    def kind_label(self) -> str:
        """What the listing calls the mailing: a one-recipient invitation, else
        its kind (message, reminder, schedule change, cancellation)."""
        if self.is_invitation:
            return str(_("Invitation (one person)"))
        return str(self.get_kind_display())

    @property
    def is_cancellation(self) -> bool:
        return self.kind == MailingKind.CANCELLATION

    @property
    def is_subscriber_mailing(self) -> bool:
        return self.subscriber_list_id is not None

    @property
    def is_active(self) -> bool:
        return self.status in (MailingStatus.QUEUED, MailingStatus.SENDING)

    def progress(self) -> dict[str, int]:
        """Counts of ledger rows by status plus ``total`` (one aggregate query)."""
        counts = dict.fromkeys(RecipientStatus.values, 0)
        for row in self.recipients.order_by().values("status").annotate(n=Count("pk")):
            counts[row["status"]] = row["n"]
        counts["total"] = sum(counts.values())
        return counts

    @property
    def is_finished(self) -> bool:
        return self.status in (MailingStatus.DONE, MailingStatus.CANCELLED)

    def progress_summary(self) -> dict:
        """:meth:`progress` for the admin's progress bar (and its JSON poll): the
        counts, percentages and whether nothing is left to send (one query)."""
        counts = self.progress()
        total = counts["total"]
        sent = counts[RecipientStatus.SENT]
        failed = counts[RecipientStatus.FAILED]
        done = sent + failed

        def pct(n: int) -> float:
            return round(100 * n / total, 1) if total else 0.0

        return {
            "status": self.status,
            "status_label": str(self.get_status_display()),
            "total": total,
            "sent": sent,
            "failed": failed,
            "sending": counts[RecipientStatus.SENDING],
            "pending": counts[RecipientStatus.PENDING],
            "sent_percent": pct(sent),
            "failed_percent": pct(failed),
            "percent": int(100 * done / total)
            if total
            else (100 if self.is_finished else 0),
            "finished": self.is_finished
            or (self.status != MailingStatus.DRAFT and total > 0 and done == total),
            "preparing": self.status == MailingStatus.PREPARING,
        }


class MailingRecipient(models.Model):
    """The ledger: one row per mailing and address, pending → sending → sent|failed."""

    mailing = models.ForeignKey(
        Mailing,
        verbose_name=_("mailing"),
        on_delete=models.CASCADE,
        related_name="recipients",
    )
    email = models.EmailField(_("e-mail"), max_length=254)
    email_normalized = models.CharField(max_length=254, editable=False)
    name = models.CharField(_("name"), max_length=200, blank=True)
    link = models.ForeignKey(
        "wagtail_paidwebinar.PersonalLink",
        verbose_name=_("personal link"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="mailing_recipients",
    )
    subscriber = models.ForeignKey(
        Subscriber,
        verbose_name=_("subscriber"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="mailing_recipients",
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=RecipientStatus.choices,
        default=RecipientStatus.PENDING,
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("mailing recipient")
        verbose_name_plural = _("mailing recipients")
        ordering = ["mailing", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["mailing", "email_normalized"],
                name="paidwebinar_recipient_unique_email",
            )
        ]
        indexes = [models.Index(fields=["mailing", "status"])]

    def __str__(self) -> str:
        return self.email
