"""Site setting "Webinar mailing" (Settings → Webinar mailing in the admin)."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel, MultiFieldPanel
from wagtail.contrib.settings.models import BaseSiteSetting, register_setting
from wagtail.fields import RichTextField


@register_setting(icon="mail")
class MailingSettings(BaseSiteSetting):
    from_name = models.CharField(
        _("from name"),
        max_length=200,
        blank=True,
        help_text=_("Shown as the sender, e.g. your organisation's name."),
    )
    from_email = models.EmailField(
        _("from address"),
        blank=True,
        help_text=_("Empty: the site's DEFAULT_FROM_EMAIL."),
    )
    reply_to = models.EmailField(_("reply-to address"), blank=True)
    signature = RichTextField(
        _("signature"),
        blank=True,
        help_text=_(
            "The site's default signature, appended to every mailing that does "
            "not pick another one from Webinars → Signatures."
        ),
    )
    footer = RichTextField(
        _("footer"),
        blank=True,
        help_text=_("Small print at the bottom of every message (who you are, why)."),
    )
    invitation_subject = models.CharField(
        _("invitation subject"),
        max_length=255,
        blank=True,
        help_text=_(
            "The automatic invitation a buyer or a re-issued link gets, for every "
            "webinar that has none of its own. Empty: a built-in text in the "
            "webinar's language."
        ),
    )
    invitation_body = RichTextField(
        _("invitation message"),
        blank=True,
        help_text=_(
            "Merge fields: {{ name }}, {{ webinar }}, {{ starts_at }}. The personal "
            "link and the room password are always added below."
        ),
    )
    send_rate = models.FloatField(
        _("sending rate (messages per second)"),
        default=0,
        validators=[MinValueValidator(0)],
        help_text=_("0 means as fast as the mail server accepts."),
    )

    panels = [
        MultiFieldPanel(
            [FieldPanel("from_name"), FieldPanel("from_email"), FieldPanel("reply_to")],
            heading=_("Sender"),
        ),
        FieldPanel("signature"),
        FieldPanel("footer"),
        MultiFieldPanel(
            [FieldPanel("invitation_subject"), FieldPanel("invitation_body")],
            heading=_("Automatic invitation"),
        ),
        FieldPanel("send_rate"),
    ]

    class Meta:
        verbose_name = _("Webinar mailing")
        verbose_name_plural = _("Webinar mailing")
