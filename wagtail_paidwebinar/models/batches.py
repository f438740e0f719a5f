"""A batch of personal links generated in the background (big lists)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class LinkBatchStatus(models.TextChoices):
    QUEUED = "queued", _("Waiting for a worker")
    RUNNING = "running", _("Creating links")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class LinkBatch(models.Model):
    """One "Generate links" run handed to a job: the list waits here (never in
    Redis) until the job has read it, then only the outcome is kept."""

    webinar = models.ForeignKey(
        "wagtail_paidwebinar.WebinarPage",
        verbose_name=_("webinar"),
        on_delete=models.CASCADE,
        related_name="+",
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
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=LinkBatchStatus.choices,
        default=LinkBatchStatus.QUEUED,
    )
    lines = models.PositiveIntegerField(_("participant lines"), default=0)
    # The pasted or uploaded list; emptied in the transaction that creates the links.
    text = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    all_or_nothing = models.BooleanField(default=False)
    attach_emails = models.BooleanField(default=False)
    # What the result page shows: link id ranges, issues, counts (never a token).
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    job_id = models.CharField(max_length=120, blank=True)

    class Meta:
        verbose_name = _("link batch")
        verbose_name_plural = _("link batches")
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.webinar_id}: {self.lines} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (LinkBatchStatus.DONE, LinkBatchStatus.FAILED)
