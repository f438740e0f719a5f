"""Admin forms of the "Invitations" menu: subscriber import and mailing compose."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm

from ..csvutils import read_upload
from ..models import Subscriber, SubscriberList, WebinarPage
from ..parsing import BIDI_CONTROLS, LineIssue, normalize_email, validate_entry
from .links import refuse_over_limit, webinar_label

# Largest CSV accepted by the import (bytes); 100,000 lines of "name,email" fit.
MAX_IMPORT_BYTES = 10 * 1024 * 1024


def reject_header_breaks(value: str) -> None:
    """A subject goes into an e-mail header: CR/LF would inject headers."""
    if any(ch in value for ch in "\r\n\x00\x85\u2028\u2029"):
        raise ValidationError(
            _("The subject must be one line (no line breaks)."), code="header_break"
        )


class SubscriberImportForm(forms.Form):
    """Upload a CSV (or paste it) and choose the list the people join."""

    file = forms.FileField(
        label=_("CSV file"),
        required=False,
        help_text=_(
            "Columns: name, e-mail and optionally lists (separated by | or ;). "
            "A header row is optional. UTF-8 (with or without BOM) or Windows-1250."
        ),
    )
    text = forms.CharField(
        label=_("…or paste the rows"),
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 5, "placeholder": "Anna Nowak,anna@example.com"}
        ),
    )
    target_list = forms.ModelChoiceField(
        label=_("Add everyone to the list"),
        queryset=SubscriberList.objects.all(),
        required=False,
    )
    new_list_name = forms.CharField(
        label=_("…or to a new list called"),
        max_length=200,
        required=False,
    )
    skip_invalid = forms.BooleanField(
        label=_("Import the valid lines even if some lines have errors"),
        required=False,
        help_text=_(
            "Otherwise a file with errors imports nothing, so you can fix it first."
        ),
    )

    def clean_new_list_name(self) -> str:
        name = " ".join(self.cleaned_data.get("new_list_name", "").split())
        if any(ch in BIDI_CONTROLS or ord(ch) < 32 for ch in name):
            raise ValidationError(
                _("The list name contains invisible control characters.")
            )
        return name

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        pasted = cleaned.get("text") or ""
        if upload:
            text, error = read_upload(upload, MAX_IMPORT_BYTES)
            if error:
                self.add_error("file", error)
                return cleaned
            cleaned["csv_text"] = text
        elif pasted.strip():
            if len(pasted.encode("utf-8")) > MAX_IMPORT_BYTES:
                self.add_error(
                    "text", _("The pasted text is too long; upload a file instead.")
                )
                return cleaned
            cleaned["csv_text"] = pasted
        else:
            raise ValidationError(
                _("Choose a CSV file or paste the rows."), code="empty"
            )
        refuse_over_limit(cleaned["csv_text"])
        return cleaned


class SubscriberForm(WagtailAdminModelForm):
    """Add/edit one subscriber: the same checks as the import, and the e-mail unique
    case-insensitively (the database would otherwise refuse it with an error page)."""

    def clean(self):
        cleaned = super().clean()
        name = cleaned.get("name") or ""
        email = cleaned.get("email") or ""
        if not email:
            return cleaned
        outcome = validate_entry(1, "", name or email, email)
        if isinstance(outcome, LineIssue):
            raise ValidationError(
                outcome.message[:1].upper() + outcome.message[1:] + "."
            )
        if name:
            cleaned["name"] = outcome.name
        cleaned["email"] = outcome.email
        clash = Subscriber.objects.filter(
            email_normalized=normalize_email(outcome.email)
        )
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            self.add_error(
                "email", _("A subscriber with this e-mail address already exists.")
            )
        return cleaned


LINK_HOLDERS_HELP = _(
    "Everyone with a personal link and an e-mail for this webinar. This is an "
    "access e-mail, not marketing: it also reaches people who unsubscribed from "
    "your lists and carries no unsubscribe link."
)


class MailingForm(WagtailAdminModelForm):
    """The compose form (the model's panels pick the fields)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        webinar = self.fields.get("webinar")
        if webinar is not None:
            webinar.queryset = WebinarPage.objects.order_by("-starts_at", "title")
            webinar.label_from_instance = webinar_label
        subject = self.fields.get("subject")
        if subject is not None:
            subject.validators.append(reject_header_breaks)
        holders = self.fields.get("include_link_holders")
        if holders is not None:
            # Said here rather than on the model field (no migration for a text).
            holders.help_text = LINK_HOLDERS_HELP
        language = self.fields.get("language")
        if language is not None:
            # The site's languages, read per form (not at import: LANGUAGES may
            # differ between sites using the plugin).
            language.widget = forms.Select(
                choices=[("", _("The webinar page's language"))]
                + [(code, name) for code, name in settings.LANGUAGES]
            )

    def clean(self):
        cleaned = super().clean()
        if (
            "include_link_holders" in self.fields
            and not cleaned.get("include_link_holders")
            and not cleaned.get("subscriber_list")
        ):
            raise ValidationError(
                _(
                    "Choose who receives it: the link holders, a subscriber list "
                    "or both."
                ),
                code="no_audience",
            )
        return cleaned

    def audience(self) -> list:
        """The ``audience`` argument of :func:`..mailing.create_mailing`."""
        audience: list = []
        if self.cleaned_data.get("include_link_holders"):
            audience.append("link_holders")
        if self.cleaned_data.get("subscriber_list"):
            audience.append(self.cleaned_data["subscriber_list"])
        return audience
